// Data-parallel `k2gym sft` as a user launches it: 2 and 3 processes on loopback (RANK/WORLD_SIZE/
// MASTER_ADDR/MASTER_PORT) against one process on the combined batch — same final weights (fp32
// rounding) and the same metric sequence; a run interrupted at 2 ranks resumes at 3; a rank killed
// mid-run makes the other exit with a named error within the timeout.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/json.h"
#include "core/rng.h"
#include "engine/engine.h"

namespace k2 {
namespace {

struct Result {
  int code;
  std::string out, err;
};

// step -> key -> value of a metrics.csv (step,key,value,t), without the wall-clock keys.
using Metrics = std::map<int64_t, std::map<std::string, double>>;

class SftDist : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("k2gym_sftdist_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    // 24 short tool-free dialogs (each its own row: pack=false): 18 train rows in batches of 6 (3 steps
    // an epoch, shards of 3/3 or 2/2/2 rows), every 4th dialog held out.
    Rng rng(11);
    std::ofstream d(dir_ / "d.jsonl");
    const char* words[] = {"alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "theta"};
    for (int i = 0; i < 24; ++i) {
      std::string q, a;
      for (int k = 0; k < 3; ++k) q += std::string(words[rng.Below(8)]) + " ";
      for (int k = 0; k < 2 + i % 3; ++k) a += std::string(words[rng.Below(8)]) + " ";
      d << json{{"messages", json::array({json{{"role", "user"}, {"content", "say " + q}},
                                          json{{"role", "assistant"}, {"content", a}}})}}
               .dump()
        << "\n";
    }
    d.close();
    ASSERT_EQ(Shell(Bin() + " tokenizer train --corpus d.jsonl --dialogs --vocab-size 600 --out tok --quiet").code, 0);
    auto cfg = ReadJsonFile(std::string(K2GYM_SOURCE_DIR) + "/configs/models/tiny.json");
    ASSERT_TRUE(cfg.ok());
    std::ofstream(dir_ / "m.json") << cfg->dump();
    std::ofstream(dir_ / "run.json") << R"({"sft": {"seq_len": 48, "batch_size": 6, "epochs": 2, "pack": false,
      "eval_fraction": 0.25, "eval_every": 2, "checkpoint_every": 2, "checkpoint_every_s": 0, "threads": 1,
      "aux_loss_alpha": 0.01,
      "optimizer": {"lr": 0.01, "warmup_steps": 1, "qk_clip_tau": 1.0, "bias_update_speed": 0.01},
      "dist": {"bucket_mb": 0.01, "timeout_s": 60}}})";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  static std::string Bin() { return std::string(K2GYM_BINARY_DIR) + "/apps/k2gym"; }
  std::string Sft(const std::string& out, const std::string& extra = "") const {
    return Bin() + " --config run.json --db " + out + ".db --seed 5 --json" + extra +
           " sft --model m.json --data d.jsonl --tokenizer tok --out " + out;
  }
  Result Shell(const std::string& cmdline) {
    std::string out = (dir_ / "out").string(), err = (dir_ / "err").string();
    std::string cmd = "cd " + dir_.string() + " && { " + cmdline + " ; } >" + out + " 2>" + err;
    int st = std::system(cmd.c_str());
    return Result{WIFEXITED(st) ? WEXITSTATUS(st) : -1, *ReadFile(out), *ReadFile(err)};
  }
  // W ranks of `cmd` (rank 0 in the foreground, the others in the background with their exit codes in
  // rK.rc); env_k adds variables to rank k only. Every rank uses the same --out.
  Result Ranks(int W, const std::string& cmd, const std::map<int, std::string>& env_k = {}) {
    const std::string env =
        "MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(FreePort()) + " WORLD_SIZE=" + std::to_string(W) + " ";
    std::string line;
    auto extra = [&](int k) { return env_k.count(k) ? env_k.at(k) + " " : std::string(); };
    for (int k = 1; k < W; ++k)
      line += "(env RANK=" + std::to_string(k) + " " + env + extra(k) + cmd + " >r" + std::to_string(k) + ".out 2>r" +
              std::to_string(k) + ".err; echo $? >r" + std::to_string(k) + ".rc) & ";
    line += "env RANK=0 " + env + extra(0) + cmd + "; rc=$?; wait; exit $rc";
    return Shell(line);
  }
  std::string RankFile(int k, const char* ext) {
    auto f = ReadFile((dir_ / ("r" + std::to_string(k) + "." + ext)).string());
    return f.ok() ? *f : "?";
  }
  static int FreePort() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
  }
  std::map<std::string, std::vector<double>> Weights(const std::string& run) {
    std::map<std::string, std::vector<double>> out;
    auto f = engine::ReadSafetensors((dir_ / run / "checkpoint/model.safetensors").string());
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    if (!f.ok()) return out;
    for (auto& [name, t] : f->tensors) out[name] = *engine::StToDouble(t, name);
    return out;
  }
  Metrics ReadMetrics(const std::string& run) {
    Metrics m;
    auto csv = ReadFile((dir_ / run / "metrics.csv").string());
    EXPECT_TRUE(csv.ok()) << run;
    if (!csv.ok()) return m;
    std::istringstream lines(*csv);
    std::string line;
    std::getline(lines, line);  // header
    while (std::getline(lines, line)) {
      std::vector<std::string> f;
      std::stringstream ss(line);
      for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
      if (f.size() < 3 || f[1] == "tokens_per_s") continue;
      m[std::stoll(f[0])][f[1]] = std::stod(f[2]);
    }
    return m;
  }
  // Same steps and keys; values within rtol (relative) or atol.
  void ExpectSameMetrics(const Metrics& a, const Metrics& b, const std::string& what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    for (const auto& [step, kv] : a) {
      ASSERT_TRUE(b.count(step)) << what << " step " << step;
      ASSERT_EQ(kv.size(), b.at(step).size()) << what << " step " << step;
      for (const auto& [k, v] : kv) {
        ASSERT_TRUE(b.at(step).count(k)) << what << " step " << step << " " << k;
        const double w = b.at(step).at(k);
        EXPECT_LE(std::abs(v - w), 1e-5 + 1e-4 * std::max(std::abs(v), std::abs(w)))
            << what << " step " << step << " " << k << ": " << v << " vs " << w;
      }
    }
  }
  void ExpectSameWeights(const std::string& a_run, const std::string& b_run) {
    auto a = Weights(a_run), b = Weights(b_run);
    ASSERT_EQ(a.size(), b.size());
    ASSERT_FALSE(a.empty());
    double all_worst = 0;
    for (auto& [name, w] : a) {
      ASSERT_EQ(b[name].size(), w.size()) << name;
      double worst = 0;
      for (size_t i = 0; i < w.size(); ++i) worst = std::max(worst, std::abs(w[i] - b[name][i]));
      EXPECT_LE(worst, 1e-4) << b_run << " vs " << a_run << ": " << name;
      all_worst = std::max(all_worst, worst);
    }
    RecordProperty(b_run + "_max_abs_weight_diff", std::to_string(all_worst));
  }
  std::filesystem::path dir_;
};

