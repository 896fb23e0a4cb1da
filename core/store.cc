// SQLite wrapper: every sqlite3 call is checked and its failure names the database and the statement.
#include "core/store.h"
#include "core/run_name.h"

#include <sqlite3.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace k2 {

namespace {
double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "?";
  return buf;
}

// Field 22 of /proc/PID/stat (start time in clock ticks after boot); 0 when the process does not exist.
int64_t ProcessStart(int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return 0;
  const size_t close = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) return 0;
  std::istringstream rest(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 22) return std::strtoll(field.c_str(), nullptr, 10);
  }
  return 0;
}

RunInfo RunFromRow(const Stmt& q) {
  RunInfo r;
  r.id = q.Int(0);
  r.kind = q.Text(1);
  r.name = q.Text(2);
  r.config = q.Text(3);
  r.status = q.Text(4);
  r.started_at = q.Double(5);
  r.host = q.Text(6);
  r.pid = q.Int(7);
  r.proc_start = q.Int(8);
  r.heartbeat_at = q.Double(9);
  return r;
}
constexpr const char* kRunColumns =
    "SELECT id, kind, name, config, status, started_at, host, pid, proc_start, heartbeat_at FROM runs";
}  // namespace

// ---- Stmt ----

Stmt::Stmt(Stmt&& o) noexcept : db_(o.db_), s_(o.s_), status_(std::move(o.status_)) { o.s_ = nullptr; }
Stmt& Stmt::operator=(Stmt&& o) noexcept {
  if (this != &o) {
    if (s_) sqlite3_finalize(s_);
    db_ = o.db_;
    s_ = o.s_;
    status_ = std::move(o.status_);
    o.s_ = nullptr;
  }
  return *this;
}
Stmt::~Stmt() {
  if (s_) sqlite3_finalize(s_);
}

#define K2_SQLITE_BIND(call)                                                       \
  do {                                                                             \
    int rc_ = (call);                                                              \
    if (rc_ != SQLITE_OK && status_.ok()) status_ = db_->Error("bind: " #call);   \
  } while (0)

Stmt& Stmt::Bind(int i, int64_t v) { K2_SQLITE_BIND(sqlite3_bind_int64(s_, i, v)); return *this; }
Stmt& Stmt::Bind(int i, double v) { K2_SQLITE_BIND(sqlite3_bind_double(s_, i, v)); return *this; }
Stmt& Stmt::Bind(int i, std::string_view v) {
  K2_SQLITE_BIND(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  return *this;
}
Stmt& Stmt::BindBlob(int i, std::string_view v) {
  K2_SQLITE_BIND(sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  return *this;
}
Stmt& Stmt::BindNull(int i) { K2_SQLITE_BIND(sqlite3_bind_null(s_, i)); return *this; }

bool Stmt::Step() {
  if (!status_.ok()) return false;
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  status_ = db_->Error(std::string("step: ") + (sqlite3_sql(s_) ? sqlite3_sql(s_) : "?"));
  return false;
}

Status Stmt::Run() {
  while (Step()) {
  }
  return status_;
}

void Stmt::Reset() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
  status_ = Status::Ok();
}

int64_t Stmt::Int(int c) const { return sqlite3_column_int64(s_, c); }
double Stmt::Double(int c) const { return sqlite3_column_double(s_, c); }
std::string Stmt::Text(int c) const {
  const unsigned char* t = sqlite3_column_text(s_, c);
  return t ? std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(s_, c)) : std::string();
}
std::string Stmt::Blob(int c) const {
  const void* b = sqlite3_column_blob(s_, c);
  return b ? std::string(static_cast<const char*>(b), sqlite3_column_bytes(s_, c)) : std::string();
}
bool Stmt::IsNull(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
int Stmt::ColumnCount() const { return sqlite3_column_count(s_); }

// ---- Db ----

const Migrations& CoreMigrations() {
  static const Migrations m{
      "core",
      {
          // v1: runs, metrics, artifacts.
          R"sql(
CREATE TABLE runs(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  config TEXT NOT NULL DEFAULT '{}',
  status TEXT NOT NULL DEFAULT 'running',
  started_at REAL NOT NULL,
  finished_at REAL);
CREATE TABLE metrics(
  run INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  step INTEGER NOT NULL,
  key TEXT NOT NULL,
  value REAL NOT NULL);
CREATE INDEX metrics_run_key_step ON metrics(run, key, step);
CREATE TABLE artifacts(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  run INTEGER REFERENCES runs(id) ON DELETE CASCADE,
  kind TEXT NOT NULL,
  path TEXT NOT NULL,
  meta TEXT NOT NULL DEFAULT '{}',
  created_at REAL NOT NULL);
)sql",
          // v2: metrics carry the wall time at which they were logged (for rate plots).
          R"sql(
ALTER TABLE metrics ADD COLUMN t REAL NOT NULL DEFAULT 0;
)sql",
          // v3: the lease of a running run (core/store.h RunInfo): who writes it and when it last did.
          R"sql(
ALTER TABLE runs ADD COLUMN host TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN pid INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN proc_start INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN heartbeat_at REAL NOT NULL DEFAULT 0;
)sql",
      }};
  return m;
}

