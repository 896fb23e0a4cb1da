// Metrics: (run, step, key, value) rows written to the store and to a long-format CSV
// (step,key,value,t) that plots directly. Buffered; Flush() writes one transaction.
// Not thread-safe: one logger per writer thread (each with its own Db).
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "core/store.h"

namespace k2 {

class MetricsLogger {
 public:
  // db may be null (CSV only); csv_path may be empty (store only).
  MetricsLogger(Db* db, int64_t run, std::string csv_path);
  ~MetricsLogger();  // flushes; errors are reported to stderr

  void Log(int64_t step, const std::string& key, double value);
  Status Flush();
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

// Reads back one metric series of a run from the store, ordered by step.
Expected<std::vector<std::pair<int64_t, double>>> ReadMetric(Db* db, int64_t run, const std::string& key);

}  // namespace k2
