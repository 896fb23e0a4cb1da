// pass^k by the product form of the binomial ratio, and the per-domain aggregation.
#include "eval/passk.h"

namespace k2::eval {

Expected<double> PassHatK(int64_t n, int64_t c, int64_t k) {
  if (n < 1 || c < 0 || c > n) return InvalidArgument("pass^k: need 0 <= c <= n and n >= 1, got n=" + std::to_string(n) + " c=" + std::to_string(c));
  if (k < 1 || k > n) return InvalidArgument("pass^k: need 1 <= k <= n, got k=" + std::to_string(k) + " n=" + std::to_string(n));
  if (c < k) return 0.0;
  double p = 1;
  for (int64_t i = 0; i < k; ++i) p *= static_cast<double>(c - i) / static_cast<double>(n - i);
  return p;
}

Expected<std::vector<PassRow>> PassTable(const std::vector<TaskTrials>& tasks, const std::vector<int64_t>& ks) {
  for (int64_t k : ks)
    if (k < 1) return InvalidArgument("pass^k: k must be >= 1, got " + std::to_string(k));
  std::map<std::string, std::vector<const TaskTrials*>> by_domain;
  for (auto& t : tasks) {
    if (t.n < 1 || t.c < 0 || t.c > t.n)
      return InvalidArgument("pass^k: task " + t.task_id + ": need 0 <= successes <= trials, trials >= 1");
    by_domain[t.domain].push_back(&t);
  }
  auto row = [&](const std::string& name, const std::vector<const TaskTrials*>& ts) -> Expected<PassRow> {
    PassRow r;
    r.domain = name;
    r.tasks = static_cast<int64_t>(ts.size());
    double rs = 0;
    for (auto* t : ts) {
      r.trials += t->n;
      rs += t->reward_sum;
    }
    r.avg_reward = r.trials ? rs / static_cast<double>(r.trials) : 0;
    for (int64_t k : ks) {
      double s = 0;
      int64_t m = 0;
      for (auto* t : ts) {
        if (t->n < k) continue;  // pass^k is undefined with fewer than k trials
        K2_ASSIGN_OR_RETURN(double p, PassHatK(t->n, t->c, k));
        s += p;
        ++m;
      }
      r.pass_hat[k] = m ? s / static_cast<double>(m) : 0;
      r.tasks_at[k] = m;
    }
    return r;
  };
  std::vector<PassRow> out;
  std::vector<const TaskTrials*> all;
  for (auto& [d, ts] : by_domain) {
    K2_ASSIGN_OR_RETURN(PassRow r, row(d, ts));
    out.push_back(std::move(r));
    all.insert(all.end(), ts.begin(), ts.end());
  }
  K2_ASSIGN_OR_RETURN(PassRow r, row("all", all));
  out.push_back(std::move(r));
  return out;
}

}  // namespace k2::eval
