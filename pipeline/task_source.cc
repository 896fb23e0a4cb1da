// Task source readers (pipeline/task_source.h): JSONL rows, synthetic catalogs, τ² suites, MCP task
// files and mixtures, each into Tasks with an environment, a user, a reward composition and a split.
#include "pipeline/task_source.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "core/rng.h"
#include "core/store.h"
#include "agents/tau2/task.h"
#include "eval/tau2_suite.h"
#include "rewards/judge.h"
#include "toolgen/synth/tasks.h"

namespace k2::pipeline {
namespace fs = std::filesystem;

json SourceInfo::ToJson() const {
  return {{"name", name}, {"kind", kind}, {"weight", weight}, {"tasks", tasks}, {"skipped", skipped}};
}

json TaskSet::Summary() const {
  json s = json::array();
  for (auto& x : sources) s.push_back(x.ToJson());
  json p = json::array();
  for (size_t i = 0; i < problems.size() && i < 20; ++i) p.push_back(problems[i]);
  return {{"sources", s}, {"tasks", tasks.size()}, {"skipped", skipped}, {"problems", p}};
}

namespace {

std::string Resolve(const std::string& base, const std::string& p) {
  if (p.empty() || fs::path(p).is_absolute() || base.empty()) return p;
  return (fs::path(base) / p).string();
}

Expected<std::string> Str(const json& o, const char* key, const std::string& where, bool required,
                          const std::string& dflt = "") {
  auto it = o.find(key);
  if (it == o.end()) {
    if (required) return InvalidArgument(where + ": " + key + ": missing (expected a string)");
    return dflt;
  }
  if (!it->is_string()) return InvalidArgument(where + ": " + key + ": expected a string, got " + JsonTypeName(*it));
  return it->get<std::string>();
}

// Keys of a source spec common to every kind.
const std::set<std::string> kCommonKeys = {"kind", "name", "weight", "split", "env", "reward", "limits", "user"};

Status CheckKeys(const json& spec, const std::set<std::string>& extra, const std::string& where) {
  for (auto& [k, v] : spec.items())
    if (!kCommonKeys.count(k) && !extra.count(k)) {
      std::string known;
      for (auto& x : kCommonKeys) known += (known.empty() ? "" : ", ") + x;
      for (auto& x : extra) known += ", " + x;
      return InvalidArgument(where + ": unknown key " + json(k).dump() + " (known: " + known + ")");
    }
  return Status::Ok();
}

Expected<std::vector<Message>> GoldTurns(const json& g, const std::string& where) {
  std::vector<Message> out;
  if (g.is_string()) {
    out.push_back({.role = "assistant", .content = g.get<std::string>()});
    return out;
  }
  if (!g.is_array()) return InvalidArgument(where + ": gold: expected a string or an array of assistant messages");
  K2_ASSIGN_OR_RETURN(out, MessagesFromJson(g, where + ": gold"));
  for (auto& m : out)
    if (m.role != "assistant") return InvalidArgument(where + ": gold: every message must have role \"assistant\"");
  return out;
}

// The environment of a source or row: {"kind": KIND, "config": {...}}.
Status ReadEnv(const json& e, Task& t, const std::string& where) {
  if (!e.is_object() || !e.contains("kind") || !e["kind"].is_string())
    return InvalidArgument(where + ": env: expected {\"kind\": string, \"config\"?: object}");
  for (auto& [k, v] : e.items())
    if (k != "kind" && k != "config") return InvalidArgument(where + ": env: unknown key " + json(k).dump());
  t.env_kind = e["kind"];
  t.env_config = e.value("config", json::object());
  if (!t.env_config.is_object()) return InvalidArgument(where + ": env.config: expected an object");
  return Status::Ok();
}

// Applies the source-level keys every task of a source shares (env, reward, split, limits, user).
Status ApplySourceDefaults(const json& src, Task& t, const std::string& where) {
  if (src.contains("env")) K2_RETURN_IF_ERROR(ReadEnv(src["env"], t, where));
  if (src.contains("reward")) {
    if (!src["reward"].is_object()) return InvalidArgument(where + ": reward: expected a reward config object");
    t.reward = src["reward"];
  }
  if (src.contains("split")) {
    K2_ASSIGN_OR_RETURN(t.split, Str(src, "split", where, true));
  }
  if (src.contains("limits")) {
    if (!src["limits"].is_object()) return InvalidArgument(where + ": limits: expected an object of episode limits");
    t.limits = src["limits"];
  }
  if (src.contains("user")) {
    K2_ASSIGN_OR_RETURN(t.user, Str(src, "user", where, true));
    if (t.user != "none" && t.user != "scripted" && t.user != "llm")
      return InvalidArgument(where + ": user: expected \"none\", \"scripted\" or \"llm\", got " + json(t.user).dump());
  }
  return Status::Ok();
}

std::shared_ptr<const agents::EpisodeTask> MakeEpisode(const std::string& id, const std::string& domain, json env_task) {
  auto e = std::make_shared<agents::EpisodeTask>();
  e->id = id;
  e->domain = domain;
  e->env_task = std::move(env_task);
  return e;
}

// Keys of a JSONL row that are not evaluation spec.
const std::set<std::string> kRowKeys = {"id", "prompt", "messages", "system", "gold", "split", "reward", "env",
                                        "task_type", "limits", "initial_calls", "env_task"};

std::string AutoType(const json& row) {
  if (row.contains("reference") || row.contains("answer")) return "math";
  if (row.contains("io_cases") || row.contains("test_code")) return "code";
  if (row.contains("constraints")) return "if";
  return "";
}

struct Reader {
  const LoadOptions& opt;
  TaskSet& set;
  // Skips (or, strict, fails on) a malformed row.
  Status Problem(SourceInfo& info, const Status& s) {
    if (opt.strict) return s;
    set.problems.push_back(s.message());
    ++set.skipped;
    ++info.skipped;
    return Status::Ok();
  }
  Status AddTask(SourceInfo& info, Task t, std::set<std::string>& ids, const std::string& where) {
    if (!ids.insert(t.id).second) return Problem(info, InvalidArgument(where + ": id: duplicate " + json(t.id).dump()));
    set.tasks.push_back(std::move(t));
    ++info.tasks;
    return Status::Ok();
  }

