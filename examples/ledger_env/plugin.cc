// The ledger example's plugin entry point: registers the "ledger" environment kind and the
// "ledger_target" reward type with the k2gym binary that loads this library (pipeline/plugin_api.h).
#include <cstdio>

#include "ledger_env.h"
#include "pipeline/plugin_api.h"
#include "rewards/reward.h"

namespace {

// Reward "ledger_target": 1 when the episode ended by the agent's answer with the final balance equal
// to the task spec's "target", else 0. A reward reads only ScoreInput, so any runner scores it alike.
class LedgerTarget : public k2::rewards::Reward {
 public:
  std::string name() const override { return "ledger_target"; }

 protected:
  k2::Expected<k2::rewards::RewardResult> DoScore(const k2::rewards::ScoreInput& in) const override {
    K2_ASSIGN_OR_RETURN(double target, k2::rewards::GetNumber(in.task, "target", "ledger_target: task"));
    k2::rewards::RewardResult r;
    const bool stopped = in.termination == "agent_stop";
    const bool reached = in.final_state.is_object() && in.final_state.contains("balance") &&
                         in.final_state["balance"].is_number() && in.final_state["balance"].get<double>() == target;
    r.components["answered"] = stopped ? 1 : 0;
    r.components["reached"] = reached ? 1 : 0;
    r.value = stopped && reached ? 1 : 0;
    r.explanation = std::string(reached ? "balance reached " : "balance missed ") + std::to_string(target) +
                    (stopped ? "" : "; episode ended by " + in.termination);
    return r;
  }
};

}  // namespace

K2GYM_PLUGIN_EXPORT int k2gym_plugin_init(const k2gym_plugin_host* host) {
  auto fail = [host](const std::string& why) {
    if (host->error && host->error_size > 0) std::snprintf(host->error, host->error_size, "%s", why.c_str());
    return 1;
  };
  if (host->abi != K2GYM_PLUGIN_ABI) return fail("ledger plugin: host ABI " + std::to_string(host->abi) + " != " + std::to_string(K2GYM_PLUGIN_ABI));
  auto& envs = *static_cast<k2::agents::EnvRegistry*>(host->env_registry);
  k2::Status s = k2::examples::RegisterLedgerEnv(envs);
  if (!s.ok() && s.code() != k2::Code::kAlreadyExists) return fail(s.ToString());
  k2::rewards::RewardFactory f = [](const k2::json& config, const std::string& where)
      -> k2::Expected<std::unique_ptr<k2::rewards::Reward>> {
    for (auto& [k, v] : config.items())
      if (k != "type") return k2::InvalidArgument(where + ": ledger_target takes no options, got " + k);
    return std::unique_ptr<k2::rewards::Reward>(new LedgerTarget());
  };
  host->register_reward("ledger_target", &f);  // taken already (loaded twice): keep the first
  return 0;
}
