// `k2gym toolgen ...` as a user runs it: synth -> agents -> tasks -> stats on one store, tau2 export
// that imports back, deterministic per seed, a clear error before synth.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "core/json.h"
#include "toolgen/synth/tasks.h"

namespace k2::toolgen::synth {
namespace {

struct Out {
  int code;
  std::string out, err;
};

class ToolgenCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("k2gym_toolgen_cli_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  Out Run(const std::string& args) {
    std::string bin = std::string(K2GYM_BINARY_DIR) + "/apps/k2gym";
    std::string o = (dir_ / "o").string(), e = (dir_ / "e").string();
    int st = std::system(("cd " + dir_.string() + " && " + bin + " " + args + " >" + o + " 2>" + e).c_str());
    return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, *ReadFile(o), *ReadFile(e)};
  }
  std::filesystem::path dir_;
};

TEST_F(ToolgenCli, SynthAgentsTasksStats) {
  Out before = Run("toolgen tasks --db a.db --count 5");
  EXPECT_EQ(before.code, 1);
  EXPECT_NE(before.err.find("run `k2gym toolgen synth` first"), std::string::npos) << before.err;

  Out s = Run("toolgen synth --db a.db --seed 9 --count 2400 --verify --json");  // 2,400: every theme once
  ASSERT_EQ(s.code, 0) << s.err;
  auto sj = ParseJson(s.out, "stdout");
  ASSERT_TRUE(sj.ok()) << s.out;
  EXPECT_GE((*sj)["tools"].get<int64_t>(), 2400);
  EXPECT_TRUE((*sj)["verify"]["problems"].empty());
  EXPECT_GT((*sj)["verify"]["calls_error"].get<int64_t>(), 0);

  Out a = Run("toolgen agents --db a.db --seed 9 --per-domain 2 --json");
  ASSERT_EQ(a.code, 0) << a.err;
  Out t = Run("toolgen tasks --db a.db --seed 9 --count 60 --out tasks.json --json");
  ASSERT_EQ(t.code, 0) << t.err;
  auto arr = ReadJsonFile((dir_ / "tasks.json").string());
  ASSERT_TRUE(arr.ok());
  ASSERT_GE(arr->size(), 55u);
  for (size_t i = 0; i < arr->size(); ++i) EXPECT_TRUE(TaskFromTau2((*arr)[i], "tasks.json/" + std::to_string(i)).ok());

  Out st = Run("toolgen stats --db a.db --json");
  ASSERT_EQ(st.code, 0) << st.err;
  auto j = ParseJson(st.out, "stdout");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ((*j)["synthetic"]["tools"], (*sj)["tools"]);
  EXPECT_EQ((*j)["synthetic"]["agents"].get<int64_t>(), 2 * (*sj)["domains"].get<int64_t>());
  EXPECT_EQ((*j)["synthetic"]["tasks"].get<size_t>(), arr->size());
  EXPECT_GE((*j)["synthetic"]["categories"].get<int64_t>(), 34);
  Out human = Run("toolgen stats --db a.db");
  EXPECT_EQ(human.code, 0);
  EXPECT_NE(human.out.find("synthetic:"), std::string::npos);

  // Same seed: the same tool specs; another seed: different ones.
  ASSERT_EQ(Run("toolgen synth --db b.db --seed 9 --count 1500 --out b.jsonl").code, 0);
  ASSERT_EQ(Run("toolgen synth --db c.db --seed 9 --count 1500 --out c.jsonl").code, 0);
  ASSERT_EQ(Run("toolgen synth --db d.db --seed 10 --count 1500 --out d.jsonl").code, 0);
  EXPECT_EQ(*ReadFile((dir_ / "b.jsonl").string()), *ReadFile((dir_ / "c.jsonl").string()));
  EXPECT_NE(*ReadFile((dir_ / "b.jsonl").string()), *ReadFile((dir_ / "d.jsonl").string()));
  EXPECT_EQ(Run("toolgen synth --db b.db --count 0").code, 2);
}

}  // namespace
}  // namespace k2::toolgen::synth
