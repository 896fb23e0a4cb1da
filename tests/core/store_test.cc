// The SQLite store: migrations, transactions, concurrency, and a randomized test against std::map.
#include "core/store.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <thread>

#include "core/rng.h"

namespace k2 {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("k2gym_store_" + std::to_string(getpid()) + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "t.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(StoreTest, OpenCreatesCoreSchemaAtLatestVersion) {
  auto db = Db::Open(path_);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  EXPECT_EQ(*(*db)->SchemaVersion("core"), static_cast<int>(CoreMigrations().sql.size()));
  auto counts = TableCounts(db->get());
  ASSERT_TRUE(counts.ok());
  std::vector<std::string> names;
  for (auto& [n, c] : *counts) names.push_back(n);
  for (const char* t : {"runs", "metrics", "artifacts", "schema_versions"})
    EXPECT_NE(std::find(names.begin(), names.end(), t), names.end()) << t;
  auto mode = (*db)->Prepare("PRAGMA journal_mode");
  ASSERT_TRUE(mode->Step());
  EXPECT_EQ(mode->Text(0), "wal");
}

// A database written at core v1 (before metrics.t existed) upgrades in place and keeps its rows.
TEST_F(StoreTest, MigratesFromPreviousVersionKeepingRows) {
  // Rebuild the file at core v1: drop the tables, then apply only the first migration.
  {
    auto db = Db::Open(path_);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("DROP TABLE metrics; DROP TABLE artifacts; DROP TABLE runs; DELETE FROM schema_versions;").ok());
    Migrations v1{"core", {CoreMigrations().sql[0]}};
    ASSERT_TRUE((*db)->Migrate(v1).ok());
    EXPECT_EQ(*(*db)->SchemaVersion("core"), 1);
    ASSERT_TRUE((*db)->Exec("INSERT INTO runs(kind, started_at) VALUES('old', 1); "
                            "INSERT INTO metrics(run, step, key, value) VALUES(1, 0, 'loss', 2.5);").ok());
  }
  auto db = Db::Open(path_);  // applies v2 and later
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  EXPECT_EQ(*(*db)->SchemaVersion("core"), static_cast<int>(CoreMigrations().sql.size()));
  auto q = (*db)->Prepare("SELECT value, t FROM metrics WHERE run = 1");
  ASSERT_TRUE(q.ok());
  ASSERT_TRUE(q->Step());
  EXPECT_EQ(q->Double(0), 2.5);
  EXPECT_EQ(q->Double(1), 0.0);
  // A run from before leases has none: never declared dead, whatever its status.
  auto r = GetRun(db->get(), 1);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->pid, 0);
  EXPECT_TRUE(LeaseHolderAlive(*r));
  auto dead = MarkDeadRuns(db->get());
  ASSERT_TRUE(dead.ok());
  EXPECT_TRUE(dead->empty());
}

