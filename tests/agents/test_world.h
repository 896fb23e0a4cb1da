// A small synthetic world and task set shared by the agents tests (built once per test binary).
// Seeds are fixed so every test sees the same tasks.
#pragma once

#include "agents/episode.h"
#include "agents/synthetic_env.h"
#include "toolgen/synth/tasks.h"

namespace k2::agents::testing {

struct World {
  std::shared_ptr<const SyntheticWorld> world;
  std::vector<std::shared_ptr<const EpisodeTask>> tasks;
};

inline const World& TestWorld() {
  static const World* w = [] {
    auto* out = new World;
    out->world = SyntheticWorld::Generate(/*seed=*/11, /*min_tools=*/150, nullptr);
    std::vector<toolgen::synth::Domain> domains;
    for (const auto& d : out->world->domains()) domains.push_back(*d);
    for (auto& t : toolgen::synth::GenerateTasks(domains, /*seed=*/5, /*count=*/60, nullptr))
      out->tasks.push_back(EpisodeTask::FromSynth(std::move(t)));
    return out;
  }();
  return *w;
}

inline EnvMaker Maker(SyntheticEnvConfig cfg = {}) {
  return [cfg]() -> Expected<std::unique_ptr<Env>> {
    return std::unique_ptr<Env>(std::make_unique<SyntheticEnv>(TestWorld().world, cfg));
  };
}

inline std::vector<EpisodeJob> Jobs(int trials = 1) {
  std::vector<EpisodeJob> jobs;
  for (const auto& t : TestWorld().tasks)
    for (int k = 0; k < trials; ++k) jobs.push_back({t, k});
  return jobs;
}

}  // namespace k2::agents::testing
