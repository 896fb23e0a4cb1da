// What simulate, eval and rl share to run the one episode pipeline from the command line: the
// --source/--plugin/--strict/--split flags, loading the sources (several --source = an equal-weight
// mixture), users and the judge from their own endpoints, and the problem report of skipped rows.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agents/llm_user.h"
#include "agents/scripted_user.h"
#include "apps/cli.h"
#include "pipeline/runner.h"
#include "pipeline/task_source.h"

namespace k2::app {

struct PipelineFlags {
  std::vector<std::string> sources;  // --source (repeatable)
  std::vector<std::string> plugins;  // --plugin (repeatable)
  bool strict = false;               // --strict
  std::string split;                 // --split ("" = every task)
};

void AddSourceFlags(CLI::App* c, PipelineFlags* f);
void AddPluginFlag(CLI::App* c, std::vector<std::string>* plugins);
Status LoadPlugins(const std::vector<std::string>& plugins);

// Loads every --source (plugins first). Skipped rows are printed to stderr (one line each, at most 20)
// with the count, unless quiet.
Expected<std::shared_ptr<const pipeline::TaskSet>> LoadSources(const Context& ctx, const PipelineFlags& f);
// Indices of the tasks in `split` ("" = all).
std::vector<size_t> SplitIndices(const pipeline::TaskSet& set, const std::string& split);

// The simulated users and the judge of a pipeline run, each from its own endpoint (pipeline/endpoints.h).
struct PipelineActors {
  std::unique_ptr<agents::ScriptedUser> scripted;
  std::unique_ptr<agents::Policy> user_llm, judge_llm;
  std::unique_ptr<agents::LlmUser> llm_user;
  rewards::ChatFn judge;
};
// user_spec: "scripted" | "openai:URL" (LLM user for tasks with user llm; scripted ones still get the
// scripted user); judge_spec: "" | "openai:URL".
Expected<std::unique_ptr<PipelineActors>> MakeActors(const Context& ctx, const std::string& user_spec,
                                                     const std::string& judge_spec,
                                                     const agents::ScriptedUserConfig& scripted);
pipeline::PipelineOptions ActorOptions(const PipelineActors& a);

// Per-source means of reward, success and assistant turns over scored trajectories:
// {source: {"episodes", "reward_mean", "success_rate", "turns_mean", "score_errors"}}.
json PerSourceStats(const std::vector<agents::Trajectory>& trajs);

// Loud failures (docs/guide.md, exit codes). A run most of whose episodes ended in an error of the
// policy, the user, or the environment (an unreachable endpoint, a crashed MCP server) did not measure
// anything: the Status (exit 1) names how many, by reason, and the first error. `ends` holds one
// (end reason, error text) per episode. A context_length_exceeded refusal of a served model is a scored
// 0, not an error.
Status EpisodeErrors(const std::string& cmd, const std::vector<std::pair<std::string, std::string>>& ends);
// An output file is checked before the run: its directory exists and is writable (exit 2 otherwise).
Status CheckOutputPath(const std::string& flag, const std::string& path);

}  // namespace k2::app