  // One task per non-blank line of a JSONL file, each read with `spec` (the source's defaults); a bad row
  // is a problem at FILE:LINE (skipped, or fatal under --strict).
  Status Rows(const std::string& path, const json& spec, SourceInfo& info, const std::string& where) {
    std::ifstream in(path);
    if (!in) return InvalidArgument(where + ": path: cannot open " + path + " (no such file, or not readable)");
    std::set<std::string> ids;
    std::string line;
    for (int64_t n = 1; std::getline(in, line); ++n) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string w = path + ":" + std::to_string(n);
      auto row = ParseJson(line, w);
      if (!row.ok()) {
        K2_RETURN_IF_ERROR(Problem(info, InvalidArgument(w + ": not a JSON object: " + row.status().message())));
        continue;
      }
      auto t = TaskFromRow(*row, spec, info.name, w);
      if (!t.ok()) {
        K2_RETURN_IF_ERROR(Problem(info, t.status()));
        continue;
      }
      K2_RETURN_IF_ERROR(AddTask(info, std::move(*t), ids, w));
    }
    return Status::Ok();
  }

  Status Jsonl(const json& spec, const std::string& base, SourceInfo& info, const std::string& where) {
    K2_RETURN_IF_ERROR(CheckKeys(spec, {"path", "task_type"}, where));
    K2_ASSIGN_OR_RETURN(std::string path, Str(spec, "path", where, true));
    path = Resolve(base, path);
    return Rows(path, spec, info, where);
  }

