// Gold-replay episodes per second on τ²-bench's retail domain (native tools, τ²'s evaluation: initial
// state, the gold actions as the trajectory, then the DB check against the gold replay), scored two ways
// in the same run — replaying the trajectory on a fresh copy of the database (τ²'s way, the reference)
// and using the episode's own final state (one database copy fewer, no replay) — and against the
// synthetic environment's gold replay (toolgen synth ReplayHash).
// Usage: tau2_bench [DATA_DIR (default ../shared/data/tau2)] [threads (default 2)] [rounds (default 3)]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <thread>

#include "agents/synthetic_env.h"
#include "agents/tau2/env.h"
#include "core/thread_pool.h"
#include "eval/tau2_suite.h"
#include "toolgen/synth/tasks.h"

namespace {

using Clock = std::chrono::steady_clock;
using namespace k2;
namespace t2 = agents::tau2;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

std::string CpuModel() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown cpu";
}

// One retail gold-replay episode: the gold actions run on the task's initial state as the trajectory,
// then scored (replay of that trajectory vs replay of the gold actions, COMMUNICATE, basis product).
double Tau2Episode(const std::shared_ptr<const t2::Domain>& dom, const t2::Task& task, bool live) {
  auto st = t2::InitialState(dom, task, nullptr);
  if (!st.ok()) std::abort();
  json traj = json::array({{{"role", "assistant"}, {"content", t2::kAgentGreeting}}});
  int n = 0;
  for (auto& a : task.evaluation_criteria()["actions"]) {
    std::string id = "g" + std::to_string(n++);
    traj.push_back({{"role", "assistant"}, {"tool_calls", json::array({{{"id", id}, {"name", a["name"]}, {"arguments", a["arguments"]}, {"requestor", "assistant"}}})}});
    auto r = st->Call("assistant", a["name"], a["arguments"]);
    traj.push_back({{"role", "tool"}, {"id", id}, {"content", r.content}, {"requestor", "assistant"}});
  }
  json t = task.data;
  t["evaluation_criteria"]["reward_basis"] = json::array({"DB", "COMMUNICATE"});  // NL needs an LLM: left out
  t2::Task tt = task;
  tt.data = t;
  auto ev = eval::ScoreTau2Episode(dom, tt, traj, "user_stop", nullptr, live ? &*st : nullptr);
  return ev.ok() ? ev->breakdown.value("DB", 0.0) : -1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string data = argc > 1 ? argv[1] : std::string(K2GYM_SOURCE_DIR) + "/../shared/data/tau2";
  int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  int rounds = argc > 3 ? std::atoi(argv[3]) : 3;
  auto dom = t2::LoadDomain("retail", data + "/retail");
  auto tasks = t2::LoadTasks(data + "/retail/tasks.json", "retail");
  if (!dom.ok() || !tasks.ok()) {
    std::fprintf(stderr, "cannot load retail from %s\n", data.c_str());
    return 1;
  }
  // What one episode's database work costs on one thread: a deep copy, an equality test of two copies.
  {
    const int n = 10;
    auto c0 = Clock::now();
    size_t sink = 0;
    for (int i = 0; i < n; ++i) {
      t2::State s(*dom);
      sink += s.db.size();
    }
    double copy_ms = Seconds(c0, Clock::now()) * 1000 / n;
    t2::State a(*dom), b(*dom);
    auto c1 = Clock::now();
    for (int i = 0; i < n; ++i) sink += a.db == b.db;
    double eq_ms = Seconds(c1, Clock::now()) * 1000 / n;
    std::printf("retail database: deep copy %.1f ms, equality of two copies %.1f ms (one thread; %zu)\n", copy_ms, eq_ms, sink);
  }
  ThreadPool pool(threads);
  // τ² retail, scored by replay (the reference) and from the live final state, alternating per round.
  std::atomic<int> db_ok{0}, live_ok{0};
  double tau2_s = 0, live_s = 0;
  for (int r = 0; r < rounds; ++r)
    for (bool live : {false, true}) {
      auto t0 = Clock::now();
      std::vector<std::future<void>> fs;
      for (auto& task : *tasks)
        fs.push_back(pool.Submit([&, live] {
          if (Tau2Episode(*dom, task, live) == 1.0) ++(live ? live_ok : db_ok);
        }));
      for (auto& f : fs) f.get();
      (live ? live_s : tau2_s) += Seconds(t0, Clock::now());
    }
  int64_t tau2_eps = static_cast<int64_t>(tasks->size()) * rounds;

  // Synthetic reference: the gold plan of generated tasks replayed on each task's initial database.
  auto world = agents::SyntheticWorld::Generate(2027, 1500, &pool);
  std::vector<toolgen::synth::Domain> doms;
  for (auto& d : world->domains()) doms.push_back(*d);
  auto stasks = toolgen::synth::GenerateTasks(doms, 7, 114, &pool);
  std::atomic<int> replay_ok{0};
  auto t1 = Clock::now();
  for (int r = 0; r < rounds; ++r) {
    std::vector<std::future<void>> fs;
    for (auto& st : stasks)
      fs.push_back(pool.Submit([&] {
        auto d = world->Find(st.domain);
        if (d && toolgen::synth::ReplayHash(*d, st).ok()) ++replay_ok;
      }));
    for (auto& f : fs) f.get();
  }
  double syn_s = Seconds(t1, Clock::now());
  int64_t syn_eps = static_cast<int64_t>(stasks.size()) * rounds;

  double tau2_rate = static_cast<double>(tau2_eps) / tau2_s, syn_rate = static_cast<double>(syn_eps) / syn_s;
  double live_rate = static_cast<double>(tau2_eps) / live_s;
  std::printf("machine: %s, %u hardware threads; bench threads %d, rounds %d\n", CpuModel().c_str(), std::thread::hardware_concurrency(), threads, rounds);
  std::printf("tau2 retail gold replay: %lld episodes (%zu tasks, DB %d/%lld = 1.0) in %.2f s: %.1f episodes/s\n", static_cast<long long>(tau2_eps),
              tasks->size(), db_ok.load(), static_cast<long long>(tau2_eps), tau2_s, tau2_rate);
  std::printf("synthetic gold replay (reference): %lld episodes (%zu tasks over %zu domains, %d replayed) in %.2f s: %.1f episodes/s\n",
              static_cast<long long>(syn_eps), stasks.size(), doms.size(), replay_ok.load(), syn_s, syn_rate);
  std::printf("tau2 retail gold, scored from the live final state: DB %d/%lld = 1.0 in %.2f s: %.1f episodes/s\n", live_ok.load(),
              static_cast<long long>(tau2_eps), live_s, live_rate);
  std::printf("ratio tau2/synthetic: %.3f; live/replay scoring: %.2f\n", tau2_rate / syn_rate, live_rate / tau2_rate);
  return 0;
}
