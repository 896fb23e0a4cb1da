// SQLite persistence of synthetic domains, tools, agents and tasks (see store.h).
#include "toolgen/synth/store.h"

#include <map>

namespace k2::toolgen::synth {

const Migrations& SynthMigrations() {
  static const Migrations m{"toolgen_synth",
                            {R"sql(
CREATE TABLE synth_meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE synth_domains(
  path TEXT PRIMARY KEY,        -- category/application/variant
  category TEXT NOT NULL,
  display TEXT NOT NULL,
  entities TEXT NOT NULL,       -- ["actor","item","record"] names
  policies TEXT NOT NULL,       -- [{"kind","n","text"}]
  db_hash TEXT NOT NULL);       -- StateHash of its generated database
CREATE TABLE synth_tools(
  domain TEXT NOT NULL REFERENCES synth_domains(path) ON DELETE CASCADE,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,           -- operation kind (get, create, cancel, ...)
  category TEXT NOT NULL,
  spec TEXT NOT NULL,           -- the MCP Tool object (canonical JSON)
  PRIMARY KEY(domain, name));
CREATE INDEX synth_tools_category ON synth_tools(category);
CREATE TABLE synth_agents(
  id TEXT PRIMARY KEY,
  domain TEXT NOT NULL,
  role TEXT NOT NULL,
  agent TEXT NOT NULL);         -- Agent JSON
CREATE TABLE synth_tasks(
  id TEXT PRIMARY KEY,
  domain TEXT NOT NULL,
  difficulty INTEGER NOT NULL,
  scenarios TEXT NOT NULL,
  expected_hash TEXT NOT NULL,
  task TEXT NOT NULL);          -- tau2 task JSON
)sql"}};
  return m;
}

namespace {

Status Run(Db* db, const std::string& sql) { return db->Exec(sql); }

Status PutMeta(Db* db, const std::string& key, const std::string& value) {
  K2_ASSIGN_OR_RETURN(Stmt st, db->Prepare("INSERT OR REPLACE INTO synth_meta(key, value) VALUES(?, ?)"));
  st.Bind(1, key).Bind(2, value);
  return st.Run();
}

}  // namespace

Status SaveCatalog(Db* db, const Catalog& c, const CatalogMeta& meta, const DedupeReport* dedupe) {
  K2_RETURN_IF_ERROR(db->Migrate(SynthMigrations()));
  K2_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db));
  K2_RETURN_IF_ERROR(Run(db, "DELETE FROM synth_tools; DELETE FROM synth_domains;"));
  K2_ASSIGN_OR_RETURN(Stmt dom, db->Prepare("INSERT INTO synth_domains(path, category, display, entities, policies, db_hash) "
                                            "VALUES(?, ?, ?, ?, ?, ?)"));
  K2_ASSIGN_OR_RETURN(Stmt tool, db->Prepare("INSERT INTO synth_tools(domain, name, kind, category, spec) VALUES(?, ?, ?, ?, ?)"));
  for (size_t i = 0; i < c.domains.size(); ++i) {
    const Domain& d = *c.domains[i];
    json pol = json::array();
    for (auto& p : d.policies) pol.push_back({{"kind", PolicyKindName(p.kind)}, {"n", p.n}, {"text", p.text}});
    json ents = {d.entities[0].name, d.entities[1].name, d.entities[2].name};
    std::string hash = c.databases.empty() ? "" : StateHash(c.databases[i]);
    dom.Reset();
    dom.Bind(1, d.path).Bind(2, d.category).Bind(3, d.display).Bind(4, ents.dump()).Bind(5, pol.dump()).Bind(6, hash);
    K2_RETURN_IF_ERROR(dom.Run());
    for (auto& op : d.ops) {
      tool.Reset();
      tool.Bind(1, d.path).Bind(2, op.name).Bind(3, OpKindName(op.kind)).Bind(4, d.category)
          .Bind(5, CanonicalJson(ToJson(ToToolSpec(d, op))));
      K2_RETURN_IF_ERROR(tool.Run());
    }
  }
  K2_RETURN_IF_ERROR(PutMeta(db, "seed", std::to_string(meta.seed)));
  K2_RETURN_IF_ERROR(PutMeta(db, "count", std::to_string(meta.count)));
  K2_RETURN_IF_ERROR(PutMeta(db, "db_size", json({meta.size.actors, meta.size.items, meta.size.records}).dump()));
  if (dedupe) {
    json dj = {{"docs", dedupe->docs}, {"threshold", dedupe->threshold}, {"candidate_pairs", dedupe->candidate_pairs},
               {"near_duplicate_pairs", dedupe->near_duplicate_pairs},
               {"tools_with_near_duplicate", dedupe->docs_with_near_duplicate}, {"max_jaccard", dedupe->max_jaccard}};
    K2_RETURN_IF_ERROR(PutMeta(db, "dedupe", dj.dump()));
  }
  return tx.Commit();
}