  Status Synthetic(const json& spec, const std::string& base, SourceInfo& info, const std::string& where) {
    K2_RETURN_IF_ERROR(CheckKeys(spec, {"tasks", "db", "heldout_fraction", "task_tools_only", "include_heldout"}, where));
    K2_ASSIGN_OR_RETURN(std::string path, Str(spec, "tasks", where, true));
    path = Resolve(base, path);
    K2_ASSIGN_OR_RETURN(std::string db, Str(spec, "db", where, false, opt.db));
    if (!db.empty() && spec.contains("db")) db = Resolve(base, db);
    if (db.empty()) return InvalidArgument(where + ": db: a synthetic source needs the store of its catalog (db or --db)");
    // heldout_fraction f: every round(1/f)-th task of the file (by its index there) is split "heldout",
    // the others "train" — the split `rl` trains on and `eval --split heldout` measures.
    double heldout_fraction = 0;
    if (spec.contains("heldout_fraction")) {
      const json& f = spec["heldout_fraction"];
      if (!f.is_number() || f.get<double>() < 0 || f.get<double>() > 0.9)
        return InvalidArgument(where + ": heldout_fraction: expected a number in [0, 0.9]");
      heldout_fraction = f.get<double>();
    }
    const int64_t every = heldout_fraction > 0 ? std::max<int64_t>(2, std::llround(1.0 / heldout_fraction)) : 0;
    bool tools_only = false, keep_heldout_domains = opt.include_heldout;
    for (auto [key, dst] : {std::pair<const char*, bool*>{"task_tools_only", &tools_only},
                            std::pair<const char*, bool*>{"include_heldout", &keep_heldout_domains}})
      if (spec.contains(key)) {
        if (!spec[key].is_boolean()) return InvalidArgument(where + ": " + key + ": expected true or false");
        *dst = spec[key].get<bool>();
      }
    K2_ASSIGN_OR_RETURN(json arr, ReadJsonFile(path));
    if (!arr.is_array()) return InvalidArgument(path + ": expected a JSON array of τ² tasks");
    // task_tools_only: one in-process world whose domains offer only the tools some task of the file
    // calls in its gold plan (as rl_run.task_tools_only and simulate --task-tools-only).
    std::shared_ptr<const agents::SyntheticWorld> world;
    if (tools_only) {
      std::vector<toolgen::synth::Task> all;
      for (size_t i = 0; i < arr.size(); ++i)
        if (auto st = toolgen::synth::TaskFromTau2(arr[i], path); st.ok()) all.push_back(std::move(*st));
      auto store = Db::Open(db);
      if (!store.ok()) return store.status().Context(where + ": db");
      K2_ASSIGN_OR_RETURN(auto full, agents::SyntheticWorld::FromStore(store->get(), opt.pool));
      world = agents::TaskToolsOnly(*full, all);
    }
    std::set<std::string> ids;
    for (size_t i = 0; i < arr.size(); ++i) {
      const std::string w = path + "[" + std::to_string(i) + "]";
      auto st = toolgen::synth::TaskFromTau2(arr[i], w);
      if (!st.ok()) {
        K2_RETURN_IF_ERROR(Problem(info, st.status()));
        continue;
      }
      if (!keep_heldout_domains && toolgen::synth::IsHeldOutDomain(st->domain)) continue;
      Task t;
      t.source = info.name;
      t.id = info.name + "/" + st->id;
      t.task_type = "tool";
      t.env_kind = "synthetic";
      t.env_config = {{"db", db}};
      t.user = "scripted";
      t.reward = {{"type", "judge"}};
      t.world = world;
      K2_RETURN_IF_ERROR(ApplySourceDefaults(spec, t, where));
      if (every > 0) t.split = static_cast<int64_t>(i % every) == every - 1 ? "heldout" : "train";
      json criteria = toolgen::synth::ToTau2(*st)["evaluation_criteria"];
      toolgen::synth::Task copy = *st;
      copy.id = t.id;
      t.episode = agents::EpisodeTask::FromSynth(std::move(copy));
      // The judge's spec (expected state hash, communicate_info, forbidden actions with compare_args,
      // the grader's rubric) plus the τ² criteria the tool verifier reads.
      t.spec = rewards::JudgeSpec(*t.episode);
      t.spec["evaluation_criteria"] = criteria;
      K2_RETURN_IF_ERROR(AddTask(info, std::move(t), ids, w));
    }
    return Status::Ok();
  }