// The lease of a running run: a run whose process exited is marked dead (and only that one); a run
// held by a live process cannot be claimed; a dead one can, and its status is running again.
TEST_F(StoreTest, RunsOfDeadProcessesAreMarkedDeadAndLiveLeasesAreKept) {
  auto db = Db::Open(path_);
  ASSERT_TRUE(db.ok());
  auto mine = CreateRun(db->get(), "test", "mine", "{}");
  ASSERT_TRUE(mine.ok());
  // A child creates a run and exits without finishing it.
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto cdb = Db::Open(path_);
    _exit(cdb.ok() && CreateRun(cdb->get(), "test", "child", "{}").ok() ? 0 : 1);
  }
  int st = 0;
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  auto q = (*db)->Prepare("SELECT id, pid FROM runs WHERE name = 'child'");
  ASSERT_TRUE(q.ok() && q->Step());
  const int64_t child_id = q->Int(0);
  EXPECT_EQ(q->Int(1), pid);
  auto before = GetRun(db->get(), child_id);
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->status, "running");
  EXPECT_FALSE(LeaseHolderAlive(*before));
  auto dead = MarkDeadRuns(db->get());
  ASSERT_TRUE(dead.ok()) << dead.status().ToString();
  EXPECT_EQ(*dead, std::vector<int64_t>{child_id});
  EXPECT_EQ(GetRun(db->get(), child_id)->status, "dead");
  EXPECT_EQ(GetRun(db->get(), *mine)->status, "running");  // this process is alive
  // The dead run is resumed by this process; a second process cannot take it while we hold it.
  ASSERT_TRUE(ClaimRun(db->get(), child_id).ok());
  EXPECT_EQ(GetRun(db->get(), child_id)->status, "running");
  EXPECT_EQ(GetRun(db->get(), child_id)->pid, getpid());
  pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto cdb = Db::Open(path_);
    if (!cdb.ok()) _exit(2);
    Status s = ClaimRun(cdb->get(), child_id);
    _exit(s.code() == Code::kFailedPrecondition && s.message().find("still running") != std::string::npos ? 0 : 1);
  }
  ASSERT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "a live lease was taken over";
  // A lease on another host counts as alive until its heartbeat is stale.
  ASSERT_TRUE((*db)->Exec("UPDATE runs SET host = 'elsewhere', heartbeat_at = 0 WHERE id = " + std::to_string(*mine)).ok());
  auto stale = MarkDeadRuns(db->get(), 3600);
  ASSERT_TRUE(stale.ok());
  EXPECT_EQ(*stale, std::vector<int64_t>{*mine});
  EXPECT_EQ(GetRun(db->get(), 12345).status().code(), Code::kNotFound);
}

TEST_F(StoreTest, ModuleMigrationsAreIndependentAndIdempotent) {
  auto db = Db::Open(path_);
  ASSERT_TRUE(db.ok());
  Migrations m{"toy", {"CREATE TABLE toy(a INTEGER);", "ALTER TABLE toy ADD COLUMN b TEXT;"}};
  ASSERT_TRUE((*db)->Migrate(m).ok());
  ASSERT_TRUE((*db)->Migrate(m).ok());  // second time: nothing to do
  EXPECT_EQ(*(*db)->SchemaVersion("toy"), 2);
  ASSERT_TRUE((*db)->Exec("INSERT INTO toy(a, b) VALUES(1, 'x')").ok());
  Migrations bad{"bad", {"CREATE TABLE ok1(a);", "THIS IS NOT SQL;"}};
  Status s = (*db)->Migrate(bad);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("migration bad v2"), std::string::npos) << s.message();
  EXPECT_EQ(*(*db)->SchemaVersion("bad"), 1);  // v1 committed, v2 rolled back
}

TEST_F(StoreTest, TransactionRollsBackUnlessCommitted) {
  auto db = Db::Open(path_);
  ASSERT_TRUE(db.ok());
  {
    auto tx = Transaction::Begin(db->get());
    ASSERT_TRUE(tx.ok());
    ASSERT_TRUE(CreateRun(db->get(), "x", "", "{}").ok());
  }  // no commit
  {
    auto tx = Transaction::Begin(db->get());
    ASSERT_TRUE(CreateRun(db->get(), "y", "", "{}").ok());
    ASSERT_TRUE(tx->Commit().ok());
  }
  auto q = (*db)->Prepare("SELECT group_concat(kind) FROM runs");
  ASSERT_TRUE(q->Step());
  EXPECT_EQ(q->Text(0), "y");
}

TEST_F(StoreTest, BadSqlNamesDatabaseAndStatement) {
  auto db = Db::Open(path_);
  auto st = (*db)->Prepare("SELEC 1");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find(path_), std::string::npos);
  EXPECT_NE(st.status().message().find("SELEC 1"), std::string::npos);
}

TEST_F(StoreTest, OpenFailsClearlyOnUnwritablePath) {
  auto db = Db::Open("/nonexistent-dir/k2.db");
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.status().message().find("/nonexistent-dir/k2.db"), std::string::npos);
}

