// Metrics logger: store + CSV, durable commits and the truncation a resume applies (core/metrics.h).
#include "core/metrics.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "core/fault.h"

namespace k2 {

Expected<MetricsMark> MetricsMark::FromJson(const json& j, const std::string& where) {
  if (!j.is_object() || !j.contains("csv_bytes") || !j["csv_bytes"].is_number_integer() || !j.contains("store_rowid") ||
      !j["store_rowid"].is_number_integer())
    return Corruption(where + ": expected {csv_bytes: int, store_rowid: int}");
  return MetricsMark{j["csv_bytes"].get<int64_t>(), j["store_rowid"].get<int64_t>()};
}

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
    for (auto& r : pending_) {
      char v[64];
      const auto [end, ec] = std::to_chars(v, v + sizeof v - 1, r.value);  // shortest form that reads back exactly
      *(ec == std::errc() ? end : v) = '\0';
      std::fprintf(csv_, "%lld,%s,%s,%.3f\n", static_cast<long long>(r.step), r.key.c_str(), v, r.t);
    }
    if (std::fflush(csv_) != 0) return IoError(csv_path_ + ": write failed: " + std::strerror(errno));
  }
  CrashPoint("metrics.csv_flushed");
  if (db_) {
    K2_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db_));
    K2_ASSIGN_OR_RETURN(Stmt ins, db_->Prepare("INSERT INTO metrics(run, step, key, value, t) VALUES(?1, ?2, ?3, ?4, ?5)"));
    for (auto& r : pending_) {
      ins.Bind(1, run_).Bind(2, r.step).Bind(3, r.key).Bind(4, r.value).Bind(5, r.t);
      K2_RETURN_IF_ERROR(ins.Run());
      ins.Reset();
    }
    K2_RETURN_IF_ERROR(HeartbeatRun(db_, run_));
    K2_RETURN_IF_ERROR(tx.Commit());
  }
  pending_.clear();
  return Status::Ok();
}

Expected<MetricsMark> MetricsLogger::Commit() {
  K2_RETURN_IF_ERROR(Flush());
  MetricsMark m;
  if (csv_) {
    if (::fsync(::fileno(csv_)) != 0) return IoError(csv_path_ + ": fsync failed: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(::fileno(csv_), &st) != 0) return IoError(csv_path_ + ": stat failed: " + std::strerror(errno));
    m.csv_bytes = static_cast<int64_t>(st.st_size);
  }
  if (db_) {
    // The store's commit is durable once COMMIT returns (WAL); a heartbeat also marks the lease alive.
    K2_RETURN_IF_ERROR(HeartbeatRun(db_, run_));
    K2_ASSIGN_OR_RETURN(Stmt q, db_->Prepare("SELECT COALESCE(MAX(rowid), -1) FROM metrics WHERE run = ?1"));
    q.Bind(1, run_);
    if (q.Step()) m.store_rowid = q.Int(0);
    K2_RETURN_IF_ERROR(q.status());
  }
  CrashPoint("metrics.committed");
  return m;
}

namespace {

Status DeleteStoreRows(Db* db, int64_t run, const char* cond, int64_t bound) {
  if (!db) return Status::Ok();
  K2_ASSIGN_OR_RETURN(Stmt del, db->Prepare(std::string("DELETE FROM metrics WHERE run = ?1 AND ") + cond));
  del.Bind(1, run).Bind(2, bound);
  return del.Run();
}

}  // namespace

Status TruncateMetrics(Db* db, int64_t run, const std::string& csv_path, const MetricsMark& mark) {
  K2_RETURN_IF_ERROR(DeleteStoreRows(db, run, "rowid > ?2", mark.store_rowid));
  if (csv_path.empty()) return Status::Ok();
  struct stat st {};
  if (::stat(csv_path.c_str(), &st) != 0) return Status::Ok();  // nothing logged yet
  const int64_t keep = std::max<int64_t>(0, mark.csv_bytes);
  if (st.st_size < keep)
    return Corruption(csv_path + ": " + std::to_string(st.st_size) + " bytes, shorter than the " + std::to_string(keep) +
                      " committed with the checkpoint (the file was edited or replaced)");
  if (st.st_size == keep) return Status::Ok();
  int fd = ::open(csv_path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return IoError(csv_path + ": cannot open: " + std::strerror(errno));
  const bool ok = ::ftruncate(fd, keep) == 0 && ::fsync(fd) == 0;
  const std::string err = ok ? "" : std::strerror(errno);
  ::close(fd);
  if (!ok) return IoError(csv_path + ": cannot truncate to " + std::to_string(keep) + " bytes: " + err);
  return Status::Ok();
}

Status TruncateMetricsFromStep(Db* db, int64_t run, const std::string& csv_path, int64_t step) {
  K2_RETURN_IF_ERROR(DeleteStoreRows(db, run, "step >= ?2", step));
  if (csv_path.empty()) return Status::Ok();
  auto text = ReadFile(csv_path);
  if (!text.ok()) return Status::Ok();  // nothing logged yet
  std::string out;
  size_t pos = 0;
  for (bool header = true; pos < text->size(); header = false) {
    size_t nl = text->find('\n', pos);
    if (nl == std::string::npos) break;  // a torn last line: dropped
    std::string_view line(text->data() + pos, nl + 1 - pos);
    pos = nl + 1;
    if (!header && std::strtoll(std::string(line.substr(0, line.find(','))).c_str(), nullptr, 10) >= step) continue;
    out += line;
  }
  return WriteFileAtomic(csv_path, out);
}

Expected<std::vector<std::map<std::string, double>>> ReadMetricHistoryCsv(const std::string& csv_path, int64_t steps) {
  std::vector<std::map<std::string, double>> out(static_cast<size_t>(std::max<int64_t>(0, steps)));
  if (steps <= 0) return out;
  K2_ASSIGN_OR_RETURN(std::string text, ReadFile(csv_path));
  size_t pos = text.find('\n');  // after the header
  int64_t line_no = 1;
  while (pos != std::string::npos && pos + 1 < text.size()) {
    const size_t b = pos + 1, nl = text.find('\n', b);
    if (nl == std::string::npos) break;  // a torn last line
    ++line_no;
    const std::string line = text.substr(b, nl - b);
    pos = nl;
    const size_t c1 = line.find(','), c2 = line.find(',', c1 + 1), c3 = line.find(',', c2 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos || c3 == std::string::npos)
      return Corruption(csv_path + ":" + std::to_string(line_no) + ": expected step,key,value,t");
    const int64_t step = std::strtoll(line.c_str(), nullptr, 10);
    if (step < 0 || step >= steps) continue;
    double v = 0;
    const auto [p, ec] = std::from_chars(line.data() + c2 + 1, line.data() + c3, v);
    if (ec != std::errc() || p != line.data() + c3)
      return Corruption(csv_path + ":" + std::to_string(line_no) + ": value: expected a number");
    out[static_cast<size_t>(step)][line.substr(c1 + 1, c2 - c1 - 1)] = v;
  }
  return out;
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
