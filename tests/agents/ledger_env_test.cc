// The example environment, registered the way a user registers theirs, runs an episode via reset/step.
#include "examples/ledger_env/ledger_env.h"

#include <gtest/gtest.h>

namespace k2::examples {
namespace {

Message Call(const std::string& tool, const std::string& args) {
  return {.role = "assistant", .tool_calls = {{.id = "c", .name = tool, .arguments = args}}};
}

TEST(LedgerEnv, EpisodeThroughRegistryReachesTarget) {
  agents::EnvRegistry reg;
  ASSERT_TRUE(RegisterLedgerEnv(reg).ok());
  auto env = reg.Make("ledger", {{"max_steps", 8}});
  ASSERT_TRUE(env.ok()) << env.status().ToString();
  auto obs = (*env)->Reset(7, {{"target", 120}, {"start", 50}});
  ASSERT_TRUE(obs.ok()) << obs.status().ToString();
  EXPECT_NE(obs->back().content.find("120"), std::string::npos);
  auto a = (*env)->Step(Call("deposit", R"({"amount":100})"));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->observation[0].content, "balance 150");
  auto b = (*env)->Step(Call("withdraw", R"({"amount":500})"));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->info["tool_errors"], 1);
  auto c = (*env)->Step(Call("withdraw", R"({"amount":30})"));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ((*env)->Step(Call("balance", "{}"))->observation[0].content, "120");
  auto fin = (*env)->Step({.role = "assistant", .content = "done"});
  ASSERT_TRUE(fin.ok());
  EXPECT_TRUE(fin->terminated);
  EXPECT_DOUBLE_EQ(fin->reward, 1.0);
}

TEST(LedgerEnv, SeedDeterminesStartAndSchemaGuardsArguments) {
  auto e1 = LedgerEnv::Make(json::object());
  auto e2 = LedgerEnv::Make(json::object());
  ASSERT_TRUE(e1.ok() && e2.ok());
  ASSERT_TRUE((*e1)->Reset(42, {{"target", 1}}).ok());
  ASSERT_TRUE((*e2)->Reset(42, {{"target", 1}}).ok());
  auto b1 = (*e1)->Step(Call("balance", "{}"));
  auto b2 = (*e2)->Step(Call("balance", "{}"));
  EXPECT_EQ(b1->observation[0].content, b2->observation[0].content);
  auto bad = (*e1)->Step(Call("deposit", R"({"amount":-5})"));
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ(bad->observation[0].content.rfind("error: invalid arguments for deposit: /amount:", 0), 0u);
  EXPECT_FALSE(LedgerEnv::Make({{"max_stepz", 3}}).ok());
  EXPECT_EQ((*e1)->Reset(0, {{"target", "x"}}).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace k2::examples
