// `k2gym runs list|show|rm`: the runs of a store, found by id or name, without sqlite3. Runs whose
// process died are detected (their lease, core/store.h) and marked `dead` before they are listed.
#include <cstdio>
#include <ctime>
#include <set>

#include "apps/cli.h"
#include "core/store.h"

namespace k2::app {
namespace {

struct RunsOpts {
  std::string kind, status;
  int64_t limit = 50;
  std::vector<std::string> refs;  // ids or names
  bool yes = false;
} g_runs;

struct Row {
  int64_t id = 0;
  std::string kind, name, status, config;
  double started = 0, finished = -1;  // finished < 0: not finished
};

Row ReadRow(const Stmt& q) {
  Row r;
  r.id = q.Int(0);
  r.kind = q.Text(1);
  r.name = q.Text(2);
  r.status = q.Text(3);
  r.started = q.Double(4);
  r.finished = q.IsNull(5) ? -1 : q.Double(5);
  r.config = q.Text(6);
  return r;
}

constexpr const char* kSelect = "SELECT id, kind, name, status, started_at, finished_at, config FROM runs";

std::string When(double t) {
  std::time_t s = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

json RowJson(const Row& r) {
  json j = {{"id", r.id}, {"kind", r.kind}, {"name", r.name}, {"status", r.status}, {"started_at", r.started}};
  j["finished_at"] = r.finished < 0 ? json(nullptr) : json(r.finished);
  return j;
}

// An id, or a name (the newest run of that name): core/store.h FindRun, with the finish time.
Expected<Row> Find(Db* db, const std::string& ref) {
  K2_ASSIGN_OR_RETURN(RunInfo info, FindRun(db, ref));
  K2_ASSIGN_OR_RETURN(Stmt q, db->Prepare(std::string(kSelect) + " WHERE id = ?1"));
  q.Bind(1, info.id);
  if (!q.Step()) {
    K2_RETURN_IF_ERROR(q.status());
    return NotFound(db->path() + ": run " + std::to_string(info.id) + " vanished while being read");
  }
  return ReadRow(q);
}

// Tables with a column `run` or `run_id`: every module's rows that belong to a run.
Expected<std::vector<std::pair<std::string, std::string>>> RunTables(Db* db) {
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<std::string> tables;
  {
    K2_ASSIGN_OR_RETURN(Stmt q, db->Prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'runs' "
                                            "AND name NOT LIKE 'sqlite_%' ORDER BY name"));
    while (q.Step()) tables.push_back(q.Text(0));
    K2_RETURN_IF_ERROR(q.status());
  }
  for (const auto& t : tables) {
    K2_ASSIGN_OR_RETURN(Stmt q, db->Prepare("SELECT name FROM pragma_table_info(?1)"));
    q.Bind(1, t);
    while (q.Step()) {
      std::string c = q.Text(0);
      if (c == "run" || c == "run_id") out.emplace_back(t, c);
    }
    K2_RETURN_IF_ERROR(q.status());
  }
  return out;
}

int List(Context& ctx) {
  auto db = ctx.OpenDb();
  if (!db.ok()) return Fail(db.status());
  auto dead = MarkDeadRuns(db->get());
  if (!dead.ok()) return Fail(dead.status());
  std::string sql = std::string(kSelect) + " WHERE (?1 = '' OR kind = ?1) AND (?2 = '' OR status = ?2) ORDER BY id DESC LIMIT ?3";
  auto q = (*db)->Prepare(sql);
  if (!q.ok()) return Fail(q.status());
  q->Bind(1, g_runs.kind).Bind(2, g_runs.status).Bind(3, g_runs.limit);
  std::vector<Row> rows;
  while (q->Step()) rows.push_back(ReadRow(*q));
  if (!q->status().ok()) return Fail(q->status());
  if (ctx.g.json) {
    json arr = json::array();
    for (const auto& r : rows) arr.push_back(RowJson(r));
    ctx.PrintJson({{"db", ctx.g.db_path}, {"runs", arr}, {"marked_dead", *dead}});
    return kExitOk;
  }
  for (int64_t id : *dead)
    std::fprintf(stderr, "run %lld: its process is gone; marked dead (resume it with the command's --resume)\n",
                 static_cast<long long>(id));
  std::printf("%6s  %-9s %-11s %-19s %9s  %s\n", "id", "kind", "status", "started (UTC)", "seconds", "name");
  for (const auto& r : rows) {
    std::string secs = r.finished < 0 ? "-" : std::to_string(static_cast<long long>(r.finished - r.started + 0.5));
    std::printf("%6lld  %-9s %-11s %-19s %9s  %s\n", static_cast<long long>(r.id), r.kind.c_str(), r.status.c_str(),
                When(r.started).c_str(), secs.c_str(), r.name.c_str());
  }
  if (rows.empty()) std::printf("(no runs in %s)\n", ctx.g.db_path.c_str());
  return kExitOk;
}

int Show(Context& ctx) {
  auto db = ctx.OpenDb();
  if (!db.ok()) return Fail(db.status());
  if (auto d = MarkDeadRuns(db->get()); !d.ok()) return Fail(d.status());
  auto row = Find(db->get(), g_runs.refs.at(0));
  if (!row.ok()) return Fail(row.status());
  json out = RowJson(*row);
  auto cfg = ParseJson(row->config, "run config");
  out["config"] = cfg.ok() ? *cfg : json(row->config);
  // Rows per table that belong to the run, and the last value of each metric.
  auto tables = RunTables(db->get());
  if (!tables.ok()) return Fail(tables.status());
  json counts = json::object();
  for (const auto& [t, c] : *tables) {
    auto q = (*db)->Prepare("SELECT count(*) FROM \"" + t + "\" WHERE \"" + c + "\" = ?1");
    if (!q.ok()) return Fail(q.status());
    q->Bind(1, row->id);
    if (q->Step() && q->Int(0) > 0) counts[t] = q->Int(0);
    if (!q->status().ok()) return Fail(q->status());
  }
  out["rows"] = counts;
  json last = json::object();
  {
    auto q = (*db)->Prepare("SELECT key, step, value FROM metrics m WHERE run = ?1 AND step = "
                            "(SELECT max(step) FROM metrics WHERE run = ?1 AND key = m.key) ORDER BY key");
    if (!q.ok()) return Fail(q.status());
    q->Bind(1, row->id);
    while (q->Step()) last[q->Text(0)] = {{"step", q->Int(1)}, {"value", q->Double(2)}};
    if (!q->status().ok()) return Fail(q->status());
  }
  out["last_metrics"] = last;
  json artifacts = json::array();
  {
    auto q = (*db)->Prepare("SELECT kind, path FROM artifacts WHERE run = ?1 ORDER BY id");
    if (!q.ok()) return Fail(q.status());
    q->Bind(1, row->id);
    while (q->Step()) artifacts.push_back({{"kind", q->Text(0)}, {"path", q->Text(1)}});
    if (!q->status().ok()) return Fail(q->status());
  }
  out["artifacts"] = artifacts;
  if (ctx.g.json) {
    ctx.PrintJson(out);
    return kExitOk;
  }
  std::printf("run %lld: %s %s, %s, started %s UTC", static_cast<long long>(row->id), row->kind.c_str(),
              json(row->name).dump().c_str(), row->status.c_str(), When(row->started).c_str());
  if (row->finished >= 0) std::printf(", %.0f s", row->finished - row->started);
  std::printf("\nrows:");
  for (auto& [t, n] : counts.items()) std::printf(" %s=%lld", t.c_str(), static_cast<long long>(n.get<int64_t>()));
  std::printf("\n");
  if (!last.empty()) {
    std::printf("last metrics:\n");
    for (auto& [k, v] : last.items())
      std::printf("  %-32s %14.6g  (step %lld)\n", k.c_str(), v["value"].get<double>(),
                  static_cast<long long>(v["step"].get<int64_t>()));
  }
  for (auto& a : artifacts)
    std::printf("artifact %s: %s\n", a["kind"].get<std::string>().c_str(), a["path"].get<std::string>().c_str());
  return kExitOk;
}

int Remove(Context& ctx) {
  auto db = ctx.OpenDb();
  if (!db.ok()) return Fail(db.status());
  if (auto d = MarkDeadRuns(db->get()); !d.ok()) return Fail(d.status());
  std::vector<Row> rows;
  std::set<int64_t> seen;
  for (const auto& ref : g_runs.refs) {
    auto r = Find(db->get(), ref);
    if (!r.ok()) return Fail(r.status());
    if (r->status == "running" && !g_runs.yes)
      return Fail(InvalidArgument("run " + std::to_string(r->id) + " is running (its process is alive); stop it first, "
                                  "or give --yes to remove its rows anyway"));
    if (seen.insert(r->id).second) rows.push_back(*r);
  }
  auto tables = RunTables(db->get());
  if (!tables.ok()) return Fail(tables.status());
  auto tx = Transaction::Begin(db->get());
  if (!tx.ok()) return Fail(tx.status());
  json removed = json::array();
  for (const auto& r : rows) {
    int64_t n = 0;
    for (const auto& [t, c] : *tables) {
      auto q = (*db)->Prepare("DELETE FROM \"" + t + "\" WHERE \"" + c + "\" = ?1");
      if (!q.ok()) return Fail(q.status());
      q->Bind(1, r.id);
      if (Status s = q->Run(); !s.ok()) return Fail(s);
      n += (*db)->Changes();
    }
    auto q = (*db)->Prepare("DELETE FROM runs WHERE id = ?1");
    if (!q.ok()) return Fail(q.status());
    q->Bind(1, r.id);
    if (Status s = q->Run(); !s.ok()) return Fail(s);
    removed.push_back({{"id", r.id}, {"kind", r.kind}, {"name", r.name}, {"rows", n}});
  }
  if (Status s = tx->Commit(); !s.ok()) return Fail(s);
  if (ctx.g.json) {
    ctx.PrintJson({{"removed", removed}});
  } else {
    for (auto& r : removed)
      std::printf("removed run %lld (%s %s) and %lld rows of its own; its files on disk are kept\n",
                  static_cast<long long>(r["id"].get<int64_t>()), r["kind"].get<std::string>().c_str(),
                  r["name"].dump().c_str(), static_cast<long long>(r["rows"].get<int64_t>()));
  }
  return kExitOk;
}

}  // namespace

K2_COMMAND("runs", [](CLI::App& app, Context& ctx, Action* action) {
  auto* c = app.add_subcommand("runs", "List, inspect and remove the runs of the store (by id or --name)");
  c->require_subcommand(1);
  auto* l = c->add_subcommand("list", "The runs, newest first (runs whose process died are marked dead)");
  l->add_option("--kind", g_runs.kind, "only this kind (pretrain, sft, rl, simulate, eval, ...)");
  l->add_option("--status", g_runs.status, "only this status (running, done, failed, stopped, dead)");
  l->add_option("--limit", g_runs.limit, "at most this many")->check(CLI::Range(int64_t{1}, int64_t{1000000}));
  l->callback([action] { *action = List; });
  auto* s = c->add_subcommand("show", "One run: status, times, config, rows per table, last metrics, artifacts");
  s->add_option("run", g_runs.refs, "run id or name (the newest run of that name)")->required()->expected(1);
  s->callback([action] { *action = Show; });
  auto* r = c->add_subcommand("rm", "Remove runs and every row that belongs to them (files on disk stay)");
  r->add_option("runs", g_runs.refs, "run ids or names")->required();
  r->add_flag("--yes", g_runs.yes, "also remove runs still marked running by a live process");
  r->callback([action] { *action = Remove; });
});

}  // namespace k2::app