Expected<CatalogMeta> LoadCatalogMeta(Db* db) {
  K2_RETURN_IF_ERROR(db->Migrate(SynthMigrations()));
  std::map<std::string, std::string> kv;
  K2_ASSIGN_OR_RETURN(Stmt st, db->Prepare("SELECT key, value FROM synth_meta"));
  while (st.Step()) kv[st.Text(0)] = st.Text(1);
  K2_RETURN_IF_ERROR(st.status());
  if (!kv.count("seed") || !kv.count("count") || !kv.count("db_size"))
    return NotFound(db->path() + ": no synthetic catalog yet (run `k2gym toolgen synth` first)");
  CatalogMeta m;
  m.seed = std::stoull(kv["seed"]);
  m.count = std::stoll(kv["count"]);
  K2_ASSIGN_OR_RETURN(json size, ParseJson(kv["db_size"], "synth_meta.db_size"));
  if (!size.is_array() || size.size() != 3) return Corruption("synth_meta.db_size: expected [actors, items, records]");
  m.size = {size[0].get<int>(), size[1].get<int>(), size[2].get<int>()};
  return m;
}

Status SaveAgents(Db* db, const std::vector<Agent>& agents) {
  K2_RETURN_IF_ERROR(db->Migrate(SynthMigrations()));
  K2_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db));
  K2_RETURN_IF_ERROR(Run(db, "DELETE FROM synth_agents;"));
  K2_ASSIGN_OR_RETURN(Stmt st, db->Prepare("INSERT INTO synth_agents(id, domain, role, agent) VALUES(?, ?, ?, ?)"));
  for (auto& a : agents) {
    st.Reset();
    st.Bind(1, a.id).Bind(2, a.domain).Bind(3, a.role).Bind(4, ToJson(a).dump());
    K2_RETURN_IF_ERROR(st.Run().Context("agent " + a.id));
  }
  return tx.Commit();
}

Status SaveTasks(Db* db, const std::vector<Task>& tasks) {
  K2_RETURN_IF_ERROR(db->Migrate(SynthMigrations()));
  K2_ASSIGN_OR_RETURN(Transaction tx, Transaction::Begin(db));
  K2_RETURN_IF_ERROR(Run(db, "DELETE FROM synth_tasks;"));
  K2_ASSIGN_OR_RETURN(Stmt st, db->Prepare(
      "INSERT INTO synth_tasks(id, domain, difficulty, scenarios, expected_hash, task) VALUES(?, ?, ?, ?, ?, ?)"));
  for (auto& t : tasks) {
    st.Reset();
    st.Bind(1, t.id).Bind(2, t.domain).Bind(3, t.difficulty).Bind(4, json(t.scenarios).dump()).Bind(5, t.expected_hash)
        .Bind(6, ToTau2(t).dump());
    K2_RETURN_IF_ERROR(st.Run().Context("task " + t.id));
  }
  return tx.Commit();
}

Expected<std::vector<Task>> LoadTasks(Db* db, const std::string& domain) {
  K2_RETURN_IF_ERROR(db->Migrate(SynthMigrations()));
  K2_ASSIGN_OR_RETURN(Stmt st, db->Prepare(domain.empty() ? "SELECT id, task FROM synth_tasks ORDER BY id"
                                                          : "SELECT id, task FROM synth_tasks WHERE domain = ? ORDER BY id"));
  if (!domain.empty()) st.Bind(1, domain);
  std::vector<Task> out;
  while (st.Step()) {
    std::string where = "synth_tasks[" + st.Text(0) + "]";
    K2_ASSIGN_OR_RETURN(json j, ParseJson(st.Text(1), where));
    K2_ASSIGN_OR_RETURN(Task t, TaskFromTau2(j, where));
    out.push_back(std::move(t));
  }
  K2_RETURN_IF_ERROR(st.status());
  return out;
}

