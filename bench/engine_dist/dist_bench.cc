// Data parallelism on this machine: (1) TCP ring all-reduce of fp32 buffers on loopback, W ranks as
// threads: algorithm bandwidth (bytes / time) and bus bandwidth (x 2(W-1)/W), beside memcpy of the same
// buffer (the local copy bound) in the same run; (2) `small` pretraining: ms/step at 2 ranks (1 thread
// each, half the batch each) against one process with 2 threads on the whole batch, and the time the
// ranks waited for gradient buckets after Backward (the overhead overlap does not hide).
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <thread>
#include <vector>

#include "engine/data.h"
#include "engine/dist/comm.h"
#include "engine/pretrain.h"

using namespace k2;
using namespace k2::engine;
using Clock = std::chrono::steady_clock;

static std::vector<std::unique_ptr<dist::Communicator>> Connect(int W) {
  std::promise<int> port;
  auto pf = port.get_future().share();
  std::vector<std::future<Expected<std::unique_ptr<dist::Communicator>>>> fs;
  for (int r = 0; r < W; ++r)
    fs.push_back(std::async(std::launch::async, [=, &port]() {
      dist::GlooOptions o;
      o.rank = r, o.world_size = W, o.timeout_s = 60;
      if (r == 0) o.master_port = 0, o.on_listen = [&port](int p) { port.set_value(p); };
      else o.master_port = pf.get();
      return dist::ConnectGloo(o);
    }));
  std::vector<std::unique_ptr<dist::Communicator>> out;
  for (auto& f : fs) {
    auto c = f.get();
    if (!c.ok()) {
      std::fprintf(stderr, "connect: %s\n", c.status().ToString().c_str());
      std::exit(1);
    }
    out.push_back(std::move(*c));
  }
  return out;
}

static double Secs(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::atoi(argv[1]) : 20;
  std::printf("machine: %ld online CPUs; ranks are threads on 127.0.0.1\n", sysconf(_SC_NPROCESSORS_ONLN));
  // (1) ring bandwidth
  for (int W : {2, 4}) {
    auto cs = Connect(W);
    for (int64_t n : {int64_t{1} << 16, int64_t{1} << 20, int64_t{1} << 23}) {
      std::vector<std::vector<float>> buf(static_cast<size_t>(W), std::vector<float>(static_cast<size_t>(n), 1.0f));
      const int reps = n >= (1 << 23) ? 5 : 20;
      auto run = [&] {
        std::vector<std::future<void>> fs;
        for (int r = 0; r < W; ++r)
          fs.push_back(std::async(std::launch::async, [&, r] {
            for (int i = 0; i < reps; ++i) (void)cs[r]->AllReduce(buf[r].data(), n, dist::ReduceOp::kSum);
          }));
        for (auto& f : fs) f.get();
      };
      run();  // warm-up (buffers, kernel socket memory)
      auto t0 = Clock::now();
      run();
      const double t = Secs(t0) / reps, bytes = static_cast<double>(n) * 4;
      std::vector<float> dst(static_cast<size_t>(n));
      t0 = Clock::now();
      for (int i = 0; i < reps; ++i) {
        std::memcpy(dst.data(), buf[0].data(), static_cast<size_t>(bytes));
        asm volatile("" ::: "memory");
      }
      const double tm = Secs(t0) / reps;
      std::printf("allreduce W=%d %8.2f MiB: %7.3f ms  algbw %.2f GB/s  busbw %.2f GB/s  | memcpy %.2f GB/s  ratio busbw/memcpy %.3f\n",
                  W, bytes / (1 << 20), t * 1e3, bytes / t / 1e9, bytes / t / 1e9 * 2.0 * (W - 1) / W, bytes / tm / 1e9,
                  (bytes / t * 2.0 * (W - 1) / W) / (bytes / tm));
    }
  }
  // (2) pretraining step time
  auto mc = LoadModelConfig(std::string(K2GYM_SOURCE_DIR) + "/configs/models/small.json");
  if (!mc.ok()) return std::fprintf(stderr, "%s\n", mc.status().ToString().c_str()), 1;
  const std::string corpus = "/tmp/k2gym_dist_bench_corpus.txt";
  if (!WriteFileAtomic(corpus, GenerateCorpus(1, 1 << 20)).ok()) return 1;
  PretrainConfig pc;
  pc.batch_size = 8;
  pc.seq_len = 128;
  pc.steps = steps;
  pc.checkpoint_every = 0;
  pc.optimizer.total_steps = steps;
  for (int W : {1, 2}) {
    pc.threads = W == 1 ? 2 : 1;
    auto cs = W > 1 ? Connect(W) : std::vector<std::unique_ptr<dist::Communicator>>{};
    std::vector<double> wait(static_cast<size_t>(W), 0);
    int64_t params = 0;
    auto t0 = Clock::now();
    std::vector<std::future<void>> fs;
    for (int r = 0; r < W; ++r)
      fs.push_back(std::async(std::launch::async, [&, r] {
        auto m = Model<float>::Create(*mc, 1);
        if (r == 0)
          for (auto& p : (*m)->params()) params += p.numel();
        PretrainRun run;
        run.corpus_path = corpus;
        run.seed = 1;
        run.comm = W > 1 ? cs[r].get() : nullptr;
        run.on_step = [&](const PretrainStep& s) { wait[0] += s.comm_wait_s; };
        auto t = Pretrain(m->get(), pc, run);
        if (!t.ok()) std::fprintf(stderr, "rank %d: %s\n", r, t.status().ToString().c_str());
      }));
    for (auto& f : fs) f.get();
    const double ms = Secs(t0) / steps * 1e3;
    std::printf("pretrain small B=%lld T=%lld (%lld params) W=%d threads/rank=%lld: %.1f ms/step, %.0f tokens/s, "
                "rank-0 wait for buckets after backward %.2f ms/step\n",
                static_cast<long long>(pc.batch_size), static_cast<long long>(pc.seq_len), static_cast<long long>(params),
                W, static_cast<long long>(pc.threads), ms, pc.batch_size * pc.seq_len / (ms / 1e3), wait[0] / steps * 1e3);
  }
  return 0;
}
