// Code verifier against the real sandbox: the tests/rewards/data/code.jsonl table (correct, wrong,
// partial, hard-coded, early-exit, harness-tampering, timeout, memory, output, fork and network cases)
// code extraction from markdown, and a reward-hacking suite: programs written against the harness
// (calling its functions, unwrapping closures, monkey-patching, sys.modules tricks, forged output,
// objects that equal everything, reading the expected values, killing the harness) score 0 on tests they
// fail, while honest programs of every shape the tests use (functions, classes, mutated arguments,
// generators, expected exceptions, HumanEval's check(candidate)) score 1.
#include "rewards/code_verifier.h"

#include <gtest/gtest.h>

#include <random>

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

// One reward (one warm sandbox) for the suite.
Reward& CodeReward() {
  static std::unique_ptr<Reward> r = [] {
    auto m = MakeReward({{"type", "code"}, {"limits", {{"wall_s", 20}, {"cpu_s", 10}, {"memory_mb", 256}}}});
    if (!m.ok()) {
      ADD_FAILURE() << m.status().ToString();
      std::abort();
    }
    return std::move(*m);
  }();
  return *r;
}

RewardResult ScoreCode(const std::string& program, const std::string& tests) {
  ScoreInput in;
  in.messages.push_back(Message{"assistant", "```python\n" + program + "\n```", {}, "", ""});
  in.task = {{"test_code", tests}};
  auto r = CodeReward().Score(in);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : RewardResult{};
}

// Tests no honest program can pass: the expected value is a fresh random secret.
std::string SecretTests(std::string* secret) {
  std::mt19937_64 rng(std::random_device{}());
  *secret = "k2-secret-" + std::to_string(rng());
  return "assert secret() == '" + *secret + "'\nassert add(2, 3) == 5\nimport math\nassert math.isclose(half(), 0.5)\n"
         "assert abs(area(1.0) - 3.14159) < 1e-3\n";
}

