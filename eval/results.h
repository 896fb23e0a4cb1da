// Eval results: one record per (case, trial) for both suite kinds, the summary tables (per domain or
// category: tasks, trials, average reward, pass^k), their text form, and persistence in the store
// (module migrations "eval": eval_runs + eval_trials, keyed by the core runs table).
//
// Pure functions except Save*/Load*, which use the given Db (one thread at a time).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "core/store.h"

namespace k2::eval {

struct TrialRecord {
  std::string case_id;
  std::string group;     // τ²: domain path; function calling: category
  int trial = 0;
  double reward = 0;
  bool success = false;  // reward == 1
  std::string end_reason;  // τ²: the episode's end reason; function calling: "" or the failure kind
  std::string detail;      // the verifier's explanation
  json components = json::object();
  json trajectory;         // τ²: Trajectory JSON (null when not kept)
};

// {"suite", "kind", "policy", "trials", "ks", "rows": [{"group", "tasks", "trials", "avg_reward",
//  "pass_hat": {"1": p, ...}, "tasks_at": {...}}...] (groups sorted, then "all"), "end_reasons": {reason: n},
//  "context_exceeded": trials whose detail carries a served model's context_length_exceeded refusal}.
Expected<json> Summarize(const std::vector<TrialRecord>& records, const std::vector<int64_t>& ks, const json& meta);

// The summary as a fixed-width table (one line per group, then "all", then end reasons).
std::string FormatSummary(const json& summary);
// Two summaries side by side: per group present in either, pass^k of A, of B and B - A.
std::string FormatCompare(const json& a, const json& b, int64_t run_a, int64_t run_b);

// Paired comparison of two runs' trials on the cases both ran. Per case, its success rate (successes /
// trials, i.e. pass^1). A case bootstrap (`resamples` draws of the shared cases with replacement, seeded)
// gives 95% percentile intervals of A's and B's mean rate and of B - A, paired by case. A case "flipped"
// when its rate moved by at least 0.5 (gained or lost). {"cases", "only_a", "only_b", "resamples", "seed",
// "a": {"mean", "lo", "hi"}, "b": {...}, "diff": {...}, "flipped": [{"case", "group", "a", "b"}] sorted
// by case}. InvalidArgument when no case is shared.
Expected<json> PairedCompare(const std::vector<TrialRecord>& a, const std::vector<TrialRecord>& b, uint64_t seed,
                             int resamples = 2000);
// Its text form: one line per interval, then the flipped cases (at most `max_listed`, then a count).
std::string FormatPaired(const json& paired, size_t max_listed = 20);

const Migrations& EvalMigrations();
// Stores the summary and every record under `run` (a runs row of kind "eval"), in one transaction.
Status SaveEvalRun(Db* db, int64_t run, const json& summary, const std::vector<TrialRecord>& records);
// Streaming: records as they finish (a (case, trial) stored again replaces its row), then the summary
// once the run ends (replacing an earlier one: an interrupted run's partial table).
Status SaveEvalTrials(Db* db, int64_t run, const std::vector<TrialRecord>& records);
Status SaveEvalSummary(Db* db, int64_t run, const json& summary);
// Every record stored under `run`, ordered by (case, trial).
Expected<std::vector<TrialRecord>> LoadEvalTrials(Db* db, int64_t run);
// NotFound naming the run when it has no eval summary.
Expected<json> LoadEvalSummary(Db* db, int64_t run);

}  // namespace k2::eval