void WriteRows(const std::string& path, int proc, int threads, int rows) {
  std::vector<std::thread> ts;
  std::atomic<int> failures{0};
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      auto db = Db::Open(path);
      if (!db.ok()) {
        ++failures;
        return;
      }
      auto run = CreateRun(db->get(), "w", std::to_string(proc) + "/" + std::to_string(t), "{}");
      if (!run.ok()) {
        ++failures;
        return;
      }
      for (int i = 0; i < rows; ++i) {
        auto tx = Transaction::Begin(db->get());
        if (!tx.ok()) { ++failures; continue; }
        auto ins = (*db)->Prepare("INSERT INTO metrics(run, step, key, value) VALUES(?1, ?2, 'x', ?3)");
        ins->Bind(1, *run).Bind(2, i).Bind(3, proc * 1e6 + t * 1e4 + i);
        if (!ins->Run().ok() || !tx->Commit().ok()) ++failures;
      }
    });
  }
  for (auto& t : ts) t.join();
  if (failures) std::fprintf(stderr, "writer %d: %d failures\n", proc, failures.load());
}

// 4 threads x 2 processes x 1,000 single-row transactions: all 8,000 rows are there.
TEST_F(StoreTest, ConcurrentWritersFromThreadsAndProcessesLoseNoRows) {
  ASSERT_TRUE(Db::Open(path_).ok());  // create + migrate once
  std::vector<pid_t> kids;
  for (int p = 0; p < 2; ++p) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      WriteRows(path_, p, 4, 1000);
      _exit(0);
    }
    kids.push_back(pid);
  }
  for (pid_t k : kids) {
    int st = 0;
    ASSERT_EQ(waitpid(k, &st, 0), k);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  auto db = Db::Open(path_);
  auto q = (*db)->Prepare("SELECT COUNT(*), COUNT(DISTINCT value) FROM metrics");
  ASSERT_TRUE(q->Step());
  EXPECT_EQ(q->Int(0), 8000);
  EXPECT_EQ(q->Int(1), 8000);
  auto r = (*db)->Prepare("SELECT COUNT(*) FROM runs");
  ASSERT_TRUE(r->Step());
  EXPECT_EQ(r->Int(0), 8);
}

// Randomized put/delete/commit/rollback sequences against a std::map model, checked after every step.
TEST_F(StoreTest, RandomizedOperationsMatchInMemoryModel) {
  auto db = Db::Open(path_);
  ASSERT_TRUE((*db)->Exec("CREATE TABLE kv(k INTEGER PRIMARY KEY, v TEXT NOT NULL)").ok());
  std::map<int64_t, std::string> model, pending;
  Rng rng(1234);
  std::optional<Transaction> tx;
  for (int step = 0; step < 2000; ++step) {
    int op = static_cast<int>(rng.Below(10));
    if (!tx) {
      tx.emplace(std::move(*Transaction::Begin(db->get())));
      pending = model;
    }
    int64_t k = static_cast<int64_t>(rng.Below(50));
    if (op < 5) {
      std::string v = "v" + std::to_string(rng.Below(1000));
      auto s = (*db)->Prepare("INSERT INTO kv(k, v) VALUES(?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v");
      s->Bind(1, k).Bind(2, v);
      ASSERT_TRUE(s->Run().ok());
      pending[k] = v;
    } else if (op < 7) {
      auto s = (*db)->Prepare("DELETE FROM kv WHERE k = ?1");
      s->Bind(1, k);
      ASSERT_TRUE(s->Run().ok());
      pending.erase(k);
    } else if (op < 9) {
      ASSERT_TRUE(tx->Commit().ok());
      tx.reset();
      model = pending;
    } else {
      ASSERT_TRUE(tx->Rollback().ok());
      tx.reset();
      pending = model;
    }
    const auto& expect = tx ? pending : model;
    std::map<int64_t, std::string> got;
    auto q = (*db)->Prepare("SELECT k, v FROM kv");
    while (q->Step()) got[q->Int(0)] = q->Text(1);
    ASSERT_EQ(got, expect) << "step " << step;
  }
}

}  // namespace
}  // namespace k2
