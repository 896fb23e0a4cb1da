// Example: a small C++ environment to copy when registering your own, built as a plugin out of the
// k2gym tree (CMakeLists.txt here: find_package(k2gym)). A ledger with three tools (deposit, withdraw,
// balance); the goal is to reach a target balance, then answer. plugin.cc registers the kind "ledger"
// and the reward type "ledger_target" with a host binary (`k2gym ... --plugin libledger_env.so`).
#pragma once

#include "agents/env.h"

namespace k2::examples {

// Task JSON: {"target": 120, "start": 50 (optional; else drawn from the seed), "prompt": "..." (optional)}.
// Reward (the environment's own): 1 when the final answer comes with balance == target, else 0.
class LedgerEnv final : public agents::ToolEnv {
 public:
  // Config: {"max_steps": 16, "max_amount": 1000} (both optional).
  static Expected<std::unique_ptr<agents::Env>> Make(const json& config);
  int64_t balance() const { return balance_; }
  // {"balance": N, "target": T}: what DB-style rewards compare after the episode.
  json State() const override { return {{"balance", balance_}, {"target", target_}}; }

 protected:
  Expected<std::vector<Message>> OnReset(uint64_t seed, const json& task) override;
  Expected<agents::ToolOutcome> Invoke(const std::string& tool, const json& arguments) override;
  double OnFinish(const Message& final_answer) override;

 private:
  LedgerEnv(int max_steps, int64_t max_amount) : ToolEnv(max_steps), max_amount_(max_amount) {}
  int64_t max_amount_;
  int64_t balance_ = 0;
  int64_t target_ = 0;
};

// Adds "ledger" to `registry` (the plugin entry point calls this with the host's registry).
Status RegisterLedgerEnv(agents::EnvRegistry& registry);

}  // namespace k2::examples
