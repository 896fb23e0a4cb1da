// `k2gym reward check|types`: score a file of cases with one verifier, list reward types; registers the
// "rewards" run-config section (the composed reward and the token budgets the RL loop uses).
#include <cstdio>
#include <memory>
#include <vector>

#include "apps/cli.h"
#include "rewards/budget.h"
#include "rewards/check.h"
#include "rewards/instruction.h"

namespace k2::app {
namespace {

struct RewardsConfig {
  json reward = json{{"type", "math"}};  // reward composition (see docs/rewards.md)
  rewards::BudgetConfig budget;
  template <class V>
  void Visit(V& v) {
    v("reward", reward, "reward config: {\"type\": math|code|if|tool|ast|weighted_sum|product|gate|budget, ...}");
    v("budget", budget, "per-sample token budgets by task type and the over-budget penalty");
  }
};
K2_CONFIG_SECTION("rewards", RewardsConfig,
                  "Rewards: the composed reward of RL runs and budget control (docs/rewards.md).");

struct CheckOptions {
  std::string kind, input;
  bool verbose = false;
};

// The line a user wants first: the hack verdict, else the first failure, else the first line.
std::string FirstLine(const std::string& s) {
  std::vector<std::string> lines;
  for (size_t b = 0; b <= s.size();) {
    size_t e = s.find('\n', b);
    lines.push_back(s.substr(b, e == std::string::npos ? std::string::npos : e - b));
    if (e == std::string::npos) break;
    b = e + 1;
  }
  std::string pick = lines.front();
  for (const char* mark : {"FAIL", "HACK"})
    for (auto& l : lines)
      if (l.rfind(mark, 0) == 0) {
        pick = l;
        break;
      }
  return lines.size() > 1 ? pick + " ..." : pick;
}

int Check(Context& ctx, const CheckOptions& o) {
  auto cases = ReadJsonLines(o.input);
  if (!cases.ok()) return Fail(InvalidArgument(cases.status().message()));
  auto out = rewards::CheckCases(o.kind, *cases, o.input);
  if (!out.ok()) return Fail(out.status());
  int mismatches = 0, with_expected = 0;
  double sum = 0;
  json rows = json::array();
  for (auto& c : *out) {
    sum += c.result.value;
    with_expected += c.has_expected;
    mismatches += !c.matches;
    json row = c.result.ToJson();
    row["id"] = c.id;
    if (c.has_expected) row["matches_expected"] = c.matches;
    if (!c.matches) row["mismatch"] = c.mismatch;
    rows.push_back(row);
  }
  double mean = out->empty() ? 0 : sum / static_cast<double>(out->size());
  if (ctx.g.json) {
    ctx.PrintJson({{"kind", o.kind},
                   {"input", o.input},
                   {"cases", rows},
                   {"summary", {{"cases", out->size()}, {"mean", mean}, {"with_expected", with_expected},
                                {"mismatches", mismatches}}}});
  } else {
    std::printf("%-40s %8s  %-8s %s\n", "case", "score", "expect", "reason");
    for (auto& c : *out) {
      const char* mark = !c.has_expected ? "-" : c.matches ? "ok" : "MISMATCH";
      std::string why = o.verbose ? c.result.explanation : FirstLine(c.result.explanation);
      if (!c.matches) why = c.mismatch + " | " + why;
      std::printf("%-40s %8.4f  %-8s %s\n", c.id.c_str(), c.result.value, mark, why.c_str());
    }
    std::printf("%zu case(s), mean score %.4f; %d with expectations, %d mismatch(es)\n", out->size(), mean,
                with_expected, mismatches);
  }
  return mismatches ? kExitRuntime : kExitOk;
}

int Types(Context& ctx) {
  json j = {{"rewards", rewards::RewardTypes()}, {"if_constraints", rewards::ConstraintTypes()}};
  if (ctx.g.json) {
    ctx.PrintJson(j);
    return kExitOk;
  }
  std::printf("reward types:");
  for (auto& t : rewards::RewardTypes()) std::printf(" %s", t.c_str());
  std::printf("\ninstruction constraints (kind if):");
  for (auto& t : rewards::ConstraintTypes()) std::printf(" %s", t.c_str());
  std::printf("\n");
  return kExitOk;
}

K2_COMMAND("reward", [](CLI::App& app, Context& ctx, Action* action) {
  auto* c = app.add_subcommand("reward", "Verifiable rewards: test a verifier on your own cases");
  c->require_subcommand(1);
  auto opts = std::make_shared<CheckOptions>();
  auto* chk = c->add_subcommand("check", "Score a JSONL file of cases with one verifier; print per-case scores and reasons");
  chk->add_option("--kind", opts->kind, "verifier: math, code, if, tool, ast (or a registered reward type)")->required();
  chk->add_option("--input", opts->input, "JSON Lines file, one case a line (docs/rewards.md)")->required();
  chk->add_flag("--explain", opts->verbose, "print every line of each explanation");
  chk->callback([action, opts] { *action = [opts](Context& ctx) { return Check(ctx, *opts); }; });
  c->add_subcommand("types", "List reward types and instruction constraints")->callback([action] { *action = Types; });
});

}  // namespace
}  // namespace k2::app
