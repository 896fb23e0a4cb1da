// The `synthetic` environment kind: toolgen::synth domains as ToolEnvs (executor semantics, schema
// checks from ToolEnv, seeded faults), the world index with cached tool tables, registry factory.
#include "agents/synthetic_env.h"

#include "agents/episode.h"
#include "agents/python_tool.h"
#include "core/store.h"
#include "sandbox/sandbox.h"
#include "core/thread_pool.h"
#include "toolgen/synth/database.h"
#include "toolgen/synth/store.h"
#include "toolgen/synth/synth.h"

namespace k2::agents {

using toolgen::synth::Domain;

SyntheticWorld::SyntheticWorld(std::vector<std::shared_ptr<const Domain>> domains) : domains_(std::move(domains)) {
  for (const auto& d : domains_) by_path_[d->path] = d;
}

Expected<std::shared_ptr<const SyntheticWorld>> SyntheticWorld::FromStore(Db* db, ThreadPool* pool) {
  auto meta = toolgen::synth::LoadCatalogMeta(db);
  if (!meta.ok()) return meta.status().Context("synthetic world (run `k2gym toolgen synth` first)");
  auto c = toolgen::synth::Synthesize(meta->seed, meta->count, pool, /*with_databases=*/false, meta->size);
  return std::shared_ptr<const SyntheticWorld>(std::make_shared<SyntheticWorld>(std::move(c.domains)));
}

std::shared_ptr<const SyntheticWorld> SyntheticWorld::Generate(uint64_t seed, int64_t min_tools, ThreadPool* pool) {
  auto c = toolgen::synth::Synthesize(seed, min_tools, pool, /*with_databases=*/false);
  return std::make_shared<SyntheticWorld>(std::move(c.domains));
}

std::shared_ptr<const Domain> SyntheticWorld::Find(const std::string& path) const {
  auto it = by_path_.find(path);
  return it == by_path_.end() ? nullptr : it->second;
}

Expected<std::shared_ptr<const ToolTable>> SyntheticWorld::Tools(const std::string& path, bool with_python) const {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string key = with_python ? path + "\n+python" : path;
  auto it = tables_.find(key);
  if (it != tables_.end()) return it->second;
  auto d = Find(path);
  if (!d) return NotFound("synthetic world: no domain " + json(path).dump());
  std::vector<toolgen::ToolSpec> specs;
  for (const auto& op : d->ops) specs.push_back(toolgen::synth::ToToolSpec(*d, op));
  if (with_python) specs.push_back(PythonToolSpec());
  K2_ASSIGN_OR_RETURN(auto table, ToolTable::Compile(std::move(specs), d->path + " tools"));
  tables_[key] = table;
  return table;
}

std::string DomainSystemPrompt(const Domain& d, const json& db) {
  std::string p = "You are the customer service agent of " + d.display + " (" + d.category +
                  "). Help the user with their request using the tools. Before any action that changes a "
                  "record, the user must have asked for it. Never act against a rule; explain the rule instead.";
  if (db.is_object() && db.contains("today") && db["today"].is_string())
    p += "\nToday is " + db["today"].get<std::string>() + ".";
  p += "\n\nRules:";
  for (const auto& pol : d.policies) p += "\n- " + pol.text;
  return p;
}

SyntheticEnv::SyntheticEnv(std::shared_ptr<const SyntheticWorld> world, SyntheticEnvConfig config,
                           sandbox::Sandbox* sandbox)
    : ToolEnv(config.max_steps), world_(std::move(world)), config_(config) {
  if (config_.python && sandbox)
    python_ = std::make_unique<PythonTool>(sandbox, config_.python_wall_s, config_.python_memory_mb);
}

SyntheticEnv::~SyntheticEnv() { Close(); }

json SyntheticEnv::State() const { return sim_ ? sim_->db() : json(nullptr); }

Expected<std::vector<Message>> SyntheticEnv::OnReset(uint64_t seed, const json& task) {
  const json& t = task.is_object() && task.contains("tau2") ? task["tau2"] : task;
  K2_ASSIGN_OR_RETURN(auto parsed, toolgen::synth::TaskFromTau2(t, "task"));
  return Start(seed, std::make_shared<const toolgen::synth::Task>(std::move(parsed)));
}

Expected<std::vector<Message>> SyntheticEnv::OnResetTask(uint64_t seed, const std::shared_ptr<const EpisodeTask>& task) {
  if (!task->synth) return OnReset(seed, task->env_task);
  // Aliasing pointer: shares ownership of the EpisodeTask, points at its parsed task (no copy).
  return Start(seed, std::shared_ptr<const toolgen::synth::Task>(task, &*task->synth));
}

Expected<std::vector<Message>> SyntheticEnv::Start(uint64_t seed, std::shared_ptr<const toolgen::synth::Task> task) {
  const toolgen::synth::Task& parsed = *task;
  auto d = world_->Find(parsed.domain);
  if (!d) {
    return NotFound("task " + parsed.id + ": domain " + json(parsed.domain).dump() +
                    " is not in this synthetic world (was the task generated from another catalog?)");
  }
  if (config_.python && !python_)
    return InvalidArgument("synthetic env: python is enabled but no sandbox was given");
  K2_ASSIGN_OR_RETURN(auto table, world_->Tools(parsed.domain, config_.python));
  SetToolTable(std::move(table));
  // The episode's one copy of the database: the executor mutates its own.
  sim_ = std::make_unique<toolgen::synth::ToolSimulator>(
      d, parsed.initial_db, toolgen::synth::FaultConfig{config_.transient_rate, config_.timeout_rate}, seed);
  std::vector<Message> first = {{.role = "system", .content = DomainSystemPrompt(*d, parsed.initial_db)}};
  task_ = std::move(task);
  return first;
}

Expected<ToolOutcome> SyntheticEnv::Invoke(const std::string& tool, const json& arguments) {
  if (!sim_) return FailedPrecondition("synthetic env: no episode");
  if (python_ && tool == "python") return python_->Run(arguments);
  auto r = sim_->Call(tool, arguments);
  if (!r.ok()) return ToolOutcome{"error: " + r.error + ": " + r.message, std::nullopt, true};
  // Canonical text: the observation is byte-identical across runs (exports are compared bytewise).
  return ToolOutcome{CanonicalJson(r.value), r.value, false};
}

namespace {

// Worlds are expensive (a whole catalog): one per source per process.
Expected<std::shared_ptr<const SyntheticWorld>> CachedWorld(const json& source) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const SyntheticWorld>> cache;
  std::string key = CanonicalJson(source);
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  std::shared_ptr<const SyntheticWorld> w;
  if (source.contains("db")) {
    K2_ASSIGN_OR_RETURN(auto db, Db::Open(source["db"].get<std::string>()));
    K2_ASSIGN_OR_RETURN(w, SyntheticWorld::FromStore(db.get(), nullptr));
  } else {
    w = SyntheticWorld::Generate(source.value("seed", uint64_t{0}), source.value("count", int64_t{200}), nullptr);
  }
  cache[key] = w;
  return w;
}

// One sandbox for every registry-made synthetic env with python (zygotes are a process-wide resource).
Expected<sandbox::Sandbox*> SharedSandbox() {
  static std::mutex mu;
  static std::unique_ptr<sandbox::Sandbox>* sb = new std::unique_ptr<sandbox::Sandbox>();
  std::lock_guard<std::mutex> lock(mu);
  if (!*sb) {
    auto s = sandbox::Sandbox::Create(sandbox::SandboxConfig{});
    if (!s.ok()) return s.status().Context("synthetic env: starting the sandbox for the python tool");
    *sb = std::move(*s);
  }
  return sb->get();
}

}  // namespace