  // τ²-bench's own domain folder ({"kind": "tau2", "dir": DIR}, DIR = <checkout>/data/tau2/domains/<d>):
  // its tasks run natively (env kind tau2), with the τ² scripted user and τ²'s evaluation (reward tau2).
  Status Tau2Native(const json& spec, const std::string& base, SourceInfo& info, const std::string& where) {
    K2_RETURN_IF_ERROR(CheckKeys(spec, {"dir", "domain", "tasks"}, where));
    K2_ASSIGN_OR_RETURN(std::string dir, Str(spec, "dir", where, true));
    dir = Resolve(base, dir);
    K2_ASSIGN_OR_RETURN(std::string domain, Str(spec, "domain", where, false, fs::path(dir).filename().string()));
    K2_ASSIGN_OR_RETURN(std::string file, Str(spec, "tasks", where, false, "tasks.json"));
    const std::string path = (fs::path(dir) / file).string();
    auto tasks = agents::tau2::LoadTasks(path, domain);
    if (!tasks.ok()) return tasks.status().Context(where);
    // Rows of split_<tasks>.json's "test" list are split "test", the rest "train" (no split file: all train).
    std::set<std::string> test;
    auto splits = agents::tau2::LoadSplits(path);
    if (splits.ok() && splits->count("test")) test.insert((*splits)["test"].begin(), (*splits)["test"].end());
    eval::RegisterTau2Reward();
    std::set<std::string> ids;
    for (auto& tt : *tasks) {
      Task t;
      t.source = info.name;
      t.id = info.name + "/" + tt.id;
      t.task_type = "tool";
      t.env_kind = "tau2";
      t.env_config = {{"domain", domain}, {"data_dir", dir}};
      t.user = "scripted";
      t.reward = {{"type", "tau2"}};
      t.split = test.count(tt.id) ? "test" : "train";
      t.spec = {{"tau2", {{"domain", domain}, {"data_dir", dir}}}, {"tau2_task", tt.data}};
      K2_RETURN_IF_ERROR(ApplySourceDefaults(spec, t, where));
      t.gold = agents::tau2::GoldAgentTurns(tt);
      t.episode = MakeEpisode(t.id, t.source, tt.data);
      K2_RETURN_IF_ERROR(AddTask(info, std::move(t), ids, path + ": task " + tt.id));
    }
    return Status::Ok();
  }

  Status Tau2(const json& spec, const std::string& base, SourceInfo& info, const std::string& where) {
    if (spec.contains("dir")) return Tau2Native(spec, base, info, where);
    K2_RETURN_IF_ERROR(CheckKeys(spec, {"suite"}, where));
    K2_ASSIGN_OR_RETURN(std::string path, Str(spec, "suite", where, true));
    Expected<eval::Tau2Suite> suite = InvalidArgument("unset");
    if (path.rfind("builtin:", 0) == 0) {
      suite = eval::BuiltinTau2Suite(path.substr(8), opt.pool);
    } else {
      path = Resolve(base, path);
      K2_ASSIGN_OR_RETURN(json sj, ReadJsonFile(path));
      suite = eval::LoadTau2Suite(sj, path, opt.pool);
    }
    if (!suite.ok()) return suite.status().Context(where);
    std::set<std::string> ids;
    for (auto& st : suite->tasks) {
      const std::string w = path + ": task " + st.id;
      auto d = suite->world->Find(st.domain);
      if (!d) {
        K2_RETURN_IF_ERROR(Problem(info, InvalidArgument(w + ": domain " + st.domain + " is not in the suite's world")));
        continue;
      }
      auto tspec = eval::TaskSpec(*d, st);
      if (!tspec.ok()) {
        K2_RETURN_IF_ERROR(Problem(info, tspec.status().Context(w)));
        continue;
      }
      Task t;
      t.source = info.name;
      t.id = info.name + "/" + st.id;
      t.task_type = "tool";
      t.env_kind = "synthetic";
      t.world = suite->world;
      t.user = "scripted";
      t.reward = {{"type", "tool"}, {"on_missing_judge", "skip"}};
      t.spec = *tspec;
      t.split = "test";
      K2_RETURN_IF_ERROR(ApplySourceDefaults(spec, t, where));
      toolgen::synth::Task copy = st;
      copy.id = t.id;
      t.episode = agents::EpisodeTask::FromSynth(std::move(copy));
      K2_RETURN_IF_ERROR(AddTask(info, std::move(t), ids, w));
    }
    return Status::Ok();
  }