Expected<json> SynthStats(Db* db) {
  K2_RETURN_IF_ERROR(db->Migrate(SynthMigrations()));
  auto scalar = [&](const std::string& sql) -> Expected<int64_t> {
    K2_ASSIGN_OR_RETURN(Stmt st, db->Prepare(sql));
    int64_t v = st.Step() ? st.Int(0) : 0;
    K2_RETURN_IF_ERROR(st.status());
    return v;
  };
  auto grouped = [&](const std::string& sql) -> Expected<json> {
    K2_ASSIGN_OR_RETURN(Stmt st, db->Prepare(sql));
    json o = json::object();
    while (st.Step()) o[st.Text(0)] = st.Int(1);
    K2_RETURN_IF_ERROR(st.status());
    return o;
  };
  json s;
  K2_ASSIGN_OR_RETURN(int64_t domains, scalar("SELECT COUNT(*) FROM synth_domains"));
  K2_ASSIGN_OR_RETURN(int64_t tools, scalar("SELECT COUNT(*) FROM synth_tools"));
  K2_ASSIGN_OR_RETURN(int64_t categories, scalar("SELECT COUNT(DISTINCT category) FROM synth_domains"));
  K2_ASSIGN_OR_RETURN(int64_t apps, scalar("SELECT COUNT(DISTINCT substr(path, 1, instr(substr(path, instr(path, '/') + 1), '/') + instr(path, '/') - 1)) FROM synth_domains"));
  K2_ASSIGN_OR_RETURN(int64_t agents, scalar("SELECT COUNT(*) FROM synth_agents"));
  K2_ASSIGN_OR_RETURN(int64_t tasks, scalar("SELECT COUNT(*) FROM synth_tasks"));
  K2_ASSIGN_OR_RETURN(int64_t distinct, scalar("SELECT COUNT(*) FROM (SELECT DISTINCT domain, name FROM synth_tools)"));
  K2_ASSIGN_OR_RETURN(json by_cat, grouped("SELECT category, COUNT(*) FROM synth_tools GROUP BY category ORDER BY category"));
  K2_ASSIGN_OR_RETURN(json by_kind, grouped("SELECT kind, COUNT(*) FROM synth_tools GROUP BY kind ORDER BY kind"));
  K2_ASSIGN_OR_RETURN(json by_diff, grouped("SELECT CAST(difficulty AS TEXT), COUNT(*) FROM synth_tasks GROUP BY difficulty"));
  K2_ASSIGN_OR_RETURN(json by_role, grouped("SELECT role, COUNT(*) FROM synth_agents GROUP BY role ORDER BY role"));
  json syn = {{"categories", categories}, {"applications", apps}, {"domains", domains}, {"tools", tools},
              {"distinct_tools", distinct}, {"tools_by_category", by_cat}, {"tools_by_operation", by_kind},
              {"agents", agents}, {"agents_by_role", by_role}, {"tasks", tasks}, {"tasks_by_difficulty", by_diff}};
  {
    K2_ASSIGN_OR_RETURN(Stmt st, db->Prepare("SELECT key, value FROM synth_meta WHERE key IN ('seed', 'dedupe')"));
    while (st.Step()) {
      if (st.Text(0) == "seed") syn["seed"] = std::stoull(st.Text(1));
      else {
        auto j = ParseJson(st.Text(1), "synth_meta.dedupe");
        if (j.ok()) syn["near_duplicates"] = *j;
      }
    }
    K2_RETURN_IF_ERROR(st.status());
  }
  s["synthetic"] = syn;
  // Real tools: the registry's table when `k2gym tools import` has created it.
  K2_ASSIGN_OR_RETURN(int64_t has_registry, scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'tools'"));
  int64_t real = 0, real_valid = 0;
  if (has_registry) {
    K2_ASSIGN_OR_RETURN(real, scalar("SELECT COUNT(*) FROM tools"));
    K2_ASSIGN_OR_RETURN(real_valid, scalar("SELECT COUNT(*) FROM tools WHERE valid = 1"));
  }
  s["real_tools"] = real;
  s["real_tools_valid"] = real_valid;
  s["total_tools"] = real + tools;
  return s;
}

}  // namespace k2::toolgen::synth