Status RegisterSyntheticEnv(EnvRegistry& registry) {
  EnvInfo info{.name = "synthetic",
               .description = "a toolgen::synth domain and task: database from the task, executor-run tools, "
                              "schema-checked calls (config: db STORE | seed+count, plus synthetic_env keys)",
               .example_config = {{"seed", 7}, {"count", 200}, {"transient_rate", 0.0}}};
  return registry.Register(info, [](const json& config) -> Expected<std::unique_ptr<Env>> {
    if (!config.is_object()) return InvalidArgument(std::string("synthetic: config: expected an object, got ") + JsonTypeName(config));
    json source = json::object(), rest = json::object();
    for (const auto& [k, v] : config.items()) {
      if (k == "db") {
        if (!v.is_string()) return InvalidArgument("synthetic: config.db: expected a string (store path)");
        source[k] = v;
      } else if (k == "seed" || k == "count") {
        if (!v.is_number_unsigned()) return InvalidArgument("synthetic: config." + k + ": expected a non-negative integer");
        source[k] = v;
      } else {
        rest[k] = v;
      }
    }
    if (source.contains("db") && (source.contains("seed") || source.contains("count")))
      return InvalidArgument("synthetic: config: give either db or seed/count, not both");
    SyntheticEnvConfig cfg;
    K2_RETURN_IF_ERROR(config::Reader::Read(rest, cfg, "synthetic", "config", false));
    K2_ASSIGN_OR_RETURN(auto world, CachedWorld(source));
    sandbox::Sandbox* sb = nullptr;
    if (cfg.python) {
      K2_ASSIGN_OR_RETURN(sb, SharedSandbox());
    }
    return std::unique_ptr<Env>(std::make_unique<SyntheticEnv>(world, cfg, sb));
  });
}

}  // namespace k2::agents