  Status Mcp(const json& spec, const std::string& base, SourceInfo& info, const std::string& where) {
    K2_RETURN_IF_ERROR(CheckKeys(spec, {"path", "server"}, where));
    K2_ASSIGN_OR_RETURN(std::string path, Str(spec, "path", where, true));
    path = Resolve(base, path);
    if (!spec.contains("server") || !spec["server"].is_object())
      return InvalidArgument(where + ": server: expected an mcp env config object ({\"command\": [...]} or {\"url\"})");
    json server = spec["server"];
    // A relative script path in the server's argv resolves like the spec's other paths.
    if (server.contains("cwd") && server["cwd"].is_string()) server["cwd"] = Resolve(base, server["cwd"]);
    json src = spec;
    src["env"] = {{"kind", "mcp"}, {"config", server}};
    src.erase("server");
    src["task_type"] = "mcp";
    return Rows(path, src, info, where);
  }

  Status Any(const json& spec, const std::string& base, double weight, const std::string& where, int depth) {
    if (depth > 8) return InvalidArgument(where + ": mixtures nested deeper than 8");
    if (!spec.is_object()) return InvalidArgument(where + ": expected a source spec object, got " + JsonTypeName(spec));
    K2_ASSIGN_OR_RETURN(std::string kind, Str(spec, "kind", where, true));
    if (kind == "mixture") {
      K2_RETURN_IF_ERROR(CheckKeys(spec, {"sources"}, where));
      if (!spec.contains("sources") || !spec["sources"].is_array() || spec["sources"].empty())
        return InvalidArgument(where + ": sources: expected a non-empty array of {\"weight\", \"source\"}");
      for (size_t i = 0; i < spec["sources"].size(); ++i) {
        const json& e = spec["sources"][i];
        const std::string w = where + ".sources[" + std::to_string(i) + "]";
        if (!e.is_object() || !e.contains("source")) return InvalidArgument(w + ": expected {\"weight\", \"source\"}");
        double wt = 1;
        if (e.contains("weight")) {
          if (!e["weight"].is_number() || e["weight"].get<double>() <= 0)
            return InvalidArgument(w + ".weight: expected a positive number");
          wt = e["weight"];
        }
        const json& inner = e["source"];
        if (inner.is_string()) {
          K2_ASSIGN_OR_RETURN(Loaded loaded, SpecFromString(inner, base, w));
          K2_RETURN_IF_ERROR(Any(loaded.spec, loaded.dir, weight * wt, w, depth + 1));
        } else {
          K2_RETURN_IF_ERROR(Any(inner, base, weight * wt, w, depth + 1));
        }
      }
      return Status::Ok();
    }
    SourceInfo info;
    info.kind = kind;
    info.weight = weight;
    if (spec.contains("weight")) {
      if (!spec["weight"].is_number() || spec["weight"].get<double>() <= 0)
        return InvalidArgument(where + ".weight: expected a positive number");
      info.weight *= spec["weight"].get<double>();
    }
    K2_ASSIGN_OR_RETURN(info.name, Str(spec, "name", where, false, ""));
    if (info.name.empty()) {
      std::string p = kind == "tau2" && spec.contains("dir") && spec["dir"].is_string()
                          ? spec["dir"].get<std::string>()
                          : spec.value("path", spec.value("tasks", spec.value("suite", std::string(kind))));
      info.name = fs::path(p).stem().string();
      if (info.name.empty()) info.name = kind;
    }
    for (auto& s : set.sources)
      if (s.name == info.name) return InvalidArgument(where + ": name: two sources are named " + json(info.name).dump() + " (give each a \"name\")");
    const size_t first = set.tasks.size();
    Status s = kind == "jsonl" ? Jsonl(spec, base, info, where)
               : kind == "synthetic" ? Synthetic(spec, base, info, where)
               : kind == "tau2" ? Tau2(spec, base, info, where)
               : kind == "mcp" ? Mcp(spec, base, info, where)
               : InvalidArgument(where + ": kind: expected jsonl, synthetic, tau2, mcp or mixture, got " + json(kind).dump());
    K2_RETURN_IF_ERROR(s);
    if (set.tasks.size() == first && !opt.strict)
      set.problems.push_back(where + ": source " + info.name + " has no usable task");
    set.sources.push_back(info);
    return Status::Ok();
  }

