// `k2gym plot RUN` (metric curves as SVG) and `k2gym report RUN` (one self-contained HTML page with the
// curves, a summary table and a trajectory viewer). RUN is a run directory holding metrics.csv (sft,
// rl, pretrain) or a run id of the store.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "apps/cli.h"
#include "rl/report.h"

namespace k2::app {
namespace {

struct ReportArgs {
  std::string run, out;
  std::vector<std::string> keys;
  int64_t per_iteration = 3;
} rargs;

bool IsNumber(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

Expected<rl::RunMetrics> LoadMetrics(Context& ctx, const std::string& run) {
  if (IsNumber(run) && !std::filesystem::exists(run)) {
    K2_ASSIGN_OR_RETURN(auto db, ctx.OpenDb());
    return rl::ReadRunMetrics(db.get(), std::stoll(run));
  }
  const std::string csv = run + "/metrics.csv";
  if (!std::filesystem::exists(csv)) return NotFound(run + ": no metrics.csv (give a run directory or a store run id)");
  return rl::ReadMetricsCsv(csv);
}

int Plot(Context& ctx) {
  auto m = LoadMetrics(ctx, rargs.run);
  if (!m.ok()) return Fail(m.status());
  std::vector<std::string> keys = rargs.keys;
  if (keys.empty())
    for (const auto& [k, s] : *m)
      if (k.rfind("max_logit/", 0) != 0) keys.push_back(k);
  for (const auto& k : keys)
    if (!m->count(k)) return Fail(InvalidArgument("plot: no metric \"" + k + "\" in " + rargs.run));
  std::string out = rargs.out.empty() ? (IsNumber(rargs.run) ? "run_" + rargs.run + ".svg" : rargs.run + "/curves.svg") : rargs.out;
  if (Status s = WriteFileAtomic(out, rl::RenderSvg(*m, keys, 3)); !s.ok()) return Fail(s);
  if (ctx.g.json) ctx.PrintJson({{"svg", out}, {"charts", keys.size()}});
  else if (!ctx.g.quiet) std::printf("plot: %zu curves -> %s\n", keys.size(), out.c_str());
  return kExitOk;
}

int Report(Context& ctx) {
  auto m = LoadMetrics(ctx, rargs.run);
  if (!m.ok()) return Fail(m.status());
  std::vector<json> trajs;
  const std::string dir = rargs.run + "/trajectories";
  if (std::filesystem::is_directory(dir)) {
    std::vector<std::pair<int64_t, std::string>> files;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("iter_", 0) == 0 && name.size() > 11 && name.substr(name.size() - 6) == ".jsonl")
        files.push_back({std::atoll(name.c_str() + 5), e.path().string()});
    }
    std::sort(files.begin(), files.end());
    for (const auto& [it, path] : files) {
      auto lines = ReadJsonLines(path);
      if (!lines.ok()) return Fail(lines.status());
      for (int64_t i = 0; i < std::min<int64_t>(rargs.per_iteration, static_cast<int64_t>(lines->size())); ++i)
        trajs.push_back((*lines)[i]);
    }
  }
  const std::string evalf = rargs.run + "/eval_trajectories.jsonl";
  if (std::filesystem::exists(evalf)) {
    auto lines = ReadJsonLines(evalf);
    if (!lines.ok()) return Fail(lines.status());
    for (auto& l : *lines) trajs.push_back(l);
  }
  std::string out = rargs.out.empty() ? (IsNumber(rargs.run) ? "run_" + rargs.run + ".html" : rargs.run + "/report.html") : rargs.out;
  if (Status s = WriteFileAtomic(out, rl::RenderReportHtml("k2gym run " + rargs.run, *m, trajs)); !s.ok()) return Fail(s);
  if (ctx.g.json) ctx.PrintJson({{"html", out}, {"metrics", m->size()}, {"trajectories", trajs.size()}});
  else if (!ctx.g.quiet) std::printf("report: %zu metrics, %zu trajectories -> %s\n", m->size(), trajs.size(), out.c_str());
  return kExitOk;
}

}  // namespace

K2_COMMAND("plot", [](CLI::App& app, Context& ctx, Action* action) {
  auto* c = app.add_subcommand("plot", "Metric curves of a run as SVG (docs/training.md)");
  c->add_option("run", rargs.run, "run directory (with metrics.csv) or store run id")->required();
  c->add_option("--out", rargs.out, "SVG file (default RUN/curves.svg)");
  c->add_option("--key", rargs.keys, "metrics to plot (repeatable; default all but per-head logits)");
  c->callback([action] { *action = Plot; });
});

K2_COMMAND("report", [](CLI::App& app, Context& ctx, Action* action) {
  auto* c = app.add_subcommand("report", "One self-contained HTML page: curves, summary, trajectory viewer");
  c->add_option("run", rargs.run, "run directory (with metrics.csv) or store run id")->required();
  c->add_option("--out", rargs.out, "HTML file (default RUN/report.html)");
  c->add_option("--per-iteration", rargs.per_iteration, "trajectories shown per RL iteration")->capture_default_str();
  c->callback([action] { *action = Report; });
});

}  // namespace k2::app
