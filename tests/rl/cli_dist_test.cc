// `k2gym rl` launched data-parallel as a user does it: 2 processes on loopback (RANK/WORLD_SIZE/
// MASTER_ADDR/MASTER_PORT, the same --out and --db) against one process — the same metric sequence and
// final weights to fp32 rounding, and rank 0 alone writes the run (one store run, metrics, trajectories,
// checkpoint). Real pipeline through the binary: toolgen synth/tasks -> oracle simulate -> tokenizer
// train -> a tiny model -> rl, deterministic settings (one episode thread, seeded sampling).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "core/json.h"
#include "core/store.h"
#include "engine/engine.h"
#include "engine/text/tokenizer.h"
#include "tests/cli_util.h"
#include "tests/rl/rl_fixture.h"

namespace k2 {
namespace {

namespace fs = std::filesystem;

int FreePort() {
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

// step -> key -> value of metrics.csv, wall-clock keys left out.
std::map<int64_t, std::map<std::string, double>> Csv(const std::string& path) {
  std::map<int64_t, std::map<std::string, double>> m;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    const size_t a = line.find(','), b = line.find(',', a + 1), c = line.find(',', b + 1);
    if (c == std::string::npos) continue;
    const std::string key = line.substr(a + 1, b - a - 1);
    if (key.rfind("time_", 0) == 0 || key.find("tokens_per_s") != std::string::npos) continue;
    m[std::stoll(line.substr(0, a))][key] = std::stod(line.substr(b + 1, c - b - 1));
  }
  return m;
}

TEST(RlCliDist, TwoProcessesEqualOneProcess) {
  const fs::path dir = fs::temp_directory_path() / ("k2gym_rl_cli_dist_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto P = [&](const std::string& n) { return (dir / n).string(); };
  const std::string G = "--db " + P("k.db") + " --seed 5 ";
  auto r = test::RunK2gym(G + "--quiet toolgen synth --count 20");
  ASSERT_EQ(r.rc, 0) << r.out;
  r = test::RunK2gym(G + "--quiet toolgen tasks --count 3 --out " + P("tasks.json"));
  ASSERT_EQ(r.rc, 0) << r.out;
  r = test::RunK2gym(G + "--quiet simulate --tasks " + P("tasks.json") +
                     " --policy oracle --user scripted --episodes 6 --threads 1 --out " + P("oracle.jsonl"));
  ASSERT_EQ(r.rc, 0) << r.out;
  r = test::RunK2gym("--quiet tokenizer train --corpus " + P("oracle.jsonl") + " --vocab-size 1024 --threads 1 --out " +
                     P("tok"));
  ASSERT_EQ(r.rc, 0) << r.out;
  auto tok = text::Tokenizer::Load(P("tok"));
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  {
    auto model = engine::Model<float>::Create(rl::fixture::TinyModel(tok->vocab_size()), 11);
    ASSERT_TRUE(model.ok());
    fs::create_directories(P("init"));
    ASSERT_TRUE((*model)->SaveSafetensors(P("init") + "/model.safetensors").ok());
  }
  json cfg = {{"rl",
               {{"iterations", 2},
                {"tasks_per_iteration", 2},
                {"rollouts_per_task", 2},
                {"budget", {{"default_budget", 16}, {"penalty", 0.25}}},
                // PTX rows (the oracle dialogs): a gradient even when a group's rewards are all equal
                {"ptx", {{"data", P("oracle.jsonl")}, {"rows", 2},
                         {"coef", {{"kind", "constant"}, {"start", 0.3}, {"end", 0.3}, {"steps", 1}}}}},
                {"update", {{"seq_len", 4096}, {"micro_batch", 1}}},
                {"threads", 1},
                {"optimizer", {{"lr", 0.01}}},
                {"dist", {{"timeout_s", 60}}}}},
              {"rl_run",
               {{"init", P("init")},
                {"tokenizer", P("tok")},
                {"tasks", P("tasks.json")},
                {"eval_fraction", 0.0},
                {"task_tools_only", true},
                {"rollout",
                 {{"episode_threads", 1},
                  {"reward", "judge_mean"},
                  {"episode", {{"max_turns", 2}, {"max_tokens_per_turn", 10}, {"max_tokens", 0}}}}}}}};
  std::ofstream(P("rl.json")) << cfg.dump(2);
  const std::string rl = test::K2gymBin() + " " + G + "--json rl --config " + P("rl.json") + " --out ";

  r = test::RunShell(rl + P("one") + " 2>" + P("one.err"));
  ASSERT_EQ(r.rc, 0) << r.out << *ReadFile(P("one.err"));
  const std::string env = "MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(FreePort()) + " WORLD_SIZE=2 ";
  r = test::RunShell("(env RANK=1 " + env + rl + P("two") + " >" + P("r1.out") + " 2>" + P("r1.err") + "; echo $? >" +
                     P("r1.rc") + ") & env RANK=0 " + env + rl + P("two") + " 2>" + P("r0.err") + "; rc=$?; wait; exit $rc");
  ASSERT_EQ(r.rc, 0) << r.out << *ReadFile(P("r0.err")) << "\nrank 1: " << *ReadFile(P("r1.err"));
  EXPECT_EQ(*ReadFile(P("r1.rc")), "0\n") << *ReadFile(P("r1.err"));
  EXPECT_EQ(*ReadFile(P("r1.out")), "");  // rank 1 reports nothing and writes no run

  const auto a = Csv(P("one") + "/metrics.csv"), b = Csv(P("two") + "/metrics.csv");
  ASSERT_EQ(a.size(), 2u);
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [step, kv] : a) {
    ASSERT_EQ(kv.size(), b.at(step).size()) << step;
    for (const auto& [k, v] : kv) {
      const double w = b.at(step).at(k);
      EXPECT_LE(std::abs(v - w), 1e-5 * std::max(std::abs(v), std::abs(w)) + 1e-6) << step << " " << k;
    }
  }
  EXPECT_GT(a.at(0).at("grad_norm") + a.at(1).at("grad_norm"), 0.0)
      << "reward_std " << a.at(0).at("reward_std") << " " << a.at(1).at("reward_std") << " budget_over_rate "
      << a.at(0).at("budget_over_rate") << " " << a.at(1).at("budget_over_rate");
  auto wa = engine::ReadSafetensors(P("one") + "/checkpoint/model.safetensors");
  auto wb = engine::ReadSafetensors(P("two") + "/checkpoint/model.safetensors");
  ASSERT_TRUE(wa.ok() && wb.ok());
  double worst = 0;
  for (auto& [name, t] : wa->tensors) {
    auto x = engine::StToDouble(t, name), y = engine::StToDouble(wb->tensors.at(name), name);
    ASSERT_TRUE(x.ok() && y.ok() && x->size() == y->size()) << name;
    for (size_t i = 0; i < x->size(); ++i) worst = std::max(worst, std::abs((*x)[i] - (*y)[i]));
  }
  EXPECT_LE(worst, 1e-4);
  // One store run per launch: the 1-process run and rank 0's (rank 1 opened none).
  auto db = Db::Open(P("k.db"));
  ASSERT_TRUE(db.ok());
  auto st = (*db)->Prepare("SELECT COUNT(*) FROM runs WHERE kind = 'rl'");
  ASSERT_TRUE(st.ok());
  ASSERT_TRUE(st->Step());
  EXPECT_EQ(st->Int(0), 2);
  if (!::testing::Test::HasFailure()) fs::remove_all(dir);
}

}  // namespace
}  // namespace k2
