// Data parallelism on this machine, every figure beside its reference from the same run: (1) Gloo
// all-reduce of fp32 buffers on loopback (W ranks as threads): algorithm and bus bandwidth against a
// plain memcpy of the same bytes; (2) SFT tokens/s at 2 ranks x 1 compute thread against 1 rank x 2
// threads on the same global batch; (3) `small` pretraining ms/step at 2 ranks against one process, with
// the time the ranks waited for gradient buckets after Backward (the overhead overlap does not hide).
// Usage: bench_dist [sft_steps] [pretrain_steps]
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
#include "sft/copy_dialogs.h"
#include "sft/sft.h"

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
      o.rank = r, o.world_size = W, o.timeout_s = 120;
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

static void AllReduceBandwidth() {
  for (int W : {2}) {
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
      std::memcpy(dst.data(), buf[0].data(), static_cast<size_t>(bytes));  // warm-up (page faults)
      t0 = Clock::now();
      for (int i = 0; i < reps; ++i) {
        std::memcpy(dst.data(), buf[0].data(), static_cast<size_t>(bytes));
        asm volatile("" ::: "memory");
      }
      const double tm = Secs(t0) / reps;
      const double busbw = bytes / t * 2.0 * (W - 1) / W;
      std::printf("gloo allreduce W=%d %7.2f MiB: %8.3f ms  algbw %.3f GB/s  busbw %.3f GB/s | memcpy %.2f GB/s | "
                  "busbw/memcpy %.4f\n",
                  W, bytes / (1 << 20), t * 1e3, bytes / t / 1e9, busbw / 1e9, bytes / tm / 1e9, busbw / (bytes / tm));
    }
  }
}

static text::Tokenizer ByteTokenizer() {
  std::vector<std::string> bytes;
  for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
  auto t = text::Tokenizer::CreateKimi(bytes);
  if (!t.ok()) std::exit(1);
  return std::move(t).value();
}

static void SftThroughput(int steps) {
  auto mc = LoadModelConfig(std::string(K2GYM_SOURCE_DIR) + "/configs/models/small.json");
  if (!mc.ok()) std::exit(1);
  const text::Tokenizer tok = ByteTokenizer();
  if (mc->vocab_size < tok.vocab_size()) mc->vocab_size = tok.vocab_size();
  sft::SftConfig cfg;
  cfg.seq_len = 256;
  cfg.batch_size = 9;  // 81 packed rows: 9 full batches (data parallel needs a row per rank in every batch)
  cfg.epochs = 1;
  cfg.eval_fraction = 0;
  cfg.checkpoint_every_s = 0;
  cfg.copy_dialogs = 96;  // synthetic dialogs (sft/copy_dialogs.h), packed into rows of 256 byte tokens
  double tps[3] = {0, 0, 0};
  for (int W : {1, 2}) {
    cfg.threads = W == 1 ? 2 : 1;
    auto cs = W > 1 ? Connect(W) : std::vector<std::unique_ptr<dist::Communicator>>{};
    double tokens_per_s = 0, wait_s = 0;
    std::vector<std::future<void>> fs;
    for (int r = 0; r < W; ++r)
      fs.push_back(std::async(std::launch::async, [&, r] {
        auto m = Model<float>::Create(*mc, 1);
        sft::SftRun run;
        run.seed = 1;
        run.max_steps = steps;
        run.comm = W > 1 ? cs[r].get() : nullptr;
        run.on_step = [&](const sft::SftStep& s) { tokens_per_s = s.tokens_per_s; };
        auto res = sft::TrainSft(m->get(), tok, {}, cfg, run);
        if (!res.ok()) std::fprintf(stderr, "rank %d: %s\n", r, res.status().ToString().c_str());
      }));
    for (auto& f : fs) f.get();
    (void)wait_s;
    tps[W] = tokens_per_s;
    std::printf("sft small B=%lld T=%lld, %d steps: %d rank(s) x %lld thread(s): %.0f tokens/s\n",
                static_cast<long long>(cfg.batch_size), static_cast<long long>(cfg.seq_len), steps, W,
                static_cast<long long>(cfg.threads), tokens_per_s);
  }
  std::printf("sft ratio (2 ranks x 1 thread) / (1 rank x 2 threads): %.3f\n", tps[1] > 0 ? tps[2] / tps[1] : 0.0);
}

static void PretrainStepTime(int steps) {
  auto mc = LoadModelConfig(std::string(K2GYM_SOURCE_DIR) + "/configs/models/small.json");
  if (!mc.ok()) std::exit(1);
  const std::string corpus = "/tmp/k2gym_dist_bench_corpus.txt";
  if (!WriteFileAtomic(corpus, GenerateCorpus(1, 1 << 20)).ok()) std::exit(1);
  PretrainConfig pc;
  pc.batch_size = 8;
  pc.seq_len = 128;
  pc.steps = steps;
  pc.checkpoint_every = 0;
  pc.optimizer.total_steps = steps;
  for (int W : {1, 2}) {
    pc.threads = W == 1 ? 2 : 1;
    auto cs = W > 1 ? Connect(W) : std::vector<std::unique_ptr<dist::Communicator>>{};
    double wait = 0;
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
        run.on_step = [&](const PretrainStep& s) { wait += s.comm_wait_s; };
        auto t = Pretrain(m->get(), pc, run);
        if (!t.ok()) std::fprintf(stderr, "rank %d: %s\n", r, t.status().ToString().c_str());
      }));
    for (auto& f : fs) f.get();
    const double ms = Secs(t0) / steps * 1e3;
    std::printf("pretrain small B=%lld T=%lld (%lld params) W=%d threads/rank=%lld: %.1f ms/step, %.0f tokens/s, "
                "rank-0 wait for buckets after backward %.2f ms/step\n",
                static_cast<long long>(pc.batch_size), static_cast<long long>(pc.seq_len), static_cast<long long>(params),
                W, static_cast<long long>(pc.threads), ms, pc.batch_size * pc.seq_len / (ms / 1e3), wait / steps * 1e3);
  }
}

int main(int argc, char** argv) {
  ReexecWithPassiveOpenMpWait(argv);  // as the k2gym binary does (engine/pretrain.h)
  const int sft_steps = argc > 1 ? std::atoi(argv[1]) : 6;
  const int pretrain_steps = argc > 2 ? std::atoi(argv[2]) : 0;
  std::printf("machine: %ld online CPUs; ranks are threads on 127.0.0.1 (Gloo, TCP transport)\n",
              sysconf(_SC_NPROCESSORS_ONLN));
  AllReduceBandwidth();
  SftThroughput(sft_steps);
  if (pretrain_steps > 0) PretrainStepTime(pretrain_steps);
  return 0;
}