TEST_F(SftDist, TwoAndThreeRanksEqualOneProcessOnTheCombinedBatch) {
  Result one = Shell(Sft("one"));
  ASSERT_EQ(one.code, 0) << one.err;
  const Metrics m1 = ReadMetrics("one");
  ASSERT_EQ(m1.size(), 7u);  // 2 epochs x 3 steps, and the held-out loss after the last (step 6)
  ASSERT_TRUE(m1.at(2).count("eval_loss") && m1.at(6).count("eval_loss"));
  double clipped = 0;
  for (const auto& [step, kv] : m1) clipped += kv.count("qk_clipped_heads") ? kv.at("qk_clipped_heads") : 0.0;
  EXPECT_GT(clipped, 0);  // QK-Clip acted, so the global max-logit reduction is covered
  for (int W : {2, 3}) {
    const std::string run = "w" + std::to_string(W);
    Result r = Ranks(W, Sft(run));
    ASSERT_EQ(r.code, 0) << r.err << "\nrank 1: " << RankFile(1, "err");
    for (int k = 1; k < W; ++k) EXPECT_EQ(RankFile(k, "rc"), "0\n") << RankFile(k, "err");
    ExpectSameWeights("one", run);
    ExpectSameMetrics(m1, ReadMetrics(run), run);
    // Rank 0 alone wrote the run (store run, metrics, checkpoint); the others report only their rank.
    auto j1 = ParseJson(RankFile(1, "out"), "rank 1 stdout");
    ASSERT_TRUE(j1.ok()) << RankFile(1, "out");
    EXPECT_EQ((*j1)["rank"], 1);
    EXPECT_FALSE(j1->contains("run"));
    auto j = ParseJson(r.out, "rank 0 stdout");
    ASSERT_TRUE(j.ok()) << r.out;
    EXPECT_EQ((*j)["steps_taken"], 6);
  }
}