Expected<std::unique_ptr<Db>> Db::Open(const std::string& path, int busy_timeout_ms) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    if (raw) sqlite3_close(raw);
    return IoError(path + ": cannot open database: " + msg);
  }
  std::unique_ptr<Db> db(new Db(raw, path));
  sqlite3_busy_timeout(raw, busy_timeout_ms);
  sqlite3_extended_result_codes(raw, 1);
  // WAL lets readers proceed during writes; NORMAL sync is durable at checkpoints and safe in WAL mode.
  if (path != ":memory:") {
    for (int attempt = 0;; ++attempt) {
      Status s = db->Exec("PRAGMA journal_mode=WAL;");
      if (s.ok()) break;
      if (attempt > 50) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  K2_RETURN_IF_ERROR(db->Exec("PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;"));
  K2_RETURN_IF_ERROR(db->Migrate(CoreMigrations()));
  return db;
}

Db::~Db() { sqlite3_close_v2(db_); }

Status Db::Error(std::string_view what) const {
  return IoError("SQL error in " + path_ + ": " + sqlite3_errmsg(db_) + " (while: " + std::string(what) + ")");
}

Expected<Stmt> Db::Prepare(std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &s, nullptr);
  if (rc != SQLITE_OK) return Error("prepare: " + std::string(sql.substr(0, 120)));
  return Stmt(this, s);
}

Status Db::Exec(std::string_view sql) {
  char* err = nullptr;
  std::string copy(sql);
  int rc = sqlite3_exec(db_, copy.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return IoError("SQL error in " + path_ + ": " + msg + " (while: " + copy.substr(0, 120) + ")");
  }
  return Status::Ok();
}

Expected<int> Db::SchemaVersion(const std::string& module) {
  K2_RETURN_IF_ERROR(Exec("CREATE TABLE IF NOT EXISTS schema_versions(module TEXT PRIMARY KEY, version INTEGER NOT NULL);"));
  K2_ASSIGN_OR_RETURN(Stmt q, Prepare("SELECT version FROM schema_versions WHERE module = ?1"));
  q.Bind(1, module);
  int v = q.Step() ? static_cast<int>(q.Int(0)) : 0;
  K2_RETURN_IF_ERROR(q.status());
  return v;
}

Status Db::Migrate(const Migrations& m) {
  K2_RETURN_IF_ERROR(Exec("CREATE TABLE IF NOT EXISTS schema_versions(module TEXT PRIMARY KEY, version INTEGER NOT NULL);"));
  for (size_t target = 1; target <= m.sql.size(); ++target) {
    // Each step re-reads the version inside an IMMEDIATE transaction, so two processes migrating
    // the same file at once apply each step exactly once.
    K2_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(this));
    K2_ASSIGN_OR_RETURN(int cur, SchemaVersion(m.module));
    if (cur >= static_cast<int>(target)) continue;  // tx rolls back (nothing written)
    Status s = Exec(m.sql[target - 1]);
    if (!s.ok()) return s.Context("migration " + m.module + " v" + std::to_string(target));
    K2_ASSIGN_OR_RETURN(Stmt up, Prepare("INSERT INTO schema_versions(module, version) VALUES(?1, ?2) "
                                         "ON CONFLICT(module) DO UPDATE SET version = excluded.version"));
    up.Bind(1, m.module).Bind(2, static_cast<int64_t>(target));
    K2_RETURN_IF_ERROR(up.Run());
    K2_RETURN_IF_ERROR(tx.Commit());
  }
  return Status::Ok();
}

