// The `mcp` environment kind over the fake server (and server-everything when installed): episodes,
// faults surfacing as observations or truncation, pooled servers bounded, many envs stepping at once.
#include "agents/mcp_env.h"

#include <sys/wait.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "core/thread_pool.h"

namespace k2::agents {
namespace {

json FakeConfig(json extra = json::object()) {
  json c = {{"command", {FAKE_MCP_SERVER}}, {"timeout_ms", 5000}};
  c.merge_patch(extra);
  return c;
}

Message Call(const std::string& tool, const json& args) {
  return {.role = "assistant", .tool_calls = {{.id = "c1", .name = tool, .arguments = args.dump()}}};
}

TEST(McpEnv, EpisodeThroughRegistry) {
  auto env = EnvRegistry::Global().Make("mcp", FakeConfig());
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  EXPECT_EQ((*env)->Tools().size(), 14u);
  EXPECT_EQ((*env)->Tools()[0].provenance, "mcp:fake");
  auto obs = (*env)->Reset(1, {{"prompt", "add 2 and 3"}});
  ASSERT_TRUE(obs.ok());
  auto r = (*env)->Step(Call("add", {{"a", 2}, {"b", 3}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->observation.at(0).content, "5");
  EXPECT_EQ(r->observation.at(0).name, "add");
  auto bad = (*env)->Step(Call("add", {{"a", "2"}}));  // rejected by the server's own schema, before the call
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->observation.at(0).content.rfind("error: invalid arguments for add:", 0), 0u);
  auto fin = (*env)->Step({.role = "assistant", .content = "5"});
  ASSERT_TRUE(fin.ok());
  EXPECT_TRUE(fin->terminated);
}

TEST(McpEnv, OutputSchemaViolationsAreReported) {
  auto env = MakeMcpEnv(*ParseMcpEnvConfig(FakeConfig()));
  ASSERT_TRUE(env.ok());
  ASSERT_TRUE((*env)->Reset(0, json::object()).ok());
  auto good = (*env)->Step(Call("structured", {{"n", 3}}));
  ASSERT_TRUE(good.ok());
  EXPECT_FALSE(good->info.contains("output_schema_violations"));
  auto bad = (*env)->Step(Call("structured", {{"n", "three"}}));
  ASSERT_TRUE(bad.ok());
  EXPECT_NE(bad->info["output_schema_violations"][0].get<std::string>().find("/n: expected integer"), std::string::npos);
}

TEST(McpEnv, TimeoutIsAToolErrorCrashTruncatesAndResetRestarts) {
  auto env = MakeMcpEnv(*ParseMcpEnvConfig(FakeConfig({{"timeout_ms", 200}})));
  ASSERT_TRUE(env.ok());
  ASSERT_TRUE((*env)->Reset(0, json::object()).ok());
  auto hang = (*env)->Step(Call("hang", json::object()));
  ASSERT_TRUE(hang.ok());
  EXPECT_FALSE(hang->truncated);
  EXPECT_EQ(hang->info["tool_errors"], 1);
  EXPECT_NE(hang->observation[0].content.find("deadline"), std::string::npos) << hang->observation[0].content;
  auto crash = (*env)->Step(Call("crash", json::object()));
  ASSERT_TRUE(crash.ok());
  EXPECT_TRUE(crash->truncated);
  EXPECT_NE(crash->info["env_error"].get<std::string>().find("mid-message"), std::string::npos);
  EXPECT_EQ((*env)->Step(Call("echo", {{"text", "x"}})).status().code(), Code::kFailedPrecondition);
  ASSERT_TRUE((*env)->Reset(0, json::object()).ok());  // a fresh server process
  auto echo = (*env)->Step(Call("echo", {{"text", "back"}}));
  ASSERT_TRUE(echo.ok());
  EXPECT_EQ(echo->observation[0].content, "back");
}

TEST(McpEnv, ConfigErrorsNameTheField) {
  EXPECT_NE(ParseMcpEnvConfig({{"command", {"x"}}, {"url", "http://a"}}).status().message().find("exactly one of"),
            std::string::npos);
  EXPECT_NE(ParseMcpEnvConfig({{"comand", {"x"}}}).status().message().find("did you mean \"command\""), std::string::npos);
  EXPECT_NE(ParseMcpEnvConfig({{"command", {"x"}}, {"env", {{"A", 1}}}}).status().message().find("env.A"), std::string::npos);
  EXPECT_NE(ParseMcpEnvConfig({{"command", {"x"}}, {"servers", "shared"}}).status().message().find("servers"), std::string::npos);
  McpEnvConfig direct;
  direct.command = {"x"};
  direct.env = {{"A", 1}};  // built in code, not parsed: MakeMcpEnv still checks
  EXPECT_EQ(MakeMcpEnv(direct).status().code(), Code::kInvalidArgument);
  auto missing = EnvRegistry::Global().Make("mcp", {{"command", {"/nonexistent/server"}}});
  EXPECT_EQ(missing.status().code(), Code::kUnavailable);
}

TEST(McpEnv, PooledServersAreBoundedAndReused) {
  json cfg = FakeConfig({{"servers", "pooled"}, {"max_servers", 2}, {"lease_timeout_ms", 100}});
  int before = PooledServersLive();
  {
    auto a = EnvRegistry::Global().Make("mcp", cfg);
    auto b = EnvRegistry::Global().Make("mcp", cfg);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(PooledServersLive(), before + 2);
    auto c = EnvRegistry::Global().Make("mcp", cfg);
    EXPECT_EQ(c.status().code(), Code::kResourceExhausted) << c.status().ToString();
    a->reset();  // returns its server to the pool
    auto d = EnvRegistry::Global().Make("mcp", cfg);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(PooledServersLive(), before + 2);  // reused, not a third process
  }
  EXPECT_EQ(PooledServersLive(), before + 2);  // idle in the pool until exit
}

TEST(McpEnv, ManyEnvironmentsStepConcurrentlyFromAThreadPool) {
  const int n = 8;
  std::vector<std::unique_ptr<Env>> envs(n);
  for (int i = 0; i < n; ++i) {
    auto e = EnvRegistry::Global().Make("mcp", FakeConfig());
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    envs[i] = std::move(*e);
  }
  std::vector<std::string> results(n);
  ThreadPool pool(4);
  pool.ParallelFor(n, [&](int64_t i) {
    if (!envs[i]->Reset(static_cast<uint64_t>(i), json::object()).ok()) return;
    std::string acc;
    for (int s = 0; s < 5; ++s) {
      auto r = envs[i]->Step(Call("add", {{"a", static_cast<int>(i)}, {"b", s}}));
      if (!r.ok()) return;
      acc += r->observation[0].content + ",";
    }
    results[i] = acc;
  });
  for (int i = 0; i < n; ++i) {
    std::string want;
    for (int s = 0; s < 5; ++s) want += std::to_string(i + s) + ",";
    EXPECT_EQ(results[i], want) << "env " << i;
  }
}

TEST(McpEnv, EverythingServerEpisode) {
  const std::string pkg = std::string(K2GYM_SOURCE_DIR) +
                          "/third_party/mcp/node_modules/@modelcontextprotocol/server-everything/dist/index.js";
  if (!std::filesystem::exists(pkg) || system("node --version >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "node or " << pkg << " absent (run scripts/setup.sh)";
  auto env = EnvRegistry::Global().Make("mcp", {{"command", {"node", pkg, "stdio"}}, {"name", "everything"}});
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  ASSERT_TRUE((*env)->Reset(3, {{"prompt", "echo hello"}}).ok());
  auto r = (*env)->Step(Call("echo", {{"message", "hello"}}));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NE(r->observation[0].content.find("hello"), std::string::npos);
  auto s = (*env)->Step(Call("get-sum", {{"a", 1}, {"b", 2}}));
  ASSERT_TRUE(s.ok());
  EXPECT_NE(s->observation[0].content.find("3"), std::string::npos);
  EXPECT_TRUE((*env)->Step({.role = "assistant", .content = "hello"})->terminated);
}

}  // namespace
}  // namespace k2::agents
