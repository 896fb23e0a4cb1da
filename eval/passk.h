// pass^k (τ²-bench): the chance that k trials drawn without replacement from a task's n trials all
// succeed, C(c,k)/C(n,k) for c successes, averaged over tasks; and the per-domain tables built from it.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace k2::eval {

// C(c,k)/C(n,k) computed as prod_{i<k} (c-i)/(n-i) (no overflow for any n). 0 when c < k.
// InvalidArgument unless 0 <= c <= n and 1 <= k <= n.
Expected<double> PassHatK(int64_t n, int64_t c, int64_t k);

// One task's trial outcomes (success = reward >= the success threshold, τ² uses exactly 1).
struct TaskTrials {
  std::string task_id, domain;
  int64_t n = 0, c = 0;
  double reward_sum = 0;  // for the average reward
};

struct PassRow {
  std::string domain;                  // "all" for the overall row
  int64_t tasks = 0, trials = 0;
  double avg_reward = 0;               // mean over all trials
  std::map<int64_t, double> pass_hat;  // k -> mean over tasks of PassHatK(n, c, k); tasks with n < k excluded
  std::map<int64_t, int64_t> tasks_at; // k -> tasks that had >= k trials
};

// Per-domain rows (sorted by domain) followed by the "all" row. `ks` are the k values to report.
Expected<std::vector<PassRow>> PassTable(const std::vector<TaskTrials>& tasks, const std::vector<int64_t>& ks);

}  // namespace k2::eval
