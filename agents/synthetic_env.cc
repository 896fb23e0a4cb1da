// The `synthetic` environment kind: toolgen::synth domains as ToolEnvs (executor semantics, schema
// checks from ToolEnv, seeded faults), the world index with cached tool tables, registry factory.
#include "agents/synthetic_env.h"

#include "agents/dual_control.h"

#include <cctype>
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

bool AgentProfile::Covers(const toolgen::synth::Task& t) const {
  if (t.domain != domain) return false;
  for (const auto& a : t.actions)
    if (a.requestor == "assistant" && !own.count(a.name)) return false;
  return true;
}

Expected<std::shared_ptr<const AgentProfile>> SyntheticWorld::Profile(const toolgen::synth::Agent& agent) const {
  auto p = std::make_shared<AgentProfile>();
  p->id = agent.id;
  p->domain = agent.domain;
  p->role = agent.role;
  p->system_prompt = agent.system_prompt;
  if (!Find(agent.domain)) return InvalidArgument("agent " + agent.id + ": domain " + json(agent.domain).dump() + " is not in this catalog");
  std::vector<toolgen::ToolSpec> specs;
  std::set<std::string> names;
  for (const auto& entry : agent.tools) {
    const size_t sep = entry.rfind("::");
    if (sep == std::string::npos)
      return InvalidArgument("agent " + agent.id + ": tool " + json(entry).dump() + ": expected \"<domain path>::<tool>\"");
    const std::string path = entry.substr(0, sep), tool = entry.substr(sep + 2);
    auto d = Find(path);
    const toolgen::synth::Op* op = nullptr;
    if (d)
      for (const auto& o : d->ops)
        if (o.name == tool) op = &o;
    if (!op) return InvalidArgument("agent " + agent.id + ": tool " + json(entry).dump() + " is not in this catalog");
    toolgen::ToolSpec spec = toolgen::synth::ToToolSpec(*d, *op);
    if (path != agent.domain) {
      std::string seg = path.substr(path.rfind('/') == std::string::npos ? 0 : path.rfind('/') + 1);
      for (char& c : seg)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      if (names.count(spec.name)) spec.name = seg + "__" + spec.name;
      p->foreign[spec.name] = {path, tool};
    } else {
      p->own.insert(spec.name);
    }
    if (!names.insert(spec.name).second) continue;  // listed twice
    specs.push_back(std::move(spec));
  }
  K2_ASSIGN_OR_RETURN(p->tools, ToolTable::Compile(std::move(specs), "agent " + agent.id + " tools"));
  return std::shared_ptr<const AgentProfile>(std::move(p));
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

json SyntheticEnv::State() const {
  if (dual_) return dual_db_;
  return sim_ ? sim_->db() : json(nullptr);
}

Expected<std::vector<Message>> SyntheticEnv::OnReset(uint64_t seed, const json& task) {
  const json& t = task.is_object() && task.contains("tau2") ? task["tau2"] : task;
  K2_ASSIGN_OR_RETURN(auto parsed, toolgen::synth::TaskFromTau2(t, "task"));
  return Start(seed, std::make_shared<const toolgen::synth::Task>(std::move(parsed)));
}

Expected<std::vector<Message>> SyntheticEnv::OnResetTask(uint64_t seed, const std::shared_ptr<const EpisodeTask>& task) {
  if (!task->synth) return OnReset(seed, task->env_task);
  // Aliasing pointer: shares ownership of the EpisodeTask, points at its parsed task (no copy).
  auto first = Start(seed, std::shared_ptr<const toolgen::synth::Task>(task, &*task->synth));
  if (!first.ok() || !task->agent) return first;
  if (task->agent->domain != task->domain)
    return InvalidArgument("task " + task->id + ": agent " + task->agent->id + " serves " + task->agent->domain +
                           ", not the task's domain " + task->domain);
  // The agent's own prompt and toolset replace the domain's defaults (today's date kept).
  SetToolTable(task->agent->tools);
  foreign_ = &task->agent->foreign;
  agent_hold_ = task->agent;
  std::string prompt = task->agent->system_prompt;
  if (task->synth->initial_db.is_object() && task->synth->initial_db.contains("today") &&
      task->synth->initial_db["today"].is_string())
    prompt += "\nToday is " + task->synth->initial_db["today"].get<std::string>() + ".";
  (*first)[0].content = std::move(prompt);
  return first;
}

Expected<std::vector<Message>> SyntheticEnv::Start(uint64_t seed, std::shared_ptr<const toolgen::synth::Task> task) {
  const toolgen::synth::Task& parsed = *task;
  foreign_ = nullptr;
  agent_hold_ = nullptr;
  if (parsed.domain == kDualControlDomain) {
    // Dual control: the in-tree telecom domain (agents/dual_control.h); the user owns the phone's tools.
    SetToolTable(DualControlAgentTools());
    SetUserToolTable(DualControlUserTools());
    sim_.reset();
    dual_ = true;
    dual_db_ = parsed.initial_db;
    std::vector<Message> first = {{.role = "system", .content = DualControlSystemPrompt(parsed.initial_db)}};
    task_ = std::move(task);
    return first;
  }
  dual_ = false;
  dual_db_ = nullptr;
  SetUserToolTable(nullptr);
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
  if (dual_) return DualControlCall(dual_db_, /*user=*/false, tool, arguments);
  if (foreign_) {
    if (auto it = foreign_->find(tool); it != foreign_->end())
      return ToolOutcome{"error: unavailable: " + tool + " belongs to " + it->second.first +
                             ", which holds no records for this conversation",
                         std::nullopt, true};
  }
  if (!sim_) return FailedPrecondition("synthetic env: no episode");
  if (python_ && tool == "python") return python_->Run(arguments);
  auto r = sim_->Call(tool, arguments);
  if (!r.ok()) return ToolOutcome{"error: " + r.error + ": " + r.message, std::nullopt, true};
  // Canonical text: the observation is byte-identical across runs (exports are compared bytewise).
  return ToolOutcome{CanonicalJson(r.value), r.value, false};
}

Expected<ToolOutcome> SyntheticEnv::InvokeUser(const std::string& tool, const json& arguments) {
  if (!dual_) return NotFound("synthetic env: the user owns no tools in this task (no " + tool + ")");
  return DualControlCall(dual_db_, /*user=*/true, tool, arguments);
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

namespace {
std::shared_ptr<const SyntheticWorld> CutOps(const SyntheticWorld& world,
                                             const std::map<std::string, std::set<std::string>>& used) {
  std::vector<std::shared_ptr<const toolgen::synth::Domain>> out;
  for (const auto& d : world.domains()) {
    auto it = used.find(d->path);
    if (it == used.end()) {
      out.push_back(d);
      continue;
    }
    auto cut = std::make_shared<toolgen::synth::Domain>(*d);
    cut->ops.clear();
    for (const auto& op : d->ops)
      if (it->second.count(op.name)) cut->ops.push_back(op);
    out.push_back(std::move(cut));
  }
  return std::make_shared<SyntheticWorld>(std::move(out));
}
}  // namespace

std::shared_ptr<const SyntheticWorld> TaskToolsOnly(const SyntheticWorld& world,
                                                    const std::vector<std::shared_ptr<const EpisodeTask>>& tasks) {
  std::map<std::string, std::set<std::string>> used;
  for (const auto& t : tasks)
    if (t->synth)
      for (const auto& a : t->synth->actions) used[t->domain].insert(a.name);
  return CutOps(world, used);
}

std::shared_ptr<const SyntheticWorld> TaskToolsOnly(const SyntheticWorld& world,
                                                    const std::vector<toolgen::synth::Task>& tasks) {
  std::map<std::string, std::set<std::string>> used;
  for (const auto& t : tasks)
    for (const auto& a : t.actions) used[t.domain].insert(a.name);
  return CutOps(world, used);
}

}  // namespace k2::agents
