// Metrics: (run, step, key, value) rows written to the store and to a long-format CSV
// (step,key,value,t; values in their shortest exact decimal form) that plots directly. Buffered; Flush() writes one transaction, Commit() makes it durable.
// Not thread-safe: one logger per writer thread (each with its own Db).
//
// Crash consistency with checkpoints: a trainer Commit()s its rows before publishing a checkpoint and
// records the returned position in it; a resume cuts both sinks back to that position
// (TruncateMetrics), so every (step, key) is logged exactly once however the process died.
#pragma once

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/store.h"

namespace k2 {

// Where the committed rows of a run end: metrics.csv's size in bytes and the largest store rowid of
// the run (-1 = no sink / no row).
struct MetricsMark {
  int64_t csv_bytes = -1;
  int64_t store_rowid = -1;
  json ToJson() const { return {{"csv_bytes", csv_bytes}, {"store_rowid", store_rowid}}; }
  static Expected<MetricsMark> FromJson(const json& j, const std::string& where);
};

class MetricsLogger {
 public:
  // db may be null (CSV only); csv_path may be empty (store only). The CSV is appended to.
  MetricsLogger(Db* db, int64_t run, std::string csv_path);
  ~MetricsLogger();  // flushes; errors are reported to stderr

  void Log(int64_t step, const std::string& key, double value);
  Status Flush();
  // Flush, then fsync the CSV and beat the run's heartbeat; returns the position of the last row.
  Expected<MetricsMark> Commit();
  int64_t run() const { return run_; }

 private:
  struct Row {
    int64_t step;
    std::string key;
    double value;
    double t;
  };
  Db* db_;
  int64_t run_;
  std::string csv_path_;
  FILE* csv_ = nullptr;
  std::vector<Row> pending_;
};

// Drops the rows of `run` after `mark` (CSV cut to mark.csv_bytes; store rows with a larger rowid):
// what a killed process logged after its last checkpoint. mark.csv_bytes < 0 empties the CSV,
// mark.store_rowid < 0 deletes all of the run's store rows.
Status TruncateMetrics(Db* db, int64_t run, const std::string& csv_path, const MetricsMark& mark);
// For checkpoints without a mark: keeps only the rows with step < `step` in both sinks.
Status TruncateMetricsFromStep(Db* db, int64_t run, const std::string& csv_path, int64_t step);

// The rows of metrics.csv with step < `steps`, one map (key -> value) per step 0..steps-1 (a step
// without rows gives an empty map). Values round-trip: the CSV holds the shortest exact decimal form.
Expected<std::vector<std::map<std::string, double>>> ReadMetricHistoryCsv(const std::string& csv_path, int64_t steps);

// Reads back one metric series of a run from the store, ordered by step.
Expected<std::vector<std::pair<int64_t, double>>> ReadMetric(Db* db, int64_t run, const std::string& key);

}  // namespace k2
