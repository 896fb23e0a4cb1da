// The acceptance test of data parallelism as a user runs it: two `k2gym pretrain` processes (RANK 0/1,
// WORLD_SIZE 2, loopback) against one process on the combined batch — same checkpoint weights to fp32
// tolerance with MoE, the aux loss, the router bias and QK-Clip acting; plus launch errors that must be
// one clear line within a bounded time (bad variables, a rank that never starts).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/json.h"
#include "engine/engine.h"

namespace k2 {
namespace {

struct Result {
  int code;
  std::string out, err;
};

class DpCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("k2gym_dpcli_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto cfg = ReadJsonFile(std::string(K2GYM_SOURCE_DIR) + "/configs/models/tiny.json");
    ASSERT_TRUE(cfg.ok());
    (*cfg)["vocab_size"] = 256;
    std::ofstream(dir_ / "m.json") << cfg->dump();
    std::ofstream(dir_ / "run.json") << R"({"pretrain": {"batch_size": 4, "seq_len": 16, "steps": 4,
      "checkpoint_every": 0, "aux_loss_alpha": 0.01, "threads": 1,
      "optimizer": {"lr": 0.02, "qk_clip_tau": 1.0, "bias_update_speed": 0.01, "total_steps": 4},
      "dist": {"bucket_mb": 0.01, "timeout_s": 60}}})";
    ASSERT_EQ(Shell(Bin() + " corpus gen --out corpus.txt --bytes 20000 --seed 3").code, 0);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  static std::string Bin() { return std::string(K2GYM_BINARY_DIR) + "/apps/k2gym"; }
  std::string Pretrain(const std::string& out) const {
    return Bin() + " --config run.json --db " + out + ".db --seed 5 --json pretrain --model m.json --data corpus.txt --out " + out;
  }
  Result Shell(const std::string& cmdline) {
    std::string out = (dir_ / "out").string(), err = (dir_ / "err").string();
    std::string cmd = "cd " + dir_.string() + " && { " + cmdline + " ; } >" + out + " 2>" + err;
    int st = std::system(cmd.c_str());
    return Result{WIFEXITED(st) ? WEXITSTATUS(st) : -1, *ReadFile(out), *ReadFile(err)};
  }
  // A loopback port that was free a moment ago (bind to 0, read it, close).
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
  std::map<std::string, std::vector<double>> Weights(const std::string& path) {
    std::map<std::string, std::vector<double>> out;
    auto f = engine::ReadSafetensors((dir_ / path).string());
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    if (!f.ok()) return out;
    for (auto& [name, t] : f->tensors) out[name] = *engine::StToDouble(t, name);
    return out;
  }
  std::filesystem::path dir_;
};

TEST_F(DpCli, TwoProcessesEqualOneProcessWithTheCombinedBatch) {
  Result one = Shell(Pretrain("one"));
  ASSERT_EQ(one.code, 0) << one.err;
  const std::string env = "MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(FreePort()) + " WORLD_SIZE=2 ";
  Result two = Shell("(env RANK=1 " + env + Pretrain("r1") + " >r1.out 2>r1.err; echo $? >r1.rc) & env RANK=0 " + env +
                     Pretrain("r0") + "; rc=$?; wait; exit $rc");
  auto r1_err = ReadFile((dir_ / "r1.err").string());
  ASSERT_EQ(two.code, 0) << two.err << "\nrank 1: " << (r1_err.ok() ? *r1_err : "");
  auto r1_rc = ReadFile((dir_ / "r1.rc").string());
  EXPECT_EQ(r1_rc.ok() ? *r1_rc : "?", "0\n") << (r1_err.ok() ? *r1_err : "");
  auto j0 = ParseJson(two.out, "rank 0 stdout");
  auto j1 = ParseJson(one.out, "single stdout");
  ASSERT_TRUE(j0.ok() && j1.ok()) << two.out;
  EXPECT_NEAR((*j0)["last_loss"].get<double>(), (*j1)["last_loss"].get<double>(), 1e-4);
  // Rank 0 alone writes the checkpoint.
  EXPECT_TRUE(std::filesystem::exists(dir_ / "r0/checkpoint/model.safetensors"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "r1/checkpoint"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "r1/metrics.csv")) << "rank 1 writes no metrics";
  auto r1_out = ReadFile((dir_ / "r1.out").string());
  EXPECT_NE(r1_out.ok() ? r1_out->find("\"rank\": 1") : std::string::npos, std::string::npos) << "rank 1 reports itself, not a run";
  auto a = Weights("one/checkpoint/model.safetensors"), b = Weights("r0/checkpoint/model.safetensors");
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  for (auto& [name, w] : a) {
    ASSERT_EQ(b[name].size(), w.size()) << name;
    double worst = 0;
    for (size_t i = 0; i < w.size(); ++i) worst = std::max(worst, std::abs(w[i] - b[name][i]));
    EXPECT_LE(worst, 2e-4) << name;
  }
  // QK-Clip acted in the run (tau = 1), so the test covers the global max-logit reduction.
  auto csv = ReadFile((dir_ / "r0/metrics.csv").string());
  ASSERT_TRUE(csv.ok());
  EXPECT_NE(csv->find(",qk_clipped_heads,"), std::string::npos);
  bool clipped = false;
  std::istringstream lines(*csv);
  for (std::string line; std::getline(lines, line);)
    if (line.find(",qk_clipped_heads,") != std::string::npos && line.substr(line.rfind(',') + 1) != "0") clipped = true;
  EXPECT_TRUE(clipped) << *csv;
}

TEST_F(DpCli, BadLaunchVariablesAreOneLineUsageErrors) {
  Result r = Shell("env RANK=2 WORLD_SIZE=2 " + Pretrain("x"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("RANK=\"2\": expected an integer in [0, 2)"), std::string::npos) << r.err;
  Result p = Shell("env RANK=0 WORLD_SIZE=2 MASTER_PORT=http " + Pretrain("x"));
  EXPECT_NE(p.code, 0);
  EXPECT_NE(p.err.find("MASTER_PORT=\"http\""), std::string::npos) << p.err;
}

TEST_F(DpCli, ARankThatNeverStartsIsATimeoutNotAHang) {
  const auto t0 = std::chrono::steady_clock::now();
  Result r = Shell("env RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(FreePort()) + " " +
                   Pretrain("x") + " --set pretrain.dist.timeout_s=1");
  const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("1 of 2 ranks did not join the rendezvous"), std::string::npos) << r.err;
  EXPECT_LT(dt, 30.0);  // 1 s timeout plus process start; generous for a loaded machine
}

}  // namespace
}  // namespace k2
