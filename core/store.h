// The SQLite store: one file holds runs, metrics, artifacts and whatever later modules add through
// their own migrations. A thin RAII wrapper: prepared statements, typed bind/get, transactions.
//
// Thread safety: a Db (one sqlite3 connection) is used by one thread at a time. Open one Db per thread;
// WAL mode, a busy timeout and BEGIN IMMEDIATE with retries make concurrent writers from several
// threads and processes safe (no lost rows).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace k2 {

class Db;

// A prepared statement. Bind indices are 1-based, column indices 0-based (SQLite's convention).
class Stmt {
 public:
  Stmt(Stmt&&) noexcept;
  Stmt& operator=(Stmt&&) noexcept;
  ~Stmt();

  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, int v) { return Bind(i, static_cast<int64_t>(v)); }
  Stmt& Bind(int i, double v);
  Stmt& Bind(int i, std::string_view v);       // TEXT
  Stmt& Bind(int i, const char* v) { return Bind(i, std::string_view(v)); }
  Stmt& BindBlob(int i, std::string_view bytes);
  Stmt& BindNull(int i);

  // Steps once: true when a row is available, false when done; errors go to status().
  bool Step();
  // Runs to completion (for statements that return no rows).
  Status Run();
  void Reset();  // reset + clear bindings, keeps the statement prepared
  const Status& status() const { return status_; }

  int64_t Int(int col) const;
  double Double(int col) const;
  std::string Text(int col) const;
  std::string Blob(int col) const;
  bool IsNull(int col) const;
  int ColumnCount() const;

 private:
  friend class Db;
  Stmt(Db* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  Db* db_ = nullptr;
  sqlite3_stmt* s_ = nullptr;
  Status status_;
};

// One module's migrations: version i+1 is sql[i]. Applied in order, each in its own transaction; the
// applied version is kept per module in table schema_versions(module, version).
struct Migrations {
  std::string module;
  std::vector<std::string> sql;
};

// The core schema (runs, metrics, artifacts). Version history is append-only.
const Migrations& CoreMigrations();

class Db {
 public:
  // Opens (creating if needed) the database at `path` (":memory:" works), sets WAL, foreign keys,
  // synchronous=NORMAL, a busy timeout, and applies the core migrations.
  static Expected<std::unique_ptr<Db>> Open(const std::string& path, int busy_timeout_ms = 10000);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  Expected<Stmt> Prepare(std::string_view sql);
  Status Exec(std::string_view sql);  // one or more statements, no results
  // Applies the not yet applied migrations of `m`. Idempotent, safe from several processes at once.
  Status Migrate(const Migrations& m);
  Expected<int> SchemaVersion(const std::string& module);
  int64_t LastInsertId() const;
  int Changes() const;
  const std::string& path() const { return path_; }
  sqlite3* raw() { return db_; }

  // "SQL error in <file>: <sqlite message> (while: <what>)"
  Status Error(std::string_view what) const;

 private:
  Db(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
};

// RAII transaction: BEGIN IMMEDIATE (retried while the database is busy); rolls back unless Commit().
class Transaction {
 public:
  static Expected<Transaction> Begin(Db* db);
  Transaction(Transaction&& o) noexcept : db_(o.db_), done_(o.done_) { o.done_ = true; }
  ~Transaction();
  Status Commit();
  Status Rollback();

 private:
  explicit Transaction(Db* db) : db_(db) {}
  Db* db_;
  bool done_ = false;
};

// Runs: one row per command invocation that produces results (a resumed training run keeps its row).
// A running run holds a lease: the host, pid and process start time of the process writing it, and a
// heartbeat time. MarkDeadRuns turns `running` into `dead` when that process is gone (same host: the pid
// no longer exists or belongs to a newer process; another host: no heartbeat for stale_after_s).
struct RunInfo {
  int64_t id = 0;
  std::string kind;      // "pretrain", "rl", "eval", ...
  std::string name;
  std::string config;    // resolved config JSON
  std::string status;    // "running", "done", "failed", "stopped" (left early on request), "dead"
  double started_at = 0; // unix seconds
  std::string host;      // lease holder ("" for runs written before leases)
  int64_t pid = 0;
  int64_t proc_start = 0;     // the holder's start time (clock ticks after boot), against pid reuse
  double heartbeat_at = 0;    // unix seconds
};
Expected<int64_t> CreateRun(Db* db, const std::string& kind, const std::string& name, const std::string& config);
Status FinishRun(Db* db, int64_t run, const std::string& status);
Expected<RunInfo> GetRun(Db* db, int64_t run);  // NotFound when absent
// A run by id ("12") or name (the newest run of that name); InvalidArgument naming the store and the
// reference when there is none.
Expected<RunInfo> FindRun(Db* db, const std::string& ref);
// Takes the lease of an existing run for this process and sets it `running` (resume). FailedPrecondition
// when another live process holds it.
Status ClaimRun(Db* db, int64_t run);
Status HeartbeatRun(Db* db, int64_t run);
// Marks every `running` run whose lease holder has died as `dead`; returns their ids.
Expected<std::vector<int64_t>> MarkDeadRuns(Db* db, double stale_after_s = 3600);
// Whether the process holding `r`'s lease is alive (runs without a lease count as alive: unknown).
bool LeaseHolderAlive(const RunInfo& r, double stale_after_s = 3600);
Status AddArtifact(Db* db, int64_t run, const std::string& kind, const std::string& path, const std::string& meta);

// Table names and row counts (for `k2gym db info`).
Expected<std::vector<std::pair<std::string, int64_t>>> TableCounts(Db* db);

}  // namespace k2
