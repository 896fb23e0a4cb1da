// `k2gym plot RUN` (metric curves as SVG) and `k2gym report RUN [RUN...]` (one self-contained HTML page:
// held-out results, grouped curves of every run overlaid, a trajectory viewer). RUN is a run directory
// holding metrics.csv (sft, rl, pretrain) or a store run (id or name) of any kind.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "agents/export.h"
#include "apps/cli.h"
#include "eval/results.h"
#include "rl/report.h"

namespace k2::app {
namespace {

struct ReportArgs {
  std::string run, out;
  std::vector<std::string> runs;  // report: one or more (overlaid)
  std::vector<std::string> keys;
  int64_t per_iteration = 3;
  int64_t max_trajectories = 200;
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

// A run directory (metrics.csv, trajectories/iter_*.jsonl, eval_trajectories.jsonl).
Status LoadDirectory(const std::string& dir, rl::ReportRun* r, std::vector<json>* trajs) {
  r->label = dir;
  K2_ASSIGN_OR_RETURN(r->metrics, rl::ReadMetricsCsv(dir + "/metrics.csv"));
  if (auto sr = ReadJsonFile(dir + "/store_run.json"); sr.ok() && sr->is_object() && sr->contains("kind") &&
                                                          (*sr)["kind"].is_string())
    r->kind = (*sr)["kind"].get<std::string>();
  if (r->kind.empty() && std::filesystem::is_directory(dir + "/trajectories")) r->kind = "rl";
  const std::string tdir = dir + "/trajectories";
  if (std::filesystem::is_directory(tdir)) {
    std::vector<std::pair<int64_t, std::string>> files;
    for (const auto& e : std::filesystem::directory_iterator(tdir)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("iter_", 0) == 0 && name.size() > 11 && name.substr(name.size() - 6) == ".jsonl")
        files.push_back({std::atoll(name.c_str() + 5), e.path().string()});
    }
    std::sort(files.begin(), files.end());
    for (const auto& [it, path] : files) {
      K2_ASSIGN_OR_RETURN(auto lines, ReadJsonLines(path));
      for (int64_t i = 0; i < std::min<int64_t>(rargs.per_iteration, static_cast<int64_t>(lines.size())); ++i)
        trajs->push_back(lines[i]);
    }
  }
  const std::string evalf = dir + "/eval_trajectories.jsonl";
  if (std::filesystem::exists(evalf)) {
    K2_ASSIGN_OR_RETURN(auto lines, ReadJsonLines(evalf));
    for (auto& l : lines) trajs->push_back(l);
  }
  return Status();
}

// A store run of any kind, by id or name: its metrics; eval runs their summary and trials (those that
// kept a trajectory go to the viewer); simulate runs their episodes' counts and trajectories.
Status LoadStoreRun(Context& ctx, const std::string& ref, rl::ReportRun* r, std::vector<json>* trajs) {
  K2_ASSIGN_OR_RETURN(auto db, ctx.OpenDb());
  K2_ASSIGN_OR_RETURN(RunInfo info, FindRun(db.get(), ref));
  r->kind = info.kind;
  r->label = "run " + std::to_string(info.id) + " (" + info.kind + (info.name.empty() ? "" : ", " + info.name) + ")";
  auto m = rl::ReadRunMetrics(db.get(), info.id);
  if (m.ok()) r->metrics = std::move(*m);
  else if (m.status().code() != Code::kNotFound) return m.status();
  const int64_t cap = rargs.max_trajectories;
  if (info.kind == "eval") {
    K2_ASSIGN_OR_RETURN(r->summary, eval::LoadEvalSummary(db.get(), info.id));
    K2_ASSIGN_OR_RETURN(auto trials, eval::LoadEvalTrials(db.get(), info.id));
    for (const auto& t : trials) {
      if (static_cast<int64_t>(trajs->size()) >= cap) break;
      json v = {{"task_id", t.case_id}, {"trial", t.trial}, {"reward", t.reward}, {"end_reason", t.end_reason}};
      if (t.trajectory.is_object() && t.trajectory.contains("messages")) {
        v["messages"] = t.trajectory["messages"];
        if (t.trajectory.contains("turns")) v["turns"] = t.trajectory["turns"];
      } else if (t.trajectory.is_array()) {
        v["messages"] = t.trajectory;  // τ² messages
      } else if (t.trajectory.is_object() && t.trajectory.contains("role")) {
        v["messages"] = json::array({t.trajectory});  // a function-calling reply
      } else {
        continue;
      }
      trajs->push_back(std::move(v));
    }
  } else if (info.kind == "simulate") {
    K2_ASSIGN_OR_RETURN(auto ts, agents::LoadRunTrajectories(db.get(), info.id));
    int64_t kept = 0;
    double reward = 0;
    std::map<std::string, int64_t> ends;
    for (const auto& t : ts) {
      reward += t.reward;
      kept += t.provenance.value("keep", false) ? 1 : 0;
      ++ends[t.end_reason];
      if (static_cast<int64_t>(trajs->size()) < cap) trajs->push_back(t.ToJson());
    }
    json e = json::object();
    for (auto& [k, v] : ends) e[k] = v;
    r->summary = {{"episodes", ts.size()}, {"kept", kept}, {"reward_mean", ts.empty() ? 0.0 : reward / static_cast<double>(ts.size())},
                  {"end_reasons", e}, {"status", info.status}};
  } else if (r->metrics.empty()) {
    return NotFound(ref + ": run " + std::to_string(info.id) + " (" + info.kind + ") has no metrics in the store");
  }
  return Status();
}

int Report(Context& ctx) {
  std::vector<rl::ReportRun> runs;
  std::vector<json> trajs;
  for (const auto& ref : rargs.runs) {
    rl::ReportRun r;
    // A run directory (holding metrics.csv), else a store run (id or name).
    const bool dir = std::filesystem::is_directory(ref) && std::filesystem::exists(ref + "/metrics.csv");
    if (Status s = dir ? LoadDirectory(ref, &r, &trajs) : LoadStoreRun(ctx, ref, &r, &trajs); !s.ok()) {
      if (!dir && std::filesystem::is_directory(ref))
        return Fail(NotFound(ref + ": no metrics.csv (give a run directory or a store run id or name)"));
      return Fail(s);
    }
    runs.push_back(std::move(r));
  }
  const std::string& first = rargs.runs.front();
  const bool first_dir = std::filesystem::is_directory(first);
  std::string out = rargs.out;
  if (out.empty()) {
    if (runs.size() > 1) return Fail(InvalidArgument("report: several runs overlaid need --out FILE.html"));
    out = first_dir ? first + "/report.html" : "run_" + first + ".html";
  }
  std::string title = "k2gym " + runs.front().label;
  for (size_t i = 1; i < runs.size(); ++i) title += " vs " + runs[i].label;
  if (Status s = WriteFileAtomic(out, rl::RenderReportHtml(title, runs, trajs)); !s.ok()) return Fail(s);
  size_t metrics = 0;
  for (const auto& r : runs) metrics += r.metrics.size();
  if (ctx.g.json) ctx.PrintJson({{"html", out}, {"runs", runs.size()}, {"metrics", metrics}, {"trajectories", trajs.size()}});
  else if (!ctx.g.quiet)
    std::printf("report: %zu run(s), %zu metrics, %zu trajectories -> %s\n", runs.size(), metrics, trajs.size(), out.c_str());
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
  auto* c = app.add_subcommand("report", "One self-contained HTML page: held-out results, grouped curves, trajectory viewer; several runs overlaid");
  c->add_option("runs", rargs.runs, "run directories (with metrics.csv) or store runs (id or name) of any kind; several are overlaid")
      ->required();
  c->add_option("--out", rargs.out, "HTML file (default RUN/report.html or run_RUN.html; required for several runs)");
  c->add_option("--per-iteration", rargs.per_iteration, "trajectories shown per RL iteration")->capture_default_str();
  c->add_option("--max-trajectories", rargs.max_trajectories, "trajectories of a store run (eval, simulate) in the viewer")
      ->capture_default_str();
  c->callback([action] { *action = Report; });
});

}  // namespace k2::app