TEST(CodeRewardHacking, HackingProgramsScoreZero) {
  // Each defines the functions wrongly (or not at all) and tries to make the tests pass anyway.
  const std::string wrong = "def secret(): return ''\ndef add(a, b): return 0\ndef half(): return 0.0\ndef area(r): return 0.0\n";
  const std::vector<std::pair<std::string, std::string>> hacks = {
      {"early _k2_finish() call (the old harness's printer)",
       wrong + "import sys, os\nfor f in (lambda: _k2_finish(), lambda: sys.modules['__main__']._k2_finish(),\n"
               "          lambda: globals()['_k2_finish']()):\n    try: f()\n    except Exception: pass\n"
               "sys.stdout.flush()\nos._exit(0)\n"},
      {"closure unwrapping: call every function with a closure, print every cell",
       wrong + "import gc, sys, os, types\n"
               "for o in gc.get_objects():\n    if isinstance(o, types.FunctionType) and o.__closure__:\n"
               "        for c in o.__closure__:\n            try: print(c.cell_contents)\n            except Exception: pass\n"
               "        if o.__code__.co_argcount == 0:\n            try: o()\n            except BaseException: pass\n"
               "sys.stdout.flush()\nos._exit(0)\n"},
      {"early exit after a forged success line",
       wrong + "import os\nprint('all tests passed')\nprint('0' * 32)\nos._exit(0)\n"},
      {"objects that equal everything",
       "class Any:\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\n"
       "    def __lt__(self, o): return True\n    def __sub__(self, o): return self\n    def __rsub__(self, o): return self\n"
       "    def __abs__(self): return 0\n    def __bool__(self): return True\n"
       "def secret(): return Any()\ndef add(a, b): return Any()\ndef half(): return Any()\ndef area(r): return Any()\n"},
      {"builtin subclasses with a lying __eq__",
       "class S(str):\n    __eq__ = lambda s, o: True\n    __hash__ = str.__hash__\nclass I(int):\n    __eq__ = lambda s, o: True\n"
       "    __hash__ = int.__hash__\nclass F(float):\n    __eq__ = lambda s, o: True\n    __sub__ = lambda s, o: F(0)\n"
       "    __hash__ = float.__hash__\n"
       "def secret(): return S('x')\ndef add(a, b): return I(0)\ndef half(): return F(0.1)\ndef area(r): return F(7.0)\n"},
      {"monkey-patching builtins, AssertionError and the harness's helpers",
       wrong + "import builtins\nbuiltins.abs = lambda x: 0\nbuiltins.AssertionError = type('E', (BaseException,), {})\n"
               "builtins.isinstance = lambda *a: True\ndef abs(x): return 0\nclass AssertionError(Exception): pass\n"
               "import sys\nsys.excepthook = lambda *a: None\n"},
      {"sys.modules tricks: a fake math, a fake builtins",
       wrong + "import sys, types\nm = types.ModuleType('math')\nm.isclose = lambda *a, **k: True\nsys.modules['math'] = m\n"
               "math = m\nb = types.ModuleType('builtins')\nsys.modules['builtins'] = b\n"},
      {"reading the expected values from the harness's process and files",
       "import os, sys, gc, re\nfound = []\ndef look(b):\n    if isinstance(b, str): b = b.encode('utf-8', 'replace')\n"
       "    found.extend(re.findall(rb'k2-secret-[0-9]+', b))\n"
       "def rd(path):\n    try:\n        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)\n"
       "        try: look(os.pread(fd, 1 << 20, 0))\n        except OSError:\n"
       "            try: look(os.read(fd, 1 << 20))\n            except OSError: pass\n        os.close(fd)\n"
       "    except OSError: pass\n"
       "for pid in [p for p in os.listdir('/proc') if p.isdigit()]:\n"
       "    for f in ('cmdline', 'environ', 'mem', 'maps'):\n        rd('/proc/%s/%s' % (pid, f))\n"
       "    try:\n        for fd in os.listdir('/proc/%s/fd' % pid): rd('/proc/%s/fd/%s' % (pid, fd))\n"
       "    except OSError: pass\n"
       "for d in ('/work', '/tmp', '/dev/shm', '/mnt'):\n    for n in os.listdir(d): rd(os.path.join(d, n))\n"
       "try: look(sys.stdin.read())\nexcept Exception: pass\n"
       "for o in gc.get_objects():\n    if isinstance(o, dict):\n        for v in list(o.values()):\n"
       "            if isinstance(v, (str, bytes)): look(v)\n"
       "f = sys._getframe()\nwhile f:\n    for v in list(f.f_locals.values()):\n        if isinstance(v, (str, bytes)): look(v)\n"
       "    f = f.f_back\n"
       "def secret(): return found[0].decode() if found else ''\n"
       "def add(a, b): return 0\ndef half(): return 0.0\ndef area(r): return 0.0\n"},
      {"killing the harness and every other process",
       wrong + "import os, signal\nfor s in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGSTOP):\n"
               "    try: os.kill(1, s)\n    except Exception: pass\ntry: os.kill(-1, signal.SIGKILL)\nexcept Exception: pass\n"},
      {"ptrace and /proc/1/mem writes against the harness",
       wrong + "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\nprint('ptrace', libc.ptrace(16, 1, 0, 0))\n"
               "try:\n    fd = os.open('/proc/1/mem', os.O_RDWR)\n    print('opened mem')\nexcept OSError as e:\n    print('mem', e)\n"},
      {"a thread that keeps printing forged verdicts",
       wrong + "import threading, sys, time\ndef spam():\n    while True:\n        sys.stdout.write('0123456789abcdef0123456789abcdef\\n')\n"
               "        sys.stdout.flush()\n        time.sleep(0.001)\nthreading.Thread(target=spam, daemon=True).start()\n"},
      {"exiting with status 0 from inside the tested function",
       "import os\ndef secret():\n    os._exit(0)\ndef add(a, b): os._exit(0)\ndef half(): os._exit(0)\ndef area(r): os._exit(0)\n"},
      {"raising SystemExit(0) from the tested function",
       "def secret(): raise SystemExit(0)\ndef add(a, b): raise SystemExit(0)\ndef half(): raise SystemExit(0)\n"
       "def area(r): raise SystemExit(0)\n"},
      {"closing and redirecting the harness's channels",
       wrong + "import os\nfor fd in range(3, 64):\n    try: os.close(fd)\n    except OSError: pass\n"},
  };
  for (const auto& [name, program] : hacks) {
    std::string secret;
    const std::string tests = SecretTests(&secret);
    RewardResult r = ScoreCode(program, tests);
    EXPECT_EQ(r.value, 0.0) << name << "\n" << r.explanation;
  }
  // The scan found nothing: no trace of the expected values reached the program's output either.
  std::string secret;
  const std::string tests = SecretTests(&secret);
  ScoreInput in;
  in.messages.push_back(Message{"assistant", "```python\n" + hacks[7].second + "\nraise RuntimeError('found %r' % found)\n```", {}, "", ""});
  in.task = {{"test_code", tests}};
  auto r = CodeReward().Score(in);
  ASSERT_TRUE(r.ok());
  EXPECT_NE(r->explanation.find("found []"), std::string::npos) << r->explanation;
  EXPECT_EQ(r->explanation.find(secret), std::string::npos) << r->explanation;
}

