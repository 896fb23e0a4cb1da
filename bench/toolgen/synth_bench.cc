// Benchmark of synthetic tool generation: 20,000 tools with databases (all threads vs one thread, the
// reference measured in the same run), tasks per second, executor calls per second, and MinHash/LSH
// near-duplicate search vs the exact all-pairs reference. Prints machine, threads and sizes.
//
// Usage: bench_toolgen_synth [tools=20000] [tasks=2000] [threads=0 (all)]
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "core/thread_pool.h"
#include "toolgen/synth/dedupe.h"
#include "toolgen/synth/sample.h"
#include "toolgen/synth/synth.h"
#include "toolgen/synth/tasks.h"

using namespace k2;
using namespace k2::toolgen::synth;

namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string Cpu() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown cpu";
}

}  // namespace

int main(int argc, char** argv) {
  int64_t tools = argc > 1 ? std::stoll(argv[1]) : 20000;
  int64_t ntasks = argc > 2 ? std::stoll(argv[2]) : 2000;
  int threads = argc > 3 ? std::stoi(argv[3]) : 0;
  ThreadPool pool(threads);
  std::printf("machine: %s, %u hardware threads; pool threads: %d\n", Cpu().c_str(), std::thread::hardware_concurrency(),
              pool.size());

  double t0 = Now();
  Catalog par = Synthesize(1, tools, &pool, true);
  double t_par = Now() - t0;
  t0 = Now();
  Catalog ser = Synthesize(1, tools, nullptr, true);
  double t_ser = Now() - t0;
  std::printf("catalog: %lld tools in %zu domains with databases (6 actors, 6 items, <=14 records each)\n",
              static_cast<long long>(par.ToolCount()), par.domains.size());
  std::printf("  %d threads: %.2f s (%.0f tools/s); 1 thread (reference): %.2f s; speedup %.2fx\n", pool.size(), t_par,
              par.ToolCount() / t_par, t_ser, t_ser / t_par);

  std::vector<Domain> ds;
  for (auto& d : par.domains) ds.push_back(*d);
  t0 = Now();
  auto tasks = GenerateTasks(ds, 1, ntasks, &pool);
  double tk_par = Now() - t0;
  t0 = Now();
  auto tasks1 = GenerateTasks(ds, 1, ntasks / 4, nullptr);
  double tk_ser = Now() - t0;
  std::printf("tasks: %zu generated (each with a database, gold replay and policy checks) in %.2f s = %.0f tasks/s on %d "
              "threads; 1 thread (reference, %zu tasks): %.0f tasks/s; speedup %.2fx\n",
              tasks.size(), tk_par, tasks.size() / tk_par, pool.size(), tasks1.size(), tasks1.size() / tk_ser,
              (tasks.size() / tk_par) / (tasks1.size() / tk_ser));

  // Executor throughput on sampled calls, one thread.
  int64_t calls = 0, ok = 0;
  t0 = Now();
  Rng r(1);
  for (size_t i = 0; i < par.domains.size() && i < 300; ++i) {
    json db = par.databases[i];
    for (auto& op : par.domains[i]->ops)
      for (int k = 0; k < 10; ++k) {
        ok += Execute(*par.domains[i], op, db, SampleArguments(*par.domains[i], op, db, r)).ok();
        ++calls;
      }
  }
  double t_exec = Now() - t0;
  std::printf("executor: %lld sampled calls (%lld ok) in %.2f s = %.0f calls/s (1 thread)\n", static_cast<long long>(calls),
              static_cast<long long>(ok), t_exec, calls / t_exec);

  std::vector<std::string> texts;
  for (auto& d : par.domains)
    for (auto& op : d->ops) texts.push_back(op.description);
  t0 = Now();
  DedupeReport all = MeasureNearDuplicates(texts, 0.8, &pool);
  double t_all = Now() - t0;
  std::printf("near duplicates over all %lld descriptions (word-3-shingle Jaccard >= 0.8): %lld tools (%.3f%%), %lld pairs; "
              "max Jaccard %.3f; %lld candidate pairs; %.2f s\n",
              static_cast<long long>(all.docs), static_cast<long long>(all.docs_with_near_duplicate),
              100.0 * all.docs_with_near_duplicate / std::max<int64_t>(1, all.docs), static_cast<long long>(all.near_duplicate_pairs),
              all.max_jaccard, static_cast<long long>(all.candidate_pairs), t_all);
  for (double th : {0.5, 0.6, 0.7}) {
    DedupeReport x = MeasureNearDuplicates(texts, th, &pool);
    std::printf("  at Jaccard >= %.1f: %lld tools (%.3f%%)\n", th, static_cast<long long>(x.docs_with_near_duplicate),
                100.0 * x.docs_with_near_duplicate / std::max<int64_t>(1, x.docs));
  }
  std::vector<std::string> sub(texts.begin(), texts.begin() + std::min<size_t>(texts.size(), 3000));
  t0 = Now();
  DedupeReport lsh = MeasureNearDuplicates(sub, 0.8, nullptr);
  double t_lsh = Now() - t0;
  t0 = Now();
  DedupeReport exact = MeasureNearDuplicatesExact(sub, 0.8);
  double t_exact = Now() - t0;
  std::printf("dedupe on %zu descriptions, 1 thread: MinHash/LSH %.3f s vs exact all pairs (reference) %.3f s: %.1fx; "
              "same pairs: %s\n",
              sub.size(), t_lsh, t_exact, t_exact / t_lsh, lsh.pairs == exact.pairs ? "yes" : "NO");
  return 0;
}
