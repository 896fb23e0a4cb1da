// Scripted policies: the oracle that follows a synthetic task's gold plan (with configurable, seeded
// imperfections so oracle data is diverse) and the random policy (the floor every metric must beat).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "agents/policy.h"
#include "core/config.h"

namespace k2::agents {

// Run-config section "oracle" (registered in apps/cmd_agents.cc). Each rate is the probability, drawn
// once per episode from the episode's seed, that the imperfection happens in that episode.
struct OracleConfig {
  double clarify_rate = 0.3;     // asks the user to confirm before the first state-changing action
  double error_rate = 0.2;       // makes one schema-invalid call (a required argument missing), then fixes it
  double distractor_rate = 0.2;  // makes one harmless read-only call that is not in the plan
  double violation_rate = 0;     // INJECTED FAULT: executes a forbidden action when the task has one
  int max_retries = 5;           // retries of a call that failed with transient/timeout
  template <class V>
  void Visit(V& v) {
    v("clarify_rate", clarify_rate, "probability that the oracle asks for confirmation before acting", {.min = 0, .max = 1});
    v("error_rate", error_rate, "probability of one invalid call that the oracle then fixes", {.min = 0, .max = 1});
    v("distractor_rate", distractor_rate, "probability of one harmless read-only call outside the plan", {.min = 0, .max = 1});
    v("violation_rate", violation_rate, "probability of executing a forbidden action (judge tests)", {.min = 0, .max = 1});
    v("max_retries", max_retries, "retries of a tool call that failed with transient/timeout", {.min = 0, .max = 100});
  }
};

// Follows PolicyRequest::task->synth: asks the user to identify themselves, runs the gold actions one
// per turn (retrying transient failures), then states the information the task requires to be
// communicated (and the refusal, on refusal tasks). Needs request.session (per-episode state) and a
// synthetic task; InvalidArgument otherwise. Thread-safe; deterministic per (session, task).
class OracleTaskPolicy : public Policy {
 public:
  explicit OracleTaskPolicy(OracleConfig config = {}) : config_(config) {}
  std::string name() const override { return "oracle"; }
  Expected<PolicyTurn> Act(const PolicyRequest& request) override;
  void EndSession(const std::string& session) override;
  size_t live_sessions() const;

  struct State;  // per-episode plan and cursor (oracle_policy.cc)

 private:
  OracleConfig config_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<State>> sessions_;
};

// Each turn: with probability `text_rate` a short text reply, else one call of a uniformly drawn tool
// from request.tools with arguments drawn from its schema's property types (often wrong: that is the
// point). Stateless; deterministic per request.seed; thread-safe.
class RandomPolicy : public Policy {
 public:
  explicit RandomPolicy(double text_rate = 0.3) : text_rate_(text_rate) {}
  std::string name() const override { return "random"; }
  Expected<PolicyTurn> Act(const PolicyRequest& request) override;

 private:
  double text_rate_;
};

}  // namespace k2::agents