int64_t Db::LastInsertId() const { return sqlite3_last_insert_rowid(db_); }
int Db::Changes() const { return sqlite3_changes(db_); }

// ---- Transaction ----

Expected<Transaction> Transaction::Begin(Db* db) {
  // busy_timeout covers most contention; BEGIN IMMEDIATE can still return BUSY when a WAL snapshot is
  // being upgraded, so retry with backoff for a bounded time.
  for (int attempt = 0;; ++attempt) {
    char* err = nullptr;
    int rc = sqlite3_exec(db->raw(), "BEGIN IMMEDIATE", nullptr, nullptr, &err);
    sqlite3_free(err);
    if (rc == SQLITE_OK) return Transaction(db);
    if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) return db->Error("BEGIN IMMEDIATE");
    if (attempt >= 200) return db->Error("BEGIN IMMEDIATE (busy for too long)");
    std::this_thread::sleep_for(std::chrono::milliseconds(1 + attempt % 10));
  }
}

Transaction::~Transaction() {
  if (!done_) (void)Rollback();
}

Status Transaction::Commit() {
  done_ = true;
  for (int attempt = 0;; ++attempt) {
    int rc = sqlite3_exec(db_->raw(), "COMMIT", nullptr, nullptr, nullptr);
    if (rc == SQLITE_OK) return Status::Ok();
    if ((rc & 0xff) != SQLITE_BUSY || attempt >= 200) {
      Status s = db_->Error("COMMIT");
      sqlite3_exec(db_->raw(), "ROLLBACK", nullptr, nullptr, nullptr);
      return s;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

Status Transaction::Rollback() {
  done_ = true;
  if (sqlite3_get_autocommit(db_->raw())) return Status::Ok();  // already ended
  return db_->Exec("ROLLBACK");
}

// ---- Runs and artifacts ----

namespace {
std::string& RunNameOverride() {
  static std::string name;
  return name;
}
}  // namespace

void SetRunNameOverride(std::string name) { RunNameOverride() = std::move(name); }

Expected<int64_t> CreateRun(Db* db, const std::string& kind, const std::string& name, const std::string& config) {
  K2_ASSIGN_OR_RETURN(Stmt s, db->Prepare("INSERT INTO runs(kind, name, config, status, started_at, host, pid, "
                                          "proc_start, heartbeat_at) VALUES(?1, ?2, ?3, 'running', ?4, ?5, ?6, ?7, ?4)"));
  const int64_t pid = ::getpid();
  s.Bind(1, kind).Bind(2, RunNameOverride().empty() ? name : RunNameOverride()).Bind(3, config).Bind(4, NowSeconds()).Bind(5, HostName()).Bind(6, pid);
  s.Bind(7, ProcessStart(pid));
  K2_RETURN_IF_ERROR(s.Run());
  return db->LastInsertId();
}

Expected<RunInfo> GetRun(Db* db, int64_t run) {
  K2_ASSIGN_OR_RETURN(Stmt q, db->Prepare(std::string(kRunColumns) + " WHERE id = ?1"));
  q.Bind(1, run);
  if (!q.Step()) {
    K2_RETURN_IF_ERROR(q.status());
    return NotFound(db->path() + ": no run " + std::to_string(run));
  }
  return RunFromRow(q);
}

Expected<RunInfo> FindRun(Db* db, const std::string& ref) {
  const bool numeric = !ref.empty() && ref.find_first_not_of("0123456789") == std::string::npos && ref.size() < 19;
  K2_ASSIGN_OR_RETURN(Stmt q, db->Prepare(std::string(kRunColumns) +
                                          (numeric ? " WHERE id = ?1" : " WHERE name = ?1 ORDER BY id DESC LIMIT 1")));
  if (numeric) q.Bind(1, static_cast<int64_t>(std::stoll(ref)));
  else q.Bind(1, ref);
  if (!q.Step()) {
    K2_RETURN_IF_ERROR(q.status());
    return InvalidArgument(db->path() + ": no run " + (numeric ? ref : "named \"" + ref + "\"") +
                           " (k2gym runs list shows them)");
  }
  return RunFromRow(q);
}

bool LeaseHolderAlive(const RunInfo& r, double stale_after_s) {
  if (r.pid <= 0) return true;  // written before leases: unknown, never declared dead
  if (r.host == HostName()) return r.proc_start != 0 && ProcessStart(r.pid) == r.proc_start;
  return NowSeconds() - r.heartbeat_at < stale_after_s;
}

Status ClaimRun(Db* db, int64_t run) {
  K2_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db));
  K2_ASSIGN_OR_RETURN(RunInfo r, GetRun(db, run));
  const int64_t pid = ::getpid();
  const bool self = r.host == HostName() && r.pid == pid;
  if (r.status == "running" && !self && LeaseHolderAlive(r))
    return FailedPrecondition("run " + std::to_string(run) + " (" + r.kind + " " + r.name + ") is still running in pid " +
                              std::to_string(r.pid) + " on " + r.host + "; stop that process before resuming it");
  K2_ASSIGN_OR_RETURN(Stmt s, db->Prepare("UPDATE runs SET status = 'running', finished_at = NULL, host = ?1, pid = ?2, "
                                          "proc_start = ?3, heartbeat_at = ?4 WHERE id = ?5"));
  s.Bind(1, HostName()).Bind(2, pid).Bind(3, ProcessStart(pid)).Bind(4, NowSeconds()).Bind(5, run);
  K2_RETURN_IF_ERROR(s.Run());
  return tx.Commit();
}

Status HeartbeatRun(Db* db, int64_t run) {
  K2_ASSIGN_OR_RETURN(Stmt s, db->Prepare("UPDATE runs SET heartbeat_at = ?1 WHERE id = ?2"));
  s.Bind(1, NowSeconds()).Bind(2, run);
  return s.Run();
}

Expected<std::vector<int64_t>> MarkDeadRuns(Db* db, double stale_after_s) {
  std::vector<RunInfo> running;
  {
    K2_ASSIGN_OR_RETURN(Stmt q, db->Prepare(std::string(kRunColumns) + " WHERE status = 'running' AND pid > 0"));
    while (q.Step()) running.push_back(RunFromRow(q));
    K2_RETURN_IF_ERROR(q.status());
  }
  std::vector<int64_t> dead;
  for (const RunInfo& r : running) {
    if (LeaseHolderAlive(r, stale_after_s)) continue;
    // Only if nobody claimed it meanwhile (a resume between the read and this update keeps it running).
    K2_ASSIGN_OR_RETURN(Stmt s, db->Prepare("UPDATE runs SET status = 'dead', finished_at = ?1 WHERE id = ?2 AND "
                                            "status = 'running' AND pid = ?3 AND proc_start = ?4 AND host = ?5"));
    s.Bind(1, NowSeconds()).Bind(2, r.id).Bind(3, r.pid).Bind(4, r.proc_start).Bind(5, r.host);
    K2_RETURN_IF_ERROR(s.Run());
    if (db->Changes() > 0) dead.push_back(r.id);
  }
  return dead;
}

Status FinishRun(Db* db, int64_t run, const std::string& status) {
  K2_ASSIGN_OR_RETURN(Stmt s, db->Prepare("UPDATE runs SET status = ?1, finished_at = ?2 WHERE id = ?3"));
  s.Bind(1, status).Bind(2, NowSeconds()).Bind(3, run);
  return s.Run();
}

Status AddArtifact(Db* db, int64_t run, const std::string& kind, const std::string& path, const std::string& meta) {
  K2_ASSIGN_OR_RETURN(Stmt s, db->Prepare("INSERT INTO artifacts(run, kind, path, meta, created_at) VALUES(?1, ?2, ?3, ?4, ?5)"));
  if (run > 0) s.Bind(1, run); else s.BindNull(1);
  s.Bind(2, kind).Bind(3, path).Bind(4, meta).Bind(5, NowSeconds());
  return s.Run();
}

Expected<std::vector<std::pair<std::string, int64_t>>> TableCounts(Db* db) {
  std::vector<std::string> names;
  {
    K2_ASSIGN_OR_RETURN(Stmt q, db->Prepare("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' ORDER BY name"));
    while (q.Step()) names.push_back(q.Text(0));
    K2_RETURN_IF_ERROR(q.status());
  }
  std::vector<std::pair<std::string, int64_t>> out;
  for (auto& n : names) {
    K2_ASSIGN_OR_RETURN(Stmt c, db->Prepare("SELECT COUNT(*) FROM \"" + n + "\""));
    int64_t count = c.Step() ? c.Int(0) : 0;
    K2_RETURN_IF_ERROR(c.status());
    out.emplace_back(n, count);
  }
  return out;
}

}  // namespace k2
