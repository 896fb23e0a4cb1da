// Shared command-line plumbing of the episode pipeline (apps/pipeline_cli.h).
#include "apps/pipeline_cli.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <map>

#include "core/thread_pool.h"
#include "pipeline/endpoints.h"
#include "pipeline/plugin.h"
#include "rewards/policy_bridge.h"

namespace k2::app {

void AddSourceFlags(CLI::App* c, PipelineFlags* f) {
  c->add_option("--source", f->sources,
                "task source: a source spec JSON file, or KIND:PATH (math:, code:, if:, jsonl:, synthetic:, "
                "tau2:, mcp:); repeat for an equal-weight mixture (docs/byo.md)")
      ->option_text("SPEC");
  c->add_flag("--strict", f->strict, "a malformed task row stops the run (default: reported and skipped)");
  AddPluginFlag(c, &f->plugins);
}

void AddPluginFlag(CLI::App* c, std::vector<std::string>* plugins) {
  c->add_option("--plugin", *plugins, "shared library registering environment kinds / reward types (repeatable)")
      ->option_text("LIB.so");
}

Status LoadPlugins(const std::vector<std::string>& plugins) {
  for (const auto& p : plugins) K2_RETURN_IF_ERROR(pipeline::LoadPlugin(p));
  return Status::Ok();
}

Expected<std::shared_ptr<const pipeline::TaskSet>> LoadSources(const Context& ctx, const PipelineFlags& f) {
  K2_RETURN_IF_ERROR(LoadPlugins(f.plugins));
  if (f.sources.empty()) return InvalidArgument("--source: at least one task source is required");
  ThreadPool pool(2);
  pipeline::LoadOptions o;
  o.strict = f.strict;
  o.db = ctx.g.db_path;
  o.pool = &pool;
  Expected<pipeline::TaskSet> set = InvalidArgument("unset");
  if (f.sources.size() == 1) {
    set = pipeline::LoadTaskSource(f.sources[0], o);
  } else {
    json mix = {{"kind", "mixture"}, {"sources", json::array()}};
    for (const auto& s : f.sources) mix["sources"].push_back({{"weight", 1.0}, {"source", s}});
    set = pipeline::LoadTaskSourceJson(mix, "", o);
  }
  if (!set.ok()) return set.status();
  if (!ctx.g.quiet && set->skipped > 0) {
    for (size_t i = 0; i < set->problems.size() && i < 20; ++i) std::fprintf(stderr, "skipped: %s\n", set->problems[i].c_str());
    std::fprintf(stderr, "%lld malformed task row(s) skipped (--strict stops at the first)\n",
                 static_cast<long long>(set->skipped));
  }
  return std::shared_ptr<const pipeline::TaskSet>(std::make_shared<pipeline::TaskSet>(std::move(*set)));
}

std::vector<size_t> SplitIndices(const pipeline::TaskSet& set, const std::string& split) {
  std::vector<size_t> out;
  for (size_t i = 0; i < set.tasks.size(); ++i)
    if (split.empty() || set.tasks[i].split == split) out.push_back(i);
  return out;
}

Expected<std::unique_ptr<PipelineActors>> MakeActors(const Context& ctx, const std::string& user_spec,
                                                     const std::string& judge_spec,
                                                     const agents::ScriptedUserConfig& scripted) {
  auto a = std::make_unique<PipelineActors>();
  a->scripted = std::make_unique<agents::ScriptedUser>(scripted);
  if (user_spec.rfind("openai:", 0) == 0) {
    K2_ASSIGN_OR_RETURN(auto hc, pipeline::EndpointFor(ctx.config, "user", user_spec.substr(7)));
    K2_ASSIGN_OR_RETURN(auto h, agents::HttpPolicy::Create(hc));
    a->user_llm = std::move(h);
    a->llm_user = std::make_unique<agents::LlmUser>(a->user_llm.get(), user_spec);
  } else if (user_spec != "scripted" && !user_spec.empty()) {
    return InvalidArgument("--user: expected scripted|openai:URL, got " + json(user_spec).dump());
  }
  if (!judge_spec.empty()) {
    if (judge_spec.rfind("openai:", 0) != 0) return InvalidArgument("--judge: expected openai:URL, got " + json(judge_spec).dump());
    K2_ASSIGN_OR_RETURN(auto hc, pipeline::EndpointFor(ctx.config, "judge", judge_spec.substr(7)));
    K2_ASSIGN_OR_RETURN(auto h, agents::HttpPolicy::Create(hc));
    a->judge_llm = std::move(h);
    a->judge = rewards::PolicyChat(*a->judge_llm);
  }
  return a;
}

pipeline::PipelineOptions ActorOptions(const PipelineActors& a) {
  pipeline::PipelineOptions o;
  o.scripted_user = a.scripted.get();
  o.llm_user = a.llm_user.get();
  o.judge = a.judge;
  return o;
}

json PerSourceStats(const std::vector<agents::Trajectory>& trajs) {
  struct Acc {
    int64_t n = 0, errors = 0;
    double reward = 0, success = 0, turns = 0;
  };
  std::map<std::string, Acc> by;
  for (const auto& t : trajs) {
    auto& a = by[t.provenance.value("source", std::string("?"))];
    ++a.n;
    a.reward += t.reward;
    auto s = t.reward_components.find("task_success");
    a.success += s != t.reward_components.end() && s->second >= 1 ? 1 : 0;
    a.turns += t.turns;
    a.errors += t.reward_components.count("score_error") ? 1 : 0;
  }
  json out = json::object();
  for (auto& [k, a] : by)
    out[k] = {{"episodes", a.n}, {"reward_mean", a.reward / a.n}, {"success_rate", a.success / a.n},
              {"turns_mean", a.turns / a.n}, {"score_errors", a.errors}};
  return out;
}

Status EpisodeErrors(const std::string& cmd, const std::vector<std::pair<std::string, std::string>>& ends) {
  std::map<std::string, int64_t> by;
  const std::pair<std::string, std::string>* first = nullptr;
  int64_t failed = 0;
  for (const auto& e : ends) {
    if (e.first != "policy_error" && e.first != "user_error" && e.first != "env_error") continue;
    // A served model refusing a dialog longer than its context answered: a scored 0 that the eval table
    // names (eval/results.h), not an endpoint failure.
    if (e.second.find("context_length_exceeded") != std::string::npos) continue;
    ++failed;
    ++by[e.first];
    if (!first) first = &e;
  }
  if (ends.empty() || failed * 2 <= static_cast<int64_t>(ends.size())) return Status();
  std::string reasons;
  for (const auto& [k, v] : by) reasons += (reasons.empty() ? "" : ", ") + k + " " + std::to_string(v);
  std::string why = first->second.empty() ? "(no error text)" : first->second;
  if (why.size() > 600) why = why.substr(0, 600) + "...";
  return Unavailable(cmd + ": " + std::to_string(failed) + " of " + std::to_string(ends.size()) +
                     " episodes ended in an error (" + reasons + "); the first: " + why);
}

Status CheckOutputPath(const std::string& flag, const std::string& path) {
  if (path.empty()) return Status();
  namespace fs = std::filesystem;
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  if (fs::is_directory(path, ec)) return InvalidArgument(flag + " " + path + ": is a directory, expected a file path");
  if (!fs::is_directory(dir, ec))
    return InvalidArgument(flag + " " + path + ": directory " + dir.string() + " does not exist");
  if (::access(dir.c_str(), W_OK) != 0)
    return InvalidArgument(flag + " " + path + ": directory " + dir.string() + " is not writable");
  return Status();
}

}  // namespace k2::app
