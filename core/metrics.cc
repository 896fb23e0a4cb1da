// Metrics logger: store + CSV.
#include "core/metrics.h"

#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace k2 {

MetricsLogger::MetricsLogger(Db* db, int64_t run, std::string csv_path)
    : db_(db), run_(run), csv_path_(std::move(csv_path)) {
  if (!csv_path_.empty()) {
    struct stat st {};
    bool empty = ::stat(csv_path_.c_str(), &st) != 0 || st.st_size == 0;
    csv_ = std::fopen(csv_path_.c_str(), "a");
    if (!csv_) std::fprintf(stderr, "metrics: cannot open %s: %s\n", csv_path_.c_str(), std::strerror(errno));
    else if (empty) std::fprintf(csv_, "step,key,value,t\n");
  }
}

MetricsLogger::~MetricsLogger() {
  Status s = Flush();
  if (!s.ok()) std::fprintf(stderr, "metrics: %s\n", s.ToString().c_str());
  if (csv_) std::fclose(csv_);
}

void MetricsLogger::Log(int64_t step, const std::string& key, double value) {
  double t = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  pending_.push_back({step, key, value, t});
  if (pending_.size() >= 1024) {
    Status s = Flush();
    if (!s.ok()) std::fprintf(stderr, "metrics: %s\n", s.ToString().c_str());
  }
}

Status MetricsLogger::Flush() {
  if (pending_.empty()) return Status::Ok();
  if (csv_) {
    for (auto& r : pending_) std::fprintf(csv_, "%lld,%s,%.9g,%.3f\n", static_cast<long long>(r.step), r.key.c_str(), r.value, r.t);
    std::fflush(csv_);
  }
  if (db_) {
    K2_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
    K2_ASSIGN_OR_RETURN(Stmt ins, db_->Prepare("INSERT INTO metrics(run, step, key, value, t) VALUES(?1, ?2, ?3, ?4, ?5)"));
    for (auto& r : pending_) {
      ins.Bind(1, run_).Bind(2, r.step).Bind(3, r.key).Bind(4, r.value).Bind(5, r.t);
      K2_RETURN_IF_ERROR(ins.Run());
      ins.Reset();
    }
    K2_RETURN_IF_ERROR(tx.Commit());
  }
  pending_.clear();
  return Status::Ok();
}

Expected<std::vector<std::pair<int64_t, double>>> ReadMetric(Db* db, int64_t run, const std::string& key) {
  K2_ASSIGN_OR_RETURN(Stmt q, db->Prepare("SELECT step, value FROM metrics WHERE run = ?1 AND key = ?2 ORDER BY step, rowid"));
  q.Bind(1, run).Bind(2, key);
  std::vector<std::pair<int64_t, double>> out;
  while (q.Step()) out.emplace_back(q.Int(0), q.Double(1));
  K2_RETURN_IF_ERROR(q.status());
  return out;
}

}  // namespace k2
