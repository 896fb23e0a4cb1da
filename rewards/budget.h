// Budget control (K2 recipe): a per-sample token budget by task type; a response over it is truncated
// by the caller (kept_tokens) and penalized here, the penalty reported as its own component.
//
// Boundary, pinned by tests: tokens <= budget is within budget (no penalty); tokens == budget + 1 is over.
#pragma once

#include <cstdint>
#include <string>

#include "core/config.h"
#include "rewards/reward.h"

namespace k2::rewards {

struct BudgetConfig {
  json budgets = json::object();  // {"math": 4096, "code": 8192, ...}: task type -> max response tokens
  int64_t default_budget = 0;     // for task types not listed; 0 = unlimited
  double penalty = 0.5;           // subtracted from the reward of an over-budget sample
  std::string over_budget = "penalize";  // "penalize": value - penalty; "zero": value = -penalty

  template <class V>
  void Visit(V& v) {
    v("budgets", budgets, "task type -> max response tokens (integer >= 1)");
    v("default_budget", default_budget, "budget for unlisted task types; 0 = unlimited", {.min = 0});
    v("penalty", penalty, "penalty subtracted when a response exceeds its budget", {.min = 0});
    v("over_budget", over_budget, "penalize: reward - penalty; zero: the reward is replaced by -penalty",
      {.choices = {"penalize", "zero"}});
  }
  // Checks what Visit cannot (the free-form `budgets` map).
  Status Validate(const std::string& where) const;
};

// Reads and validates a BudgetConfig from JSON (strict keys).
Expected<BudgetConfig> BudgetConfigFromJson(const json& j, const std::string& where);

struct BudgetDecision {
  int64_t budget = 0;       // 0 = unlimited
  bool over = false;        // tokens > budget
  int64_t kept_tokens = 0;  // min(tokens, budget): the caller truncates the sample (and its loss mask) here
  double penalty = 0;       // >= 0; 0 when within budget
};

BudgetDecision CheckBudget(const BudgetConfig& cfg, const std::string& task_type, int64_t tokens);

// Wraps a reward: value = inner (within budget), inner - penalty or -penalty (over budget);
// components add "budget_penalty" (<= 0) and "over_budget" (0/1).
Expected<std::unique_ptr<Reward>> MakeBudgetReward(std::unique_ptr<Reward> inner, BudgetConfig cfg);

}  // namespace k2::rewards