  // A spec given as a string inside a mixture: a file path or KIND:PATH.
  struct Loaded {
    json spec;
    std::string dir;
  };
  Expected<Loaded> SpecFromString(const json& s, const std::string& base, const std::string& where);
};

}  // namespace

Expected<Task> TaskFromRow(const json& row, const json& src, const std::string& source_name, const std::string& where) {
  if (!row.is_object()) return InvalidArgument(where + ": expected a JSON object, got " + JsonTypeName(row));
  Task t;
  t.source = source_name;
  K2_RETURN_IF_ERROR(ApplySourceDefaults(src, t, where));
  std::string id;
  if (row.contains("id")) {
    if (row["id"].is_string()) id = row["id"];
    else if (row["id"].is_number_integer()) id = std::to_string(row["id"].get<int64_t>());
    else return InvalidArgument(where + ": id: expected a string or an integer");
  } else {
    return InvalidArgument(where + ": id: missing (expected a string)");
  }
  t.id = source_name + "/" + id;
  std::string type = src.value("task_type", std::string("auto"));
  if (row.contains("task_type")) {
    K2_ASSIGN_OR_RETURN(type, Str(row, "task_type", where, true));
  }
  if (type == "auto") type = AutoType(row);
  if (type.empty())
    return InvalidArgument(where + ": task_type: cannot tell the task type (expected reference/answer (math), "
                           "io_cases/test_code (code) or constraints (if), or a task_type)");
  t.task_type = type;
  json env_task = json::object();
  if (row.contains("system")) env_task["system"] = row["system"];
  if (row.contains("messages")) env_task["messages"] = row["messages"];
  if (row.contains("prompt")) {
    if (!row["prompt"].is_string()) return InvalidArgument(where + ": prompt: expected a string");
    env_task["prompt"] = row["prompt"];
  }
  if (!row.contains("prompt") && !row.contains("messages"))
    return InvalidArgument(where + ": prompt: missing (expected a string, or messages)");
  if (row.contains("messages")) {
    auto ms = MessagesFromJson(row["messages"], where + ": messages");
    if (!ms.ok()) return ms.status();
  }
  if (row.contains("env_task")) {
    // Environment-specific task keys (a plugin kind's own, e.g. the ledger's target and start).
    if (!row["env_task"].is_object()) return InvalidArgument(where + ": env_task: expected an object");
    for (auto& [k, v] : row["env_task"].items()) env_task[k] = v;
  }
  if (row.contains("initial_calls")) {
    if (!row["initial_calls"].is_array()) return InvalidArgument(where + ": initial_calls: expected an array of {name, arguments}");
    env_task["initial_calls"] = row["initial_calls"];
  }
  json spec = json::object();
  for (auto& [k, v] : row.items())
    if (!kRowKeys.count(k)) spec[k] = v;
  if (type == "math") {
    if (spec.contains("answer") && !spec.contains("reference")) spec["reference"] = spec["answer"];
    spec.erase("answer");
    if (!spec.contains("reference") || !(spec["reference"].is_string() || spec["reference"].is_number()))
      return InvalidArgument(where + ": reference: expected the reference answer (a string or a number)");
  } else if (type == "code") {
    if (!spec.contains("io_cases") && !spec.contains("test_code"))
      return InvalidArgument(where + ": io_cases: a code task needs io_cases or test_code");
    if (spec.contains("io_cases") && !spec["io_cases"].is_array())
      return InvalidArgument(where + ": io_cases: expected an array of {input, output}");
    if (spec.contains("test_code") && !spec["test_code"].is_string())
      return InvalidArgument(where + ": test_code: expected a string");
  } else if (type == "if") {
    if (!spec.contains("constraints") || !spec["constraints"].is_array() || spec["constraints"].empty())
      return InvalidArgument(where + ": constraints: expected a non-empty array of constraints");
  } else if (type == "mcp") {
    if (!spec.contains("expected_state") && !spec.contains("env_assertions") && !spec.contains("rubric") &&
        !row.contains("reward") && !src.contains("reward"))
      return InvalidArgument(where + ": expected_state: an mcp task needs expected_state, env_assertions, a rubric or a reward");
    if (spec.contains("rubric")) {
      // A rubric instead of a final state: checks of the judge reward — what an assistant message must
      // state (communicate), calls it must never make (forbidden_actions), and a text for the LLM grade
      // (text: the LLM grade, which needs a judge model, --judge).
      const json& r = spec["rubric"];
      if (!r.is_object()) return InvalidArgument(where + ": rubric: expected an object {communicate?, forbidden_actions?, text?}");
      for (auto& [k, v] : r.items())
        if (k != "communicate" && k != "forbidden_actions" && k != "text")
          return InvalidArgument(where + ": rubric." + k + ": unknown key (expected communicate, forbidden_actions, text)");
      json crit = spec.value("evaluation_criteria", json::object());
      if (r.contains("communicate")) {
        if (!r["communicate"].is_array()) return InvalidArgument(where + ": rubric.communicate: expected an array of strings");
        for (const auto& c : r["communicate"])
          if (!c.is_string()) return InvalidArgument(where + ": rubric.communicate: expected an array of strings");
        crit["communicate_info"] = r["communicate"];
      }
      spec["evaluation_criteria"] = crit;
      if (r.contains("forbidden_actions")) {
        if (!r["forbidden_actions"].is_array()) return InvalidArgument(where + ": rubric.forbidden_actions: expected an array");
        for (const auto& f : r["forbidden_actions"])
          if (!f.is_object() || !f.contains("name") || !f["name"].is_string())
            return InvalidArgument(where + ": rubric.forbidden_actions: expected objects {\"name\", \"arguments\"?, \"compare_args\"?}");
        spec["forbidden_actions"] = r["forbidden_actions"];
      }
      if (r.contains("text")) {
        if (!r["text"].is_string()) return InvalidArgument(where + ": rubric.text: expected a string");
        spec["judge_rubric"] = r["text"];
      }
      if (!r.contains("communicate") && !r.contains("forbidden_actions") && !r.contains("text"))
        return InvalidArgument(where + ": rubric: expected at least one of communicate, forbidden_actions, text");
    }
    json crit = spec.value("evaluation_criteria", json::object());
    if (!crit.contains("reward_basis")) {
      json basis = json::array();
      if (spec.contains("expected_state")) basis.push_back("DB");
      if (spec.contains("env_assertions")) {
        basis.push_back("ENV_ASSERTION");
        crit["env_assertions"] = spec["env_assertions"];
      }
      crit["reward_basis"] = basis;
    }
    spec["evaluation_criteria"] = crit;
  }
  t.spec = spec;
  if (t.env_kind.empty()) t.env_kind = type == "code" ? "code_interpreter" : "answer";
  if (row.contains("env")) K2_RETURN_IF_ERROR(ReadEnv(row["env"], t, where));
  if (t.reward.is_null()) {
    if (type == "math") t.reward = {{"type", "math"}};
    else if (type == "code") t.reward = {{"type", "code"}};
    else if (type == "if") t.reward = {{"type", "if"}};
    else if (type == "mcp" && spec.contains("rubric") && !spec.contains("expected_state") && !spec.contains("env_assertions"))
      t.reward = {{"type", "judge"}, {"check_state", false}, {"grade", spec["rubric"].contains("text")}};
    else if (type == "mcp") t.reward = {{"type", "tool"}};
  }
  if (row.contains("reward")) {
    if (!row["reward"].is_object()) return InvalidArgument(where + ": reward: expected a reward config object");
    t.reward = row["reward"];
  }
  if (t.reward.is_null())
    return InvalidArgument(where + ": reward: task type " + json(type).dump() + " has no default reward; give one");
  if (row.contains("split")) {
    K2_ASSIGN_OR_RETURN(t.split, Str(row, "split", where, true));
  }
  if (row.contains("limits")) {
    if (!row["limits"].is_object()) return InvalidArgument(where + ": limits: expected an object");
    t.limits.merge_patch(row["limits"]);
  }
  if (row.contains("gold")) {
    K2_ASSIGN_OR_RETURN(t.gold, GoldTurns(row["gold"], where));
  }
  t.episode = MakeEpisode(t.id, t.source, std::move(env_task));
  return t;
}

