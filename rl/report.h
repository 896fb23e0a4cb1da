// Plots and the run report: metric curves as hand-written SVG (no plotting dependency) and one
// self-contained HTML page (curves + a trajectory viewer with the data inlined) for `k2gym plot` and
// `k2gym report`. Pure functions over loaded data; thread-safe. Bad input files are Status.
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

// Small multiples: one chart per key (keys in order), `cols` per row, each with axes, min/max labels
// and a polyline. Non-finite values are skipped. Deterministic text.
std::string RenderSvg(const RunMetrics& metrics, const std::vector<std::string>& keys, int cols = 3);

// The report page: title, a summary table (first/last value of each key), the SVG, and a viewer over
// `trajectories` (agents::Trajectory JSON objects, each with provenance.rl_iteration when present).
std::string RenderReportHtml(const std::string& title, const RunMetrics& metrics, const std::vector<json>& trajectories);

// Escapes text for HTML element content and attribute values.
std::string HtmlEscape(const std::string& s);

}  // namespace k2::rl
