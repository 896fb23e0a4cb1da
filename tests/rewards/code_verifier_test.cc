// Code verifier against the real sandbox: the tests/rewards/data/code.jsonl table (correct, wrong,
// partial, hard-coded, early-exit, harness-tampering, timeout, memory, output, fork and network cases)
// and code extraction from markdown.
#include "rewards/code_verifier.h"

#include <gtest/gtest.h>

#include "rewards/check.h"

namespace k2::rewards {
namespace {

TEST(CodeVerifierTable, AllCasesMatchExpectations) {
  auto cases = ReadJsonLines(std::string(K2GYM_SOURCE_DIR) + "/tests/rewards/data/code.jsonl");
  ASSERT_TRUE(cases.ok()) << cases.status().ToString();
  ASSERT_GE(cases->size(), 50u);
  auto out = CheckCases("code", *cases, "code.jsonl");
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  int failed = 0;
  for (auto& o : *out) {
    EXPECT_TRUE(o.has_expected) << o.id;
    if (!o.matches) {
      ++failed;
      ADD_FAILURE() << "code case " << o.id << ": " << o.mismatch << "\n  " << o.result.explanation;
    }
  }
  EXPECT_EQ(failed, 0);
}

TEST(CodeVerifier, ExtractsTheLastMatchingFence) {
  EXPECT_EQ(ExtractCode("```python\na\n```\n```python\nb\n```", "python"), "b\n");
  EXPECT_EQ(ExtractCode("```python\na\n```\n```text\nout\n```", "python"), "a\n");
  EXPECT_EQ(ExtractCode("```sh\nls\n```", "bash"), "ls\n");
  EXPECT_EQ(ExtractCode("print(1)", "python"), "print(1)");
  EXPECT_EQ(ExtractCode("```cpp\nint x;\n```", "python"), "int x;\n");
}

TEST(CodeVerifier, BadTaskSpecIsAnError) {
  auto r = MakeReward({{"type", "code"}});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ScoreInput in;
  in.messages.push_back(Message{"assistant", "print(1)", {}, "", ""});
  in.task = json::object();
  EXPECT_FALSE((*r)->Score(in).ok());
  in.task = {{"io_cases", {{{"input", 1}}}}};
  auto s = (*r)->Score(in);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("task.io_cases[0]"), std::string::npos);
  in.task = {{"test_code", "assert True"}, {"limits", {{"wall_s", -1}}}};
  EXPECT_FALSE((*r)->Score(in).ok());
  EXPECT_FALSE(MakeReward({{"type", "code"}, {"limits", {{"wall_z", 1}}}}).ok());
}

}  // namespace
}  // namespace k2::rewards
