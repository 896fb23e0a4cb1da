// Episodes/s of RunEpisodes with the oracle policy and the scripted user on 5-turn synthetic episodes
// (ask, 3 gold tool calls, final answer), against the reference: replaying the same gold plans alone.
// Prints machine, threads and sizes. Usage: bench_agents_episodes [episodes] [threads]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "agents/episode.h"
#include "rewards/judge.h"
#include "agents/scripted_policies.h"
#include "agents/scripted_user.h"
#include "agents/synthetic_env.h"
#include "core/thread_pool.h"
#include "toolgen/synth/tasks.h"

using namespace k2;
using namespace k2::agents;

namespace {

std::string Cpu() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown cpu";
}

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int64_t episodes = argc > 1 ? std::atoll(argv[1]) : 20000;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  ThreadPool build(threads);
  auto world = SyntheticWorld::Generate(7, 2000, &build);
  std::vector<toolgen::synth::Domain> domains;
  for (const auto& d : world->domains()) domains.push_back(*d);
  std::vector<std::shared_ptr<const EpisodeTask>> tasks;
  for (auto& t : toolgen::synth::GenerateTasks(domains, 3, 3000, &build))
    if (t.actions.size() == 3 && t.forbidden.empty()) tasks.push_back(EpisodeTask::FromSynth(std::move(t)));
  if (tasks.empty()) {
    std::fprintf(stderr, "no 3-action tasks generated\n");
    return 1;
  }
  std::vector<EpisodeJob> jobs;
  for (int64_t i = 0; i < episodes; ++i) jobs.push_back({tasks[i % tasks.size()], static_cast<int>(i / tasks.size())});

  std::printf("machine: %s, %u hardware threads; episode threads: %d\n", Cpu().c_str(), std::thread::hardware_concurrency(),
              threads);
  std::printf("sizes: %lld episodes over %zu distinct tasks (3 gold calls each), %zu domains\n",
              static_cast<long long>(episodes), tasks.size(), domains.size());

  // Reference: the environment work alone — replay each gold plan with the executor (ReplayHash).
  std::map<std::string, const toolgen::synth::Domain*> index;
  for (const auto& d : world->domains()) index[d->path] = d.get();
  ThreadPool pool(threads);
  auto t0 = std::chrono::steady_clock::now();
  std::atomic<int64_t> replay_ok{0};
  pool.ParallelFor(episodes, [&](int64_t i) {
    const auto& t = *jobs[i].task->synth;
    auto h = toolgen::synth::ReplayHash(*index.at(t.domain), t);
    replay_ok += h.ok() && *h == t.expected_hash;
  });
  const double replay_s = Since(t0);

  OracleTaskPolicy oracle({.clarify_rate = 0, .error_rate = 0, .distractor_rate = 0});
  ScriptedUser user;
  rewards::Judge judge;
  std::atomic<int64_t> kept{0}, turns{0};
  RunOptions opt{.threads = threads, .seed = 1};
  opt.on_done = [&](Trajectory& t) {
    turns += t.turns;
  };
  auto make_env = [&]() -> Expected<std::unique_ptr<Env>> { return std::unique_ptr<Env>(std::make_unique<SyntheticEnv>(world, SyntheticEnvConfig{})); };
  t0 = std::chrono::steady_clock::now();
  auto trajs = RunEpisodes(jobs, make_env, oracle, &user, opt);
  const double run_s = Since(t0);
  for (size_t i = 0; i < trajs.size(); ++i) kept += judge.Evaluate(trajs[i], *jobs[i].task).keep;

  const double eps = episodes / run_s, ref = episodes / replay_s;
  std::printf("gold-plan replay (reference): %.0f plans/s (%lld/%lld hashes match)\n", ref,
              static_cast<long long>(replay_ok.load()), static_cast<long long>(episodes));
  std::printf("episodes (oracle + scripted user + synthetic env, schema checks): %.0f episodes/s, %.2f assistant "
              "turns/episode, judge kept %lld/%lld\n",
              eps, static_cast<double>(turns.load()) / episodes, static_cast<long long>(kept.load()),
              static_cast<long long>(episodes));
  std::printf("ratio episodes/s : replay/s = %.3f (episode-loop overhead over the bare executor: %.1fx)\n", eps / ref,
              ref > 0 ? ref / eps : 0.0);
  std::printf("goal >= 1000 episodes/s on 2 cores: %s\n", eps >= 1000 ? "met" : "NOT met");
  return 0;
}
