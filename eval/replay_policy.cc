// ReplayPolicy: recorded assistant turns by session id (see replay_policy.h).
#include "eval/replay_policy.h"

namespace k2::eval {

Expected<std::unique_ptr<ReplayPolicy>> ReplayPolicy::Load(const std::string& path) {
  K2_ASSIGN_OR_RETURN(std::vector<json> lines, ReadJsonLines(path));
  auto p = std::unique_ptr<ReplayPolicy>(new ReplayPolicy());
  p->path_ = path;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string where = path + ":" + std::to_string(i + 1);
    const json& j = lines[i];
    if (!j.is_object() || !j.contains("id") || !j["id"].is_string()) return InvalidArgument(where + ": id: expected string");
    std::vector<Message> turns;
    if (j.contains("message")) {
      K2_ASSIGN_OR_RETURN(Message m, MessageFromJson(j["message"], where + ": message"));
      turns.push_back(std::move(m));
    } else if (j.contains("turns") && j["turns"].is_array()) {
      K2_ASSIGN_OR_RETURN(turns, MessagesFromJson(j["turns"], where + ": turns"));
    } else {
      return InvalidArgument(where + ": expected \"message\" (assistant message) or \"turns\" (array of them)");
    }
    for (auto& m : turns)
      if (m.role != "assistant") return InvalidArgument(where + ": recorded turns must have role \"assistant\", got \"" + m.role + "\"");
    if (!p->turns_.emplace(j["id"].get<std::string>(), std::move(turns)).second)
      return InvalidArgument(where + ": duplicate id " + j["id"].dump());
  }
  return p;
}

Expected<agents::PolicyTurn> ReplayPolicy::Act(const agents::PolicyRequest& request) {
  auto it = turns_.find(request.session);
  if (it == turns_.end()) return NotFound(path_ + ": no recorded response for \"" + request.session + "\"");
  size_t n;
  {
    std::lock_guard<std::mutex> l(mu_);
    n = next_[request.session]++;
  }
  if (n >= it->second.size())
    return NotFound(path_ + ": \"" + request.session + "\" has " + std::to_string(it->second.size()) + " recorded turn(s); turn " +
                    std::to_string(n + 1) + " was asked for");
  agents::PolicyTurn t;
  t.message = it->second[n];
  return t;
}

void ReplayPolicy::EndSession(const std::string& session) {
  std::lock_guard<std::mutex> l(mu_);
  next_.erase(session);
}

}  // namespace k2::eval
