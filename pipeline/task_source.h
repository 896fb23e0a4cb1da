// Task sources: one reader that turns the synthetic catalog, τ²-format suites, JSONL of single-turn
// verifiable prompts (math, code, instruction following), MCP-server tasks and weighted mixtures of
// them into Tasks — each naming its environment (kind + config), user, reward (a rewards-registry
// composition), limits and split — the input of the one episode pipeline (pipeline/runner.h).
//
// Malformed rows are data problems, not crashes: each is reported as "file:line: field: what was
// expected" and skipped (TaskSet::skipped counts them), or stops the load under LoadOptions::strict.
// Loaders are pure apart from reading files (and, for τ² suites, building their world); thread-compatible.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agents/episode.h"
#include "agents/synthetic_env.h"
#include "core/json.h"
#include "core/message.h"
#include "core/status.h"

namespace k2 {
class ThreadPool;
}

namespace k2::pipeline {

struct Task {
  std::string id;              // unique within a TaskSet: "<source>/<row id>"
  std::string source;          // the source's name (per-source metrics and reports)
  std::string split = "train"; // "train" | "test" | any label a row gives
  std::string task_type;       // math | code | if | tool | mcp | plugin kinds ... (budgets, metrics)
  std::string env_kind;        // agents::EnvRegistry kind ("answer", "code_interpreter", "mcp", ...)
  json env_config = json::object();
  std::string user = "none";   // none (the prompt is in the task) | scripted (synthetic scenario) | llm
  json reward;                 // rewards::MakeReward config
  json spec = json::object();  // the evaluation spec the reward reads (ScoreInput::task)
  json limits = json::object();  // EpisodeLimits keys overriding the run's ("max_turns", ...)
  std::vector<Message> gold;   // reference assistant turns (the `gold` policy); empty when none
  std::shared_ptr<const agents::EpisodeTask> episode;  // id, domain, env_task (+ synth scenario)
  // Synthetic/τ² tasks whose world is built in process (a suite file's catalog): the environment is a
  // SyntheticEnv over it, not a registry kind.
  std::shared_ptr<const agents::SyntheticWorld> world;
};

struct SourceInfo {
  std::string name;
  std::string kind;
  double weight = 1;
  int64_t tasks = 0, skipped = 0;
  json ToJson() const;
};

struct TaskSet {
  std::vector<Task> tasks;
  std::vector<SourceInfo> sources;    // in spec order; tasks[i].source names one of them
  std::vector<std::string> problems;  // "file:line: field: expected ..." per skipped row
  int64_t skipped = 0;
  json Summary() const;               // {"sources": [...], "skipped", "problems" (first 20)}
};

struct LoadOptions {
  bool strict = false;           // a malformed row stops the load instead of being skipped
  std::string db;                // the store: default catalog of synthetic sources
  bool include_heldout = false;  // synthetic sources: keep tasks on held-out domains
  ThreadPool* pool = nullptr;    // building worlds of τ² suites
};

// A source spec: a JSON object, a path to a JSON file holding one, or "KIND:PATH" shorthand
// (jsonl:FILE, math:FILE, code:FILE, if:FILE, synthetic:FILE, tau2:SUITE, mcp:FILE.json — the last
// names a JSON spec with the server). Kinds (docs/byo.md):
//   {"kind": "jsonl", "path", "task_type"?: "auto"|"math"|"code"|"if", "env"?: {"kind", "config"},
//    "reward"?: {...}, "name"?, "weight"?, "split"?}
//   {"kind": "synthetic", "tasks": "tasks.json" (τ² array from `toolgen tasks`), "db"?: STORE, ...}
//   {"kind": "tau2", "suite": "suite.json"}            (eval/tau2_suite's suite files)
//   {"kind": "tau2", "dir": DIR, "tasks"?: "tasks.json", "domain"?: DIR's name}  (τ²-bench's own domain
//    folder, run natively: env kind tau2, the τ² scripted user, reward tau2; tau2:DIR when DIR is a folder)
//   {"kind": "mcp", "path": "tasks.jsonl", "server": {mcp env config}, ...}
//   {"kind": "mixture", "sources": [{"weight": w, "source": SPEC}, ...]}
// Relative paths resolve against the spec file's folder (the working directory for inline specs).
Expected<TaskSet> LoadTaskSource(const std::string& spec, const LoadOptions& options);
Expected<TaskSet> LoadTaskSourceJson(const json& spec, const std::string& base_dir, const LoadOptions& options);

// One JSONL row -> Task (exposed for tests and plugins). `where` is "file:line".
Expected<Task> TaskFromRow(const json& row, const json& source_spec, const std::string& source_name,
                           const std::string& where);

// Draws `n` task indices: a source with probability weight / sum of weights, then a task of it
// uniformly; deterministic in `seed`. Only tasks whose split is `split` ("" = any).
std::vector<size_t> SampleMixture(const TaskSet& set, int64_t n, uint64_t seed, const std::string& split = "");

}  // namespace k2::pipeline
