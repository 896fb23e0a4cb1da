// The `python` tool in a synthetic env: code runs in the real sandbox, output becomes the observation,
// failures (exceptions, timeouts, schema-invalid calls) are error observations the agent can read.
#include "agents/python_tool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "sandbox/sandbox.h"
#include "tests/agents/test_world.h"
#include "toolgen/synth/database.h"

namespace k2::agents {
namespace {

sandbox::Sandbox& TestSandbox() {
  static std::unique_ptr<sandbox::Sandbox> sb = [] {
    sandbox::SandboxConfig cfg;
    // Own host uid range per test process (ctest runs binaries in parallel with the sandbox tests).
    cfg.host_uid_base = 2000000 + static_cast<int64_t>(::getpid() % 4000) * 100000;
    cfg.workers = 1;
    cfg.preload = {"json", "math"};
    auto s = sandbox::Sandbox::Create(cfg);
    if (!s.ok()) {
      ADD_FAILURE() << s.status().ToString();
      std::abort();
    }
    return std::move(*s);
  }();
  return *sb;
}

Message Call(const std::string& args) {
  return {.role = "assistant", .tool_calls = {{.id = "functions.python:0", .name = "python", .arguments = args}}};
}

TEST(PythonTool, RunsCodeInTheSandboxAsAnEnvironmentTool) {
  SyntheticEnv env(testing::TestWorld().world, {.python = true, .python_wall_s = 2}, &TestSandbox());
  ASSERT_TRUE(env.Reset(1, testing::TestWorld().tasks[0]->env_task).ok());
  bool offered = false;
  for (const auto& t : env.Tools()) offered |= t.name == "python";
  EXPECT_TRUE(offered);

  auto r = env.Step(Call(R"J({"code": "import math\nprint(sum(range(10)), math.factorial(5))"})J"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->observation[0].content, "45 120\n");

  r = env.Step(Call(R"J({"code": "print(input().upper())", "stdin": "abc\n"})J"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->observation[0].content, "ABC\n");

  r = env.Step(Call(R"J({"code": "raise ValueError('bad value')"})J"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->observation[0].content.rfind("error: runtime_error: exit code 1", 0), 0u) << r->observation[0].content;
  EXPECT_NE(r->observation[0].content.find("ValueError: bad value"), std::string::npos);

  r = env.Step(Call(R"J({"code": "while True: pass"})J"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->observation[0].content.rfind("error: timeout", 0), 0u) << r->observation[0].content;

  r = env.Step(Call(R"J({"program": "print(1)"})J"));  // schema: code is required
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->observation[0].content.rfind("error: invalid arguments for python", 0), 0u) << r->observation[0].content;
  EXPECT_EQ(r->info["invalid_calls"], 1);

  // The domain's own tools are still there, and the database is untouched by python.
  EXPECT_EQ(toolgen::synth::StateHash(env.State()), toolgen::synth::StateHash(testing::TestWorld().tasks[0]->synth->initial_db));
}

TEST(PythonTool, EnabledWithoutASandboxIsAClearResetError) {
  SyntheticEnv env(testing::TestWorld().world, {.python = true}, nullptr);
  auto r = env.Reset(1, testing::TestWorld().tasks[0]->env_task);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("python is enabled but no sandbox"), std::string::npos);
}

}  // namespace
}  // namespace k2::agents
