// Small real inputs for the RL loop tests: a synthetic domain cut to the one or two tools its tasks'
// gold plans use, its tasks, and a BPE tokenizer trained (with Kimi-K2's special block) on oracle
// trajectories of those tasks, so prompts are a few hundred tokens and a loop iteration takes seconds.
#pragma once

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "agents/episode.h"
#include "agents/scripted_policies.h"
#include "agents/scripted_user.h"
#include "agents/synthetic_env.h"
#include "core/check.h"
#include "engine/engine.h"
#include "engine/text/bpe_train.h"
#include "engine/text/chat_template.h"
#include "tests/tiny_model.h"
#include "toolgen/synth/tasks.h"

namespace k2::rl::fixture {

struct SmallWorld {
  std::shared_ptr<const agents::SyntheticWorld> world;
  std::vector<std::shared_ptr<const agents::EpisodeTask>> tasks;
  std::vector<toolgen::synth::Task> synth;  // the same tasks as synthetic tasks
  std::vector<std::string> tools;           // the domain's remaining tool names
};

// The first domain of a seeded catalog, its ops cut to those the gold plans of a few tasks call (1-2
// tools), and the tasks whose whole gold plan uses only them.
inline SmallWorld MakeSmallWorld(uint64_t seed = 3) {
  auto full = agents::SyntheticWorld::Generate(seed, 8, nullptr);
  toolgen::synth::Domain d = *full->domains().front();
  std::vector<toolgen::synth::Task> all = toolgen::synth::GenerateTasks({d}, seed, 24, nullptr);
  // Tasks ordered by how many distinct tools their plan calls; keep tools of the simplest ones.
  auto tools_of = [](const toolgen::synth::Task& t) {
    std::set<std::string> s;
    for (const auto& a : t.actions) s.insert(a.name);
    return s;
  };
  std::stable_sort(all.begin(), all.end(),
                   [&](const auto& a, const auto& b) { return tools_of(a).size() < tools_of(b).size(); });
  std::set<std::string> keep;
  for (const auto& t : all) {
    auto s = tools_of(t);
    if (s.empty()) continue;
    std::set<std::string> u = keep;
    u.insert(s.begin(), s.end());
    if (u.size() <= 2) keep = u;
  }
  K2_CHECK(!keep.empty()) << "no task with a tool call in " << d.path;
  std::vector<toolgen::synth::Op> ops;
  for (const auto& op : d.ops)
    if (keep.count(op.name)) ops.push_back(op);
  d.ops = ops;
  SmallWorld w;
  w.world = std::make_shared<agents::SyntheticWorld>(
      std::vector<std::shared_ptr<const toolgen::synth::Domain>>{std::make_shared<toolgen::synth::Domain>(d)});
  for (const auto& t : all) {
    auto s = tools_of(t);
    if (s.empty() || !std::includes(keep.begin(), keep.end(), s.begin(), s.end())) continue;
    w.synth.push_back(t);
    w.tasks.push_back(agents::EpisodeTask::FromSynth(t));
  }
  w.tools.assign(keep.begin(), keep.end());
  return w;
}

// Oracle trajectories of the world's tasks (scripted user).
inline std::vector<agents::Trajectory> OracleTrajectories(const SmallWorld& w, int trials = 2) {
  agents::OracleTaskPolicy oracle;
  agents::ScriptedUser user;
  std::vector<agents::EpisodeJob> jobs;
  for (const auto& t : w.tasks)
    for (int k = 0; k < trials; ++k) jobs.push_back({t, k});
  agents::RunOptions ro;
  ro.threads = 1;
  ro.seed = 5;
  auto world = w.world;
  agents::EnvMaker make = [world]() -> Expected<std::unique_ptr<agents::Env>> {
    return std::unique_ptr<agents::Env>(std::make_unique<agents::SyntheticEnv>(world, agents::SyntheticEnvConfig{}));
  };
  return agents::RunEpisodes(jobs, make, oracle, &user, ro);
}

// The trajectories rendered with the chat template: the tokenizer's training text covers the system
// prompt, the tool declarations and both sides' turns.
inline std::string ChatCorpus(const std::vector<agents::Trajectory>& trajs) {
  std::string corpus;
  for (const auto& t : trajs) {
    auto r = text::RenderChat(t.messages, t.tools, nullptr);
    K2_CHECK(r.ok()) << r.status().ToString();
    corpus += r->text + "\n";
  }
  return corpus;
}

inline text::Tokenizer TrainTokenizer(const std::string& corpus, int vocab_size = 1024) {
  text::BpeTrainOptions o;
  o.vocab_size = vocab_size;
  o.threads = 1;
  auto t = text::TrainBpe(corpus, o);
  K2_CHECK(t.ok()) << t.status().ToString();
  return std::move(t).value();
}

inline engine::ModelConfig TinyModel(int64_t vocab_size) { return test::TinyModelConfig(vocab_size); }

}  // namespace k2::rl::fixture
