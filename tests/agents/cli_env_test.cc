// The `k2gym env` and `k2gym tools` commands end to end through the built binary (a build dependency
// of agents_tests: a missing binary fails the test).
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "core/json.h"
#include "tests/cli_util.h"

namespace k2 {
namespace {

namespace fs = std::filesystem;
const std::string kBin = std::string(K2GYM_BINARY_DIR) + "/apps/k2gym";

using Run = test::ShellResult;
Run Sh(const std::string& args) { return test::RunK2gym(args, /*stderr_to_null=*/true); }

class CliEnv : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kBin)) << kBin << " not built (agents_tests depends on the k2gym target)";
    dir_ = fs::temp_directory_path() / ("k2gym_cli_env_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "dumps");
    db_ = "--db " + (dir_ / "k.db").string() + " ";
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  fs::path dir_;
  std::string db_;
};

TEST_F(CliEnv, ListAndCallTheExamplePluginEnvironment) {
  const std::string plugin = std::string(" --plugin ") + LEDGER_PLUGIN + " ";
  auto builtin = Sh(db_ + "--json env list");
  ASSERT_EQ(builtin.rc, 0);
  std::set<std::string> kinds;
  const json builtin_list = json::parse(builtin.out);  // named: a range-for over a temporary's member dangles
  for (auto& k : builtin_list["kinds"]) kinds.insert(k["name"].get<std::string>());
  EXPECT_TRUE(kinds.count("mcp") && kinds.count("answer") && kinds.count("code_interpreter")) << builtin.out;
  EXPECT_FALSE(kinds.count("ledger")) << "the example is a plugin, not compiled into the binary";
  auto list = Sh(db_ + "--json env list" + plugin);
  ASSERT_EQ(list.rc, 0);
  kinds.clear();
  const json plugin_list = json::parse(list.out);
  for (auto& k : plugin_list["kinds"]) kinds.insert(k["name"].get<std::string>());
  EXPECT_TRUE(kinds.count("mcp") && kinds.count("ledger")) << list.out;
  auto ok = Sh(db_ + "env call ledger deposit '{\"amount\":5}' --task '{\"target\":5,\"start\":0}'" + plugin);
  EXPECT_EQ(ok.rc, 0);
  EXPECT_EQ(ok.out, "balance 5\n");
  auto bad = Sh(db_ + "env call ledger deposit '{\"amount\":\"x\"}' --task '{\"target\":5}'" + plugin);
  EXPECT_EQ(bad.rc, 1);
  EXPECT_EQ(bad.out.rfind("error: invalid arguments for deposit: /amount:", 0), 0u) << bad.out;
  EXPECT_EQ(Sh(db_ + "env inspect no_such_env").rc, 1);
  EXPECT_EQ(Sh(db_ + "env list --plugin " + (dir_ / "missing.so").string()).rc, 2);
}

TEST_F(CliEnv, CallsAnMcpServerGivenOnTheCommandLine) {
  auto r = Sh(db_ + "env call mcp echo '{\"text\":\"hi\"}' --env-config '{\"command\":[\"" FAKE_MCP_SERVER "\"]}'");
  EXPECT_EQ(r.rc, 0);
  EXPECT_EQ(r.out, "hi\n");
  auto ins = Sh(db_ + "--json env inspect mcp --env-config '{\"command\":[\"" FAKE_MCP_SERVER "\"]}'");
  ASSERT_EQ(ins.rc, 0);
  EXPECT_EQ(json::parse(ins.out)["tools"].size(), 14u);
}

TEST_F(CliEnv, ToolsImportStatsAndInspectImportedServer) {
  std::ofstream(dir_ / "dumps" / "weather.json")
      << R"({"tools":[{"name":"forecast","description":"weather forecast","inputSchema":{"type":"object"}},
                      {"name":"bad name","inputSchema":{"type":"object"}}]})";
  auto imp = Sh(db_ + "--json tools import " + (dir_ / "dumps").string());
  ASSERT_EQ(imp.rc, 0) << imp.out;
  EXPECT_EQ(json::parse(imp.out)[0]["valid"], 1);
  auto stats = Sh(db_ + "--json tools stats");
  ASSERT_EQ(stats.rc, 0);
  auto s = json::parse(stats.out);
  EXPECT_EQ(s["tools"], 2);
  EXPECT_EQ(s["invalid_tools"][0]["tool"], "bad name");
  auto ins = Sh(db_ + "env inspect weather");
  EXPECT_EQ(ins.rc, 0);
  EXPECT_NE(ins.out.find("forecast"), std::string::npos) << ins.out;
  EXPECT_EQ(Sh(db_ + "tools import " + (dir_ / "missing").string()).rc, 2);  // a missing input: usage error
}

}  // namespace
}  // namespace k2