TEST_F(SftDist, ARunStoppedAtTwoRanksResumesAtThree) {
  Result one = Shell(Sft("one"));
  ASSERT_EQ(one.code, 0) << one.err;
  // Both ranks die at the third step (after the checkpoint of step 2).
  Result a = Ranks(2, "env K2GYM_CRASH_AT=train.step@3 " + Sft("r"));
  ASSERT_NE(a.code, 0);
  ASSERT_TRUE(std::filesystem::exists(dir_ / "r/checkpoint/model.safetensors"));
  Result b = Ranks(3, Sft("r") + " --resume");
  ASSERT_EQ(b.code, 0) << b.err << "\nrank 1: " << RankFile(1, "err") << "\nrank 2: " << RankFile(2, "err");
  ExpectSameWeights("one", "r");
  ExpectSameMetrics(ReadMetrics("one"), ReadMetrics("r"), "resumed at 3 ranks");
  // And back to one process from a data-parallel checkpoint.
  Result c = Ranks(2, "env K2GYM_CRASH_AT=train.step@3 " + Sft("s"));
  ASSERT_NE(c.code, 0);
  Result d = Shell(Sft("s") + " --resume");
  ASSERT_EQ(d.code, 0) << d.err;
  ExpectSameWeights("one", "s");
}

// torchrun as users launch it (`--no-python`; torch 1.13 spells it --no_python): its agent serves a
// store on MASTER_PORT and says so (TORCHELASTIC_USE_AGENT_STORE=True), so k2gym's rendezvous moves to
// MASTER_PORT + 1. Skipped where /usr/bin/python3 has no torch.
TEST_F(SftDist, TorchrunNoPythonLaunchEqualsOneProcess) {
  if (Shell("/usr/bin/python3 -c 'import torch.distributed.run'").code != 0)
    GTEST_SKIP() << "no torch for /usr/bin/python3 (python3-torch)";
  // torch 1.13's launcher under Python 3.11 turns its default --redirects/--tee into None (an IntFlag
  // change); mapped back to "no redirection" before its own main() runs.
  std::ofstream(dir_ / "torchrun.py") << R"(import torch.distributed.elastic.multiprocessing as mp
import torch.distributed.elastic.multiprocessing.api as api
_to_map = api.to_map
def to_map(v, n):
    return {i: api.Std.NONE for i in range(n)} if v is None else _to_map(v, n)
api.to_map = mp.to_map = to_map
from torch.distributed.run import main
main()
)";
  Result one = Shell(Sft("one"));
  ASSERT_EQ(one.code, 0) << one.err;
  const std::string port = std::to_string(FreePort());
  Result t = Shell("/usr/bin/python3 torchrun.py --nnodes 1 --nproc_per_node 2 --master_addr 127.0.0.1 --master_port " +
                   port + " --no_python " + Sft("tr"));
  ASSERT_EQ(t.code, 0) << t.out << t.err;
  ExpectSameWeights("one", "tr");
  ExpectSameMetrics(ReadMetrics("one"), ReadMetrics("tr"), "torchrun");
}

TEST_F(SftDist, ARankKilledMidRunMakesTheOtherExitWithANamedError) {
  const auto t0 = std::chrono::steady_clock::now();
  Result r = Ranks(2, Sft("k", " --set sft.dist.timeout_s=20"), {{1, "K2GYM_CRASH_AT=train.step@2"}});
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_NE(r.err.find("rank 0 of 2 (gloo)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("is rank 1]"), std::string::npos) << r.err;  // the dead peer, named
  EXPECT_NE(RankFile(1, "rc"), "0\n");
  EXPECT_LT(dt, 60.0);  // the peer's exit is seen at once (closed connection); bounded by the 20 s timeout
}

}  // namespace
}  // namespace k2
