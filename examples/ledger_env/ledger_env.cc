// Example environment (copy me): tools declared as MCP ToolSpecs, state restored on reset from the
// task and seed, tool calls applied in Invoke, the environment's own reward in OnFinish.
#include "ledger_env.h"

#include "core/rng.h"

namespace k2::examples {

Expected<std::unique_ptr<agents::Env>> LedgerEnv::Make(const json& config) {
  if (!config.is_object()) return InvalidArgument("ledger config: expected an object");
  for (auto& [k, v] : config.items())
    if (k != "max_steps" && k != "max_amount") return InvalidArgument("ledger config: unknown key " + json(k).dump());
  int max_steps = config.value("max_steps", 16);
  int64_t max_amount = config.value("max_amount", int64_t{1000});
  if (max_steps < 1 || max_amount < 1) return InvalidArgument("ledger config: max_steps and max_amount must be >= 1");
  std::unique_ptr<LedgerEnv> env(new LedgerEnv(max_steps, max_amount));
  const json amount = {{"type", "object"},
                       {"properties", {{"amount", {{"type", "integer"}, {"minimum", 1}, {"maximum", max_amount}}}}},
                       {"required", {"amount"}},
                       {"additionalProperties", false}};
  std::vector<toolgen::ToolSpec> tools = {
      {.name = "deposit", .description = "Add an amount to the balance", .input_schema = amount,
       .provenance = "example:ledger"},
      {.name = "withdraw", .description = "Take an amount from the balance (fails if it would go negative)",
       .input_schema = amount, .provenance = "example:ledger"},
      {.name = "balance", .description = "Read the current balance",
       .input_schema = {{"type", "object"}, {"properties", json::object()}, {"additionalProperties", false}},
       .annotations = {{"readOnlyHint", true}}, .provenance = "example:ledger"},
  };
  K2_RETURN_IF_ERROR(env->SetTools(std::move(tools)));
  return std::unique_ptr<agents::Env>(std::move(env));
}

Expected<std::vector<Message>> LedgerEnv::OnReset(uint64_t seed, const json& task) {
  if (!task.is_object() || !task.contains("target") || !task["target"].is_number_integer())
    return InvalidArgument("ledger task: target: expected an integer");
  target_ = task["target"];
  if (task.contains("start")) {
    if (!task["start"].is_number_integer()) return InvalidArgument("ledger task: start: expected an integer");
    balance_ = task["start"];
  } else {
    Rng rng(seed);  // each episode's randomness comes from its seed only
    balance_ = static_cast<int64_t>(rng.Next() % 100);
  }
  json t = task;
  if (!t.contains("prompt"))
    t["prompt"] = "Bring the balance to exactly " + std::to_string(target_) + ", then say done.";
  return TaskMessages(t, "You manage a ledger. Use the tools.");
}

Expected<agents::ToolOutcome> LedgerEnv::Invoke(const std::string& tool, const json& args) {
  // Arguments were already validated against the tool's schema by ToolEnv.
  if (tool == "balance") return agents::ToolOutcome{std::to_string(balance_)};
  int64_t amount = args["amount"];
  if (tool == "deposit") {
    balance_ += amount;
    return agents::ToolOutcome{"balance " + std::to_string(balance_)};
  }
  if (amount > balance_) return agents::ToolOutcome{"insufficient funds: balance " + std::to_string(balance_), {}, true};
  balance_ -= amount;
  return agents::ToolOutcome{"balance " + std::to_string(balance_)};
}

double LedgerEnv::OnFinish(const Message&) { return balance_ == target_ ? 1.0 : 0.0; }

Status RegisterLedgerEnv(agents::EnvRegistry& registry) {
  return registry.Register({.name = "ledger",
                            .description = "example C++ environment: reach a target balance with deposit/withdraw",
                            .example_config = {{"max_steps", 16}}},
                           LedgerEnv::Make);
}

}  // namespace k2::examples