Expected<Reader::Loaded> Reader::SpecFromString(const json& s, const std::string& base, const std::string& where) {
  std::string text = s.get<std::string>();
  Loaded out;
  const size_t colon = text.find(':');
  static const std::set<std::string> kShort = {"jsonl", "math", "code", "if", "synthetic", "tau2", "mcp"};
  if (colon != std::string::npos && kShort.count(text.substr(0, colon))) {
    std::string kind = text.substr(0, colon), path = Resolve(base, text.substr(colon + 1));
    out.dir = "";
    if (kind == "synthetic") out.spec = {{"kind", "synthetic"}, {"tasks", path}};
    else if (kind == "tau2" && fs::is_directory(path)) out.spec = {{"kind", "tau2"}, {"dir", path}};
    else if (kind == "tau2") out.spec = {{"kind", "tau2"}, {"suite", text.substr(colon + 1).rfind("builtin:", 0) == 0 ? text.substr(colon + 1) : path}};
    else if (kind == "mcp") {
      K2_ASSIGN_OR_RETURN(out.spec, ReadJsonFile(path));
      out.dir = fs::path(path).parent_path().string();
      if (!out.spec.contains("kind")) out.spec["kind"] = "mcp";
    } else {
      out.spec = {{"kind", "jsonl"}, {"path", path}, {"task_type", kind == "jsonl" ? "auto" : kind}};
    }
    return out;
  }
  std::string path = Resolve(base, text);
  auto j = ReadJsonFile(path);
  if (!j.ok()) return j.status().Context(where + ": source " + json(text).dump() + " (a spec file or KIND:PATH)");
  out.spec = *j;
  out.dir = fs::path(path).parent_path().string();
  return out;
}

