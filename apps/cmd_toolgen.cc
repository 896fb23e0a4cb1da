// `k2gym toolgen synth|agents|tasks|stats`: the synthetic tool catalog (hierarchical domain evolution
// with executable tools), agents and tasks with rubrics, stored in the SQLite store.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>

#include "apps/cli.h"
#include "core/thread_pool.h"
#include "toolgen/schema.h"
#include "toolgen/synth/agents.h"
#include "toolgen/synth/dedupe.h"
#include "toolgen/synth/sample.h"
#include "toolgen/synth/store.h"
#include "toolgen/synth/synth.h"
#include "toolgen/synth/tasks.h"

K2_CONFIG_SECTION("toolgen_synth", k2::toolgen::synth::SynthConfig,
                  "synthetic tools, agents and tasks (`k2gym toolgen ...`)");

namespace k2::app {
namespace {

using namespace k2::toolgen::synth;

struct Opts {
  int64_t count = -1;
  int64_t tasks = -1;
  int per_domain = -1;
  bool verify = false;
  bool include_heldout = false;
  std::string out;
} g_opts;

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Expected<SynthConfig> Config(const Context& ctx) {
  K2_ASSIGN_OR_RETURN(SynthConfig c, config::Get<SynthConfig>(ctx.config, "toolgen_synth"));
  if (g_opts.count > 0) c.count = g_opts.count;
  if (g_opts.tasks > 0) c.tasks = g_opts.tasks;
  if (g_opts.per_domain > 0) c.agents_per_domain = g_opts.per_domain;
  return c;
}

// Rebuilds the catalog recorded by the last `toolgen synth` (generation is deterministic per seed).
Expected<Catalog> Rebuild(Db* db, ThreadPool* pool, bool with_databases) {
  K2_ASSIGN_OR_RETURN(CatalogMeta m, LoadCatalogMeta(db));
  return Synthesize(m.seed, m.count, pool, with_databases, m.size);
}

// Every tool: a strict MCP ToolSpec whose schemas compile; sampled calls against its database whose
// arguments and results conform to the schemas. Returns {"tools", "calls", "ok", "errors", ...}.
Expected<json> Verify(const Catalog& c, ThreadPool* pool) {
  std::vector<std::string> problems(c.domains.size());
  std::vector<int64_t> ok(c.domains.size()), err(c.domains.size());
  pool->ParallelFor(static_cast<int64_t>(c.domains.size()), [&](int64_t i) {
    const Domain& d = *c.domains[i];
    json db = c.databases[i];
    Rng r(i);
    if (Status s = CheckInvariants(d, db); !s.ok()) problems[i] = d.path + ": " + s.ToString();
    for (auto& op : d.ops) {
      auto tool = toolgen::CompileTool(ToToolSpec(d, op), d.path + "::" + op.name);
      if (!tool.ok()) {
        problems[i] = tool.status().ToString();
        return;
      }
      for (int k = 0; k < 4; ++k) {
        json args = SampleArguments(d, op, db, r);
        if (Status s = tool->input->Validate(args); !s.ok()) problems[i] = d.path + "::" + op.name + " args " + s.ToString();
        CallResult res = Execute(d, op, db, args);
        if (res.ok()) {
          ++ok[i];
          if (Status s = tool->output->Validate(res.value); !s.ok())
            problems[i] = d.path + "::" + op.name + " result " + s.ToString();
        } else {
          ++err[i];
        }
      }
    }
  });
  json j = {{"tools", c.ToolCount()}, {"calls_ok", 0}, {"calls_error", 0}, {"problems", json::array()}};
  for (size_t i = 0; i < c.domains.size(); ++i) {
    j["calls_ok"] = j["calls_ok"].get<int64_t>() + ok[i];
    j["calls_error"] = j["calls_error"].get<int64_t>() + err[i];
    if (!problems[i].empty()) j["problems"].push_back(problems[i]);
  }
  return j;
}

int Synth(Context& ctx) {
  auto cfg = Config(ctx);
  if (!cfg.ok()) return Fail(cfg.status());
  auto db = ctx.OpenDb();
  if (!db.ok()) return Fail(db.status());
  ThreadPool pool(cfg->threads);
  auto t0 = std::chrono::steady_clock::now();
  DbSize size{cfg->db_actors, cfg->db_items, cfg->db_records};
  Catalog c = Synthesize(ctx.g.seed, cfg->count, &pool, true, size);
  double gen_s = Since(t0);
  std::vector<std::string> texts;
  for (auto& d : c.domains)
    for (auto& op : d->ops) texts.push_back(op.description);
  DedupeReport dd = MeasureNearDuplicates(texts, cfg->near_duplicate_jaccard, &pool);
  json out = {{"seed", ctx.g.seed},
              {"domains", c.domains.size()},
              {"tools", c.ToolCount()},
              {"generate_s", gen_s},
              {"near_duplicates",
               {{"threshold", dd.threshold}, {"pairs", dd.near_duplicate_pairs},
                {"tools_with_near_duplicate", dd.docs_with_near_duplicate},
                {"fraction", c.ToolCount() ? double(dd.docs_with_near_duplicate) / double(c.ToolCount()) : 0.0},
                {"max_jaccard", dd.max_jaccard}}}};
  if (g_opts.verify) {
    auto v = Verify(c, &pool);
    if (!v.ok()) return Fail(v.status());
    out["verify"] = *v;
    if (!(*v)["problems"].empty()) {
      ctx.PrintJson(out);
      return Fail(Internal("toolgen synth --verify: " + (*v)["problems"][0].get<std::string>()));
    }
  }
  if (Status s = SaveCatalog(db->get(), c, {ctx.g.seed, cfg->count, size}, &dd); !s.ok()) return Fail(s);
  out["total_s"] = Since(t0);
  if (!g_opts.out.empty()) {
    std::string lines;
    for (auto& d : c.domains)
      for (auto& op : d->ops) {
        json t = toolgen::ToJson(ToToolSpec(*d, op));
        t["provenance"] = "synthetic:" + d->path;
        lines += CanonicalJson(t) + "\n";
      }
    if (Status s = WriteFileAtomic(g_opts.out, lines); !s.ok()) return Fail(s);
    out["out"] = g_opts.out;
  }
  if (ctx.g.json) {
    ctx.PrintJson(out);
  } else {
    std::printf("synthesized %lld tools in %zu domains (seed %llu) in %.2f s; near-duplicate descriptions "
                "(word-3-shingle Jaccard >= %.2f): %lld tools (%.3f%%), max Jaccard %.3f\n",
                static_cast<long long>(c.ToolCount()), c.domains.size(), static_cast<unsigned long long>(ctx.g.seed),
                gen_s, dd.threshold, static_cast<long long>(dd.docs_with_near_duplicate),
                100.0 * out["near_duplicates"]["fraction"].get<double>(), dd.max_jaccard);
    if (g_opts.verify)
      std::printf("verified: every tool spec parses and its schemas compile; %lld sampled calls ok, %lld realistic errors\n",
                  static_cast<long long>(out["verify"]["calls_ok"].get<int64_t>()),
                  static_cast<long long>(out["verify"]["calls_error"].get<int64_t>()));
  }
  return kExitOk;
}

int Agents(Context& ctx) {
  auto cfg = Config(ctx);
  if (!cfg.ok()) return Fail(cfg.status());
  auto db = ctx.OpenDb();
  if (!db.ok()) return Fail(db.status());
  ThreadPool pool(cfg->threads);
  auto c = Rebuild(db->get(), &pool, false);
  if (!c.ok()) return Fail(c.status());
  auto agents = SynthesizeAgents(*c, ctx.g.seed, {cfg->agents_per_domain, cfg->cross_domain_tools, cfg->distractor_tools});
  if (Status s = SaveAgents(db->get(), agents); !s.ok()) return Fail(s);
  if (!g_opts.out.empty()) {
    std::string lines;
    for (auto& a : agents) lines += ToJson(a).dump() + "\n";
    if (Status s = WriteFileAtomic(g_opts.out, lines); !s.ok()) return Fail(s);
  }
  if (ctx.g.json) ctx.PrintJson({{"agents", agents.size()}, {"domains", c->domains.size()}});
  else std::printf("synthesized %zu agents over %zu domains\n", agents.size(), c->domains.size());
  return kExitOk;
}

int Tasks(Context& ctx) {
  auto cfg = Config(ctx);
  if (!cfg.ok()) return Fail(cfg.status());
  auto db = ctx.OpenDb();
  if (!db.ok()) return Fail(db.status());
  ThreadPool pool(cfg->threads);
  auto c = Rebuild(db->get(), &pool, false);
  if (!c.ok()) return Fail(c.status());
  std::vector<Domain> domains;
  for (auto& d : c->domains) domains.push_back(*d);
  // Training data never touches held-out domains (eval's built-in suites are made of them); building an
  // eval task set asks for them explicitly.
  int64_t heldout_excluded = 0;
  if (g_opts.include_heldout && g_opts.out.empty())
    return Fail(InvalidArgument("toolgen tasks: --include-heldout needs --out FILE (tasks on held-out domains are never stored "
                                "where training-data generators such as simulate read them)"));
  if (!g_opts.include_heldout) domains = TrainingDomains(domains, &heldout_excluded);
  if (domains.empty()) return Fail(InvalidArgument("toolgen tasks: every domain of the catalog is held out (use --include-heldout)"));
  TaskOptions topt;
  topt.max_goals = cfg->task_max_goals;
  topt.kinds = cfg->task_kinds;
  auto t0 = std::chrono::steady_clock::now();
  auto tasks = GenerateTasks(domains, ctx.g.seed, cfg->tasks, &pool, topt);
  double gen_s = Since(t0);
  // Every task is replayed and checked (hash, policies, assertions) before it is stored.
  std::vector<std::string> bad(tasks.size());
  std::map<std::string, const Domain*> index;
  for (auto& d : domains) index[d.path] = &d;
  pool.ParallelFor(static_cast<int64_t>(tasks.size()), [&](int64_t i) {
    Status s = VerifyTask(*index.at(tasks[i].domain), tasks[i]);
    if (!s.ok()) bad[i] = s.ToString();
  });
  for (auto& b : bad)
    if (!b.empty()) return Fail(Internal("toolgen tasks: generated task failed verification: " + b));
  // The store's tasks are simulate's default input: held-out tasks go to the --out file only.
  if (!g_opts.include_heldout)
    if (Status s = SaveTasks(db->get(), tasks); !s.ok()) return Fail(s);
  if (!g_opts.out.empty()) {
    json arr = json::array();
    for (auto& t : tasks) arr.push_back(ToTau2(t));
    if (Status s = WriteFileAtomic(g_opts.out, arr.dump(1)); !s.ok()) return Fail(s);
  }
  int refusals = 0;
  for (auto& t : tasks) refusals += t.refusal;
  int64_t heldout_tasks = 0;
  for (auto& t : tasks) heldout_tasks += IsHeldOutDomain(t.domain);
  json out = {{"tasks", tasks.size()}, {"requested", cfg->tasks}, {"refusal_tasks", refusals},
              {"domains", domains.size()}, {"heldout_domains_excluded", heldout_excluded},
              {"heldout_tasks", heldout_tasks}, {"include_heldout", g_opts.include_heldout},
              {"stored", !g_opts.include_heldout},
              {"generate_s", gen_s}, {"tasks_per_s", gen_s > 0 ? tasks.size() / gen_s : 0.0}};
  if (ctx.g.json) ctx.PrintJson(out);
  else
    std::printf("generated and verified %zu tasks (%d with a request to refuse) over %zu domains in %.2f s%s%s\n"
                "held-out domains: %s (%lld excluded, %lld held-out tasks)\n",
                tasks.size(), refusals, domains.size(), gen_s, g_opts.out.empty() ? "" : "; tau2 JSON: ", g_opts.out.c_str(),
                g_opts.include_heldout ? "included (--include-heldout: not for training data)" : "excluded",
                static_cast<long long>(heldout_excluded), static_cast<long long>(heldout_tasks));
  return kExitOk;
}

int Stats(Context& ctx) {
  auto db = ctx.OpenDb();
  if (!db.ok()) return Fail(db.status());
  auto s = SynthStats(db->get());
  if (!s.ok()) return Fail(s.status());
  if (ctx.g.json) {
    ctx.PrintJson(*s);
    return kExitOk;
  }
  const json& y = (*s)["synthetic"];
  std::printf("synthetic: %lld tools in %lld domains (%lld applications, %lld categories); %lld agents; %lld tasks\n",
              static_cast<long long>(y["tools"].get<int64_t>()), static_cast<long long>(y["domains"].get<int64_t>()),
              static_cast<long long>(y["applications"].get<int64_t>()),
              static_cast<long long>(y["categories"].get<int64_t>()), static_cast<long long>(y["agents"].get<int64_t>()),
              static_cast<long long>(y["tasks"].get<int64_t>()));
  if (y.contains("near_duplicates"))
    std::printf("near-duplicate descriptions (Jaccard >= %.2f): %lld tools, max Jaccard %.3f\n",
                y["near_duplicates"]["threshold"].get<double>(),
                static_cast<long long>(y["near_duplicates"]["tools_with_near_duplicate"].get<int64_t>()),
                y["near_duplicates"]["max_jaccard"].get<double>());
  std::printf("real (registry): %lld tools (%lld valid); total %lld\n",
              static_cast<long long>((*s)["real_tools"].get<int64_t>()),
              static_cast<long long>((*s)["real_tools_valid"].get<int64_t>()),
              static_cast<long long>((*s)["total_tools"].get<int64_t>()));
  std::printf("%-34s %8s\n", "category", "tools");
  for (auto& [k, v] : y["tools_by_category"].items()) std::printf("%-34s %8lld\n", k.c_str(), static_cast<long long>(v.get<int64_t>()));
  return kExitOk;
}

K2_COMMAND("toolgen", [](CLI::App& app, Context& ctx, Action* action) {
  auto* c = app.add_subcommand("toolgen", "Synthetic tools (domain evolution), agents and tasks with rubrics");
  c->require_subcommand(1);
  auto* s = c->add_subcommand("synth", "Evolve domains and generate executable tools with databases into the store");
  s->add_option("--count", g_opts.count, "minimum number of tools (default: toolgen_synth.count)")->check(CLI::Range(1, 10000000));
  s->add_flag("--verify", g_opts.verify, "compile every schema and run sampled calls against each tool's database");
  s->add_option("--out", g_opts.out, "also write the MCP tool specs as JSON Lines to this file");
  s->callback([action] { *action = Synth; });
  auto* a = c->add_subcommand("agents", "Synthesize agents (system prompt + toolset) for the stored catalog");
  a->add_option("--per-domain", g_opts.per_domain, "agents per domain (default: toolgen_synth.agents_per_domain)")
      ->check(CLI::Range(1, 100));
  a->add_option("--out", g_opts.out, "also write the agents as JSON Lines to this file");
  a->callback([action] { *action = Agents; });
  auto* t = c->add_subcommand("tasks", "Generate verified tasks with rubrics for the stored catalog");
  t->add_option("--count", g_opts.tasks, "number of tasks (default: toolgen_synth.tasks)")->check(CLI::Range(1, 10000000));
  t->add_option("--out", g_opts.out, "also export the tasks as a tau2-bench task JSON array to this file");
  t->add_flag("--include-heldout", g_opts.include_heldout,
              "also generate tasks on held-out domains, for eval suites: needs --out, nothing is stored (training data excludes them)");
  t->callback([action] { *action = Tasks; });
  auto* st = c->add_subcommand("stats", "Counts of synthetic domains, tools, agents, tasks, and real registry tools");
  st->callback([action] { *action = Stats; });
});

}  // namespace
}  // namespace k2::app
