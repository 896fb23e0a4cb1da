// Plots and the run report: metric curves as hand-written SVG (no plotting dependency) and one
// self-contained HTML page (grouped, smoothed, overlaid curves, held-out results and a trajectory viewer
// with the data inlined) for `k2gym plot` and `k2gym report`. Pure functions over loaded data;
// thread-safe. Bad input files are Status.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "core/store.h"

namespace k2::rl {

using Series = std::vector<std::pair<int64_t, double>>;  // (step, value), ordered by step
using RunMetrics = std::map<std::string, Series>;        // key -> series

// A long-format metrics.csv (step,key,value,t). Errors name FILE:LINE.
Expected<RunMetrics> ReadMetricsCsv(const std::string& path);
// Every metric of a store run.
Expected<RunMetrics> ReadRunMetrics(Db* db, int64_t run);

// Report panels, in display order: (id, title). Every metric key belongs to one (MetricPanel).
const std::vector<std::pair<std::string, std::string>>& ReportPanels();
// The panel of a metric key: reward, success, length, loss, heldout, optimizer, throughput or other
// ("source.<name>.<metric>" keys go to the per-source section, not to a panel: "source").
std::string MetricPanel(const std::string& key);

// TensorBoard's smoothing: an exponential moving average with weight w in [0, 1), debiased so the first
// points are not pulled towards 0. w = 0 returns the series.
Series Smooth(const Series& s, double w);

// True when every finite value of `key` in every run is one value (a flat curve says nothing: the report
// lists it instead of drawing it). Absent or empty series count as constant.
bool IsConstantSeries(const std::vector<const RunMetrics*>& runs, const std::string& key);

struct ChartOptions {
  int cols = 3;
  std::string x_title = "step";  // the x axis' title; each chart's y title is its key
  double smooth = 0;             // Smooth weight; > 0 with > 8 points: the raw line faint beneath
};
// Small multiples: one chart per key (keys in order), `cols` per row, each with axes, min/max labels,
// axis titles and one polyline per run (colours in run order: kRunColors). Non-finite values are
// skipped. Deterministic text.
std::string RenderCharts(const std::vector<const RunMetrics*>& runs, const std::vector<std::string>& keys,
                         const ChartOptions& options);
// One run, raw lines (k2gym plot).
std::string RenderSvg(const RunMetrics& metrics, const std::vector<std::string>& keys, int cols = 3);

// One run of a report.
struct ReportRun {
  std::string label;   // "run 3 (rl)", a directory
  std::string kind;    // pretrain, sft, rl, eval, simulate, or "" (a directory's metrics.csv)
  RunMetrics metrics;  // may be empty (eval, simulate)
  json summary;        // eval: the stored summary (its "rows": pass^k per group); simulate: its counts
};

// The report page: title; a legend when several runs are overlaid; held-out results (eval summaries);
// a summary table (first/last value of each metric per run); the curves grouped in panels (reward,
// success, length, loss, held-out, optimizer, throughput, other), smoothed, axes titled, constant
// series listed instead of drawn, every run overlaid on the same charts; the per-source section; a
// viewer over `trajectories` (agents::Trajectory JSON, or {"task_id", "trial", "reward", "messages"}
// with τ²-style tool calls) that the page's script builds.
std::string RenderReportHtml(const std::string& title, const std::vector<ReportRun>& runs,
                             const std::vector<json>& trajectories);
// One unlabelled run.
std::string RenderReportHtml(const std::string& title, const RunMetrics& metrics, const std::vector<json>& trajectories);

// Escapes text for HTML element content and attribute values.
std::string HtmlEscape(const std::string& s);

}  // namespace k2::rl