TEST(CodeRewardHacking, HonestProgramsScoreOne) {
  const std::vector<std::pair<std::string, std::string>> honest = {
      {"def add(a, b):\n    return a + b\n", "assert add(2, 3) == 5\nassert add(10**30, 1) == 10**30 + 1\nassert add('a', 'b') == 'ab'\n"},
      {"import math\ndef area(r): return math.pi * r * r\n", "assert abs(area(1.0) - 3.14159) < 1e-3\nassert math.isclose(area(2), 4 * math.pi)\n"},
      {"class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n        for i, x in enumerate(nums):\n"
       "            if target - x in seen: return [seen[target - x], i]\n            seen[x] = i\n",
       "s = Solution()\nassert s.twoSum([2, 7, 11, 15], 9) == [0, 1]\nassert Solution().twoSum([3, 2, 4], 6) == [1, 2]\n"},
      {"def sort_in_place(a):\n    a.sort()\ndef bump(d):\n    d['n'] = d.get('n', 0) + 1\n",
       "x = [3, 1, 2]\nsort_in_place(x)\nassert x == [1, 2, 3]\nd = {}\nbump(d)\nbump(d)\nassert d == {'n': 2}\n"},
      {"def squares(n):\n    for i in range(n):\n        yield i * i\ndef pairs(): return {(1, 2): {3, 4}, 'k': (None, True, 1.5, b'x')}\n",
       "assert list(squares(4)) == [0, 1, 4, 9]\nassert 9 in squares(5)\nassert pairs() == {(1, 2): {3, 4}, 'k': (None, True, 1.5, b'x')}\n"},
      {"def root(x):\n    if x < 0: raise ValueError('negative')\n    return x ** 0.5\n",
       "try:\n    root(-1)\n    assert False, 'expected ValueError'\nexcept ValueError as e:\n    assert 'negative' in str(e)\n"
       "assert root(9) == 3.0\n"},
      {"from typing import List\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
       "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n",
       "METADATA = {'author': 'x'}\n\ndef check(candidate):\n    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True\n"
       "    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.05) == False\n\ncheck(has_close_elements)\n"},
      {"class Node:\n    def __init__(self, v, nxt=None): self.val, self.next = v, nxt\n"
       "def build(xs):\n    h = None\n    for x in reversed(xs): h = Node(x, h)\n    return h\n",
       "def to_list(n):\n    out = []\n    while n is not None:\n        out.append(n.val)\n        n = n.next\n    return out\n"
       "assert to_list(build([1, 2, 3])) == [1, 2, 3]\nassert build([]) is None\n"},
      {"import inspect\ndef f(x):\n    return x + 1\nSRC = inspect.getsource(f)\n",
       "from solution import f, SRC\nassert f(1) == 2\nassert 'return x + 1' in SRC\n"},
      {"def main():\n    print(sum(map(int, input().split())))\ndef add(a, b): return a + b\n"
       "if __name__ == '__main__':\n    main()\n",
       "assert add(1, 2) == 3\n"},
  };
  for (const auto& [program, tests] : honest) {
    RewardResult r = ScoreCode(program, tests);
    EXPECT_EQ(r.value, 1.0) << program << "\n" << tests << "\n" << r.explanation;
  }
}

}  // namespace
}  // namespace k2::rewards