Expected<TaskSet> LoadTaskSourceJson(const json& spec, const std::string& base_dir, const LoadOptions& options) {
  TaskSet set;
  Reader r{options, set};
  K2_RETURN_IF_ERROR(r.Any(spec, base_dir, 1.0, "source", 0));
  if (set.tasks.empty())
    return InvalidArgument("task source: no usable task" +
                           (set.problems.empty() ? std::string() : " (first problem: " + set.problems.front() + ")"));
  return set;
}

Expected<TaskSet> LoadTaskSource(const std::string& spec, const LoadOptions& options) {
  TaskSet set;
  Reader r{options, set};
  K2_ASSIGN_OR_RETURN(Reader::Loaded l, r.SpecFromString(json(spec), "", "--source"));
  return LoadTaskSourceJson(l.spec, l.dir, options);
}

std::vector<size_t> SampleMixture(const TaskSet& set, int64_t n, uint64_t seed, const std::string& split) {
  std::map<std::string, std::vector<size_t>> by_source;
  for (size_t i = 0; i < set.tasks.size(); ++i)
    if (split.empty() || set.tasks[i].split == split) by_source[set.tasks[i].source].push_back(i);
  std::vector<const SourceInfo*> live;
  double total = 0;
  for (auto& s : set.sources)
    if (by_source.count(s.name)) {
      live.push_back(&s);
      total += s.weight;
    }
  std::vector<size_t> out;
  if (live.empty() || n <= 0) return out;
  Rng rng(seed ^ 0x6d697874757265ULL);
  for (int64_t k = 0; k < n; ++k) {
    double u = rng.Uniform() * total;
    const SourceInfo* pick = live.back();
    for (auto* s : live) {
      if (u < s->weight) {
        pick = s;
        break;
      }
      u -= s->weight;
    }
    const auto& v = by_source[pick->name];
    out.push_back(v[rng.Below(v.size())]);
  }
  return out;
}

}  // namespace k2::pipeline
