// Grading helpers: stdin/expected-stdout cases with per-case statuses, and assert tests that a program
// cannot fake by exiting early or by overriding assert/print/exit.
#include "sandbox/sandbox.h"

#include "tests/sandbox/sandbox_test.h"

namespace k2::sandbox {
namespace {

using testing::Shared;

// The wall limit leaves room for a loaded 2-core machine: the memory case must reach its OOM first.
Limits Small() {
  Limits l;
  l.wall_s = 6;
  l.cpu_s = 2;
  l.memory_mb = 64;
  l.output_bytes = 4096;
  return l;
}

TEST(StripTrailing, RemovesOnlyTrailingWhitespace) {
  EXPECT_EQ(StripTrailing("  a b \n\r\n\t "), "  a b");
  EXPECT_EQ(StripTrailing("\n"), "");
  EXPECT_EQ(StripTrailing(""), "");
}

TEST(RunIoCases, GivesEachCaseItsOwnStatus) {
  // Reads n; behaves badly on purpose for some n.
  const std::string code =
      "import sys, time\n"
      "n = int(input())\n"
      "if n == 1: time.sleep(30)\n"
      "if n == 2: x = bytearray(300 << 20)\n"
      "if n == 3: sys.stdout.write('z' * 100000)\n"
      "if n == 4: raise RuntimeError('bad')\n"
      "print(n * n)\n";
  std::vector<IoCase> cases = {{"0\n", "0\n"}, {"1\n", "1"}, {"2\n", "4"}, {"3\n", "9"},
                               {"4\n", "16"}, {"5\n", "25  \n\n"}, {"6\n", "37"}};
  auto res = RunIoCases(Shared(), "python", code, cases, Small());
  ASSERT_EQ(res.size(), cases.size());
  EXPECT_EQ(res[0].status, CaseStatus::kPassed) << res[0].detail;
  EXPECT_EQ(res[1].status, CaseStatus::kTimeout) << res[1].detail;
  EXPECT_EQ(res[2].status, CaseStatus::kMemoryLimit) << res[2].detail;
  EXPECT_EQ(res[3].status, CaseStatus::kOutputLimit) << res[3].detail;
  EXPECT_EQ(res[4].status, CaseStatus::kRuntimeError) << res[4].detail;
  EXPECT_EQ(res[5].status, CaseStatus::kPassed) << res[5].detail;
  EXPECT_EQ(res[6].status, CaseStatus::kFailed);
  EXPECT_NE(res[6].detail.find("byte 1"), std::string::npos) << res[6].detail;
}

TEST(RunAssertTests, PassesCorrectCodeAndFailsWrongCode) {
  const std::string tests = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n";
  auto ok = RunAssertTests(Shared(), "python", "def add(a, b):\n    return a + b\n", tests, Small());
  EXPECT_EQ(ok.status, CaseStatus::kPassed) << ok.detail << ok.run.stderr_data;
  auto bad = RunAssertTests(Shared(), "python", "def add(a, b):\n    return a - b\n", tests, Small());
  EXPECT_EQ(bad.status, CaseStatus::kFailed) << bad.detail;
  auto crash = RunAssertTests(Shared(), "python", "def add(a, b):\n    return a + undefined\n", tests, Small());
  EXPECT_EQ(crash.status, CaseStatus::kRuntimeError) << crash.detail;
  auto slow = RunAssertTests(Shared(), "python", "def add(a, b):\n    while True: pass\n", tests, Small());
  EXPECT_EQ(slow.status, CaseStatus::kTimeout) << slow.detail << " (run: cpu_s " << slow.run.cpu_s << ", exit "
                                               << slow.run.exit_code << ", signal " << slow.run.signal
                                               << ", wall_s " << slow.run.wall_s << ")";
}

// Each program tries to make failing tests look passed.
TEST(RunAssertTests, CannotBeFakedByTheProgram) {
  const std::string tests = "assert add(2, 3) == 6\n";  // always fails
  const std::vector<std::string> cheats = {
      "import os\ndef add(a, b): return 0\nos._exit(0)\n",
      "import sys\ndef add(a, b): return 0\nsys.exit(0)\n",
      "import builtins\nbuiltins.AssertionError = type('X', (BaseException,), {})\ndef add(a, b): return 0\n",
      "import builtins\n_p = print\nbuiltins.print = lambda *a, **k: None\ndef add(a, b): return 0\n",
      "import atexit, os\natexit.register(lambda: os._exit(0))\ndef add(a, b): return 0\n",
      "import signal, os\ndef add(a, b):\n    os.kill(os.getpid(), signal.SIGKILL)\n",
      "import sys\nsys.excepthook = lambda *a: None\ndef add(a, b): return 0\n",
      "import os, sys\nprint('passed')\nsys.stdout.flush()\nos.close(1)\ndef add(a, b): return 0\n",
  };
  for (const auto& code : cheats) {
    auto r = RunAssertTests(Shared(), "python", code, tests, Small());
    EXPECT_NE(r.status, CaseStatus::kPassed) << code;
  }
}

TEST(RunAssertTests, RejectsOtherLanguages) {
  auto r = RunAssertTests(Shared(), "bash", "true", "true", Small());
  EXPECT_EQ(r.status, CaseStatus::kSandboxError);
  EXPECT_NE(r.detail.find("language"), std::string::npos);
}

}  // namespace
}  // namespace k2::sandbox
