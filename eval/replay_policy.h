// A Policy that replays recorded assistant turns: scores model outputs produced elsewhere (the way BFCL
// scores result files) and gives the eval tests responses whose correctness is known. File: JSON lines
// {"id": <session / case id>, "message": {assistant message}} or {"id", "turns": [{...}, ...]} for a
// session of several turns (the n-th Act of a session gets turns[n]).
//
// Thread-safe (a mutex around the per-session turn counters). Act on an unknown session or past the
// recorded turns is NotFound naming the id.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "agents/policy.h"

namespace k2::eval {

class ReplayPolicy : public agents::Policy {
 public:
  static Expected<std::unique_ptr<ReplayPolicy>> Load(const std::string& path);
  std::string name() const override { return "replay:" + path_; }
  Expected<agents::PolicyTurn> Act(const agents::PolicyRequest& request) override;
  void EndSession(const std::string& session) override;

 private:
  std::string path_;
  std::map<std::string, std::vector<Message>> turns_;
  std::mutex mu_;
  std::map<std::string, size_t> next_;
};

}  // namespace k2::eval
