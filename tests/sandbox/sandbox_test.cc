// Behaviour of Sandbox::Run: languages, stdin, files in/out, statuses for each limit, request
// validation, the warm pool against the cold reference, async runs and cleanup on destruction.
#include "sandbox/sandbox.h"

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <thread>

#include "core/json.h"
#include "sandbox/detail/base64.h"
#include "sandbox/detail/seccomp.h"
#include "tests/sandbox/sandbox_test.h"

namespace k2::sandbox {
namespace {

using testing::Bash;
using testing::Py;
using testing::Shared;

TEST(Sandbox, RunsPythonAndCapturesStdoutStderrAndExitCode) {
  auto r = Shared().Run(Py("import sys\nprint('out')\nprint('err', file=sys.stderr)\nsys.exit(3)"));
  EXPECT_EQ(r.status, RunStatus::kRuntimeError) << r.message;
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.stdout_data, "out\n");
  EXPECT_EQ(r.stderr_data, "err\n");
  EXPECT_FALSE(r.stdout_truncated);
}

TEST(Sandbox, RunsBashWithStdin) {
  RunRequest req = Bash("read a; read b; echo $((a + b)); echo done >&2");
  req.stdin_data = "2\n40\n";
  auto r = Shared().Run(req);
  EXPECT_EQ(r.status, RunStatus::kOk) << r.message << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "42\n");
  EXPECT_EQ(r.stderr_data, "done\n");
  EXPECT_EQ(r.exit_code, 0);
}

TEST(Sandbox, PythonReadsStdinAndUncaughtExceptionIsRuntimeError) {
  RunRequest req = Py("x = int(input())\nprint(x * 2)\nraise ValueError('boom')");
  req.stdin_data = "21\n";
  auto r = Shared().Run(req);
  EXPECT_EQ(r.status, RunStatus::kRuntimeError);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(r.stdout_data, "42\n");
  EXPECT_NE(r.stderr_data.find("ValueError: boom"), std::string::npos) << r.stderr_data;
}

TEST(Sandbox, FilesGoInAndComeOutByteExact) {
  std::string binary;
  for (int i = 0; i < 256; ++i) binary += static_cast<char>(i);
  RunRequest req = Py(
      "data = open('in/blob.bin','rb').read()\n"
      "open('out.bin','wb').write(data[::-1])\n"
      "import os\nos.makedirs('d/e', exist_ok=True)\nopen('d/e/f.txt','w').write('nested')\n");
  req.files["in/blob.bin"] = binary;
  req.fetch_files = {"out.bin", "d/e/f.txt", "missing.txt"};
  auto r = Shared().Run(req);
  ASSERT_EQ(r.status, RunStatus::kOk) << r.message << r.stderr_data;
  std::string rev(binary.rbegin(), binary.rend());
  EXPECT_EQ(r.files["out.bin"], rev);
  EXPECT_EQ(r.files["d/e/f.txt"], "nested");
  EXPECT_EQ(r.files.count("missing.txt"), 0u);
  EXPECT_NE(r.message.find("missing.txt"), std::string::npos) << r.message;
}

TEST(Sandbox, WallClockLimitGivesTimeout) {
  auto r = Shared().Run(Py("import time\ntime.sleep(30)", /*wall_s=*/0.5));
  EXPECT_EQ(r.status, RunStatus::kTimeout) << r.message;
  EXPECT_LT(r.wall_s, 5.0);
  EXPECT_NE(r.message.find("wall-clock"), std::string::npos);
}

TEST(Sandbox, CpuLimitGivesTimeoutBeforeTheWallClock) {
  RunRequest req = Py("while True:\n    pass", /*wall_s=*/20);
  req.limits.cpu_s = 0.5;
  auto r = Shared().Run(req);
  EXPECT_EQ(r.status, RunStatus::kTimeout) << r.message;
  EXPECT_LT(r.wall_s, 15.0);
  EXPECT_GE(r.cpu_s, 0.4);
}

TEST(Sandbox, MemoryLimitGivesMemoryLimit) {
  RunRequest req = Py("x = bytearray(400 * 1024 * 1024)\nprint(len(x))");
  req.limits.memory_mb = 64;
  auto r = Shared().Run(req);
  EXPECT_EQ(r.status, RunStatus::kMemoryLimit) << r.message << r.stderr_data;
}

TEST(Sandbox, OutputCapTruncatesAndReportsOutputLimit) {
  RunRequest req = Py("import sys\nwhile True:\n    sys.stdout.write('x' * 4096)");
  req.limits.output_bytes = 10000;
  auto r = Shared().Run(req);
  EXPECT_EQ(r.status, RunStatus::kOutputLimit) << r.message;
  EXPECT_TRUE(r.stdout_truncated);
  EXPECT_EQ(r.stdout_data.size(), 10000u);
}

TEST(Sandbox, OutputExactlyAtTheCapIsNotTruncated) {
  RunRequest req = Py("import sys\nsys.stdout.write('y' * 5000)");
  req.limits.output_bytes = 5000;
  auto r = Shared().Run(req);
  EXPECT_EQ(r.status, RunStatus::kOk) << r.message;
  EXPECT_FALSE(r.stdout_truncated);
  EXPECT_EQ(r.stdout_data.size(), 5000u);
}

TEST(Sandbox, RejectsBadRequestsWithTheFieldName) {
  RunRequest lang = Py("print(1)");
  lang.language = "cobol";
  auto r = Shared().Run(lang);
  EXPECT_EQ(r.status, RunStatus::kSandboxError);
  EXPECT_NE(r.message.find("language"), std::string::npos) << r.message;

  RunRequest path = Py("print(1)");
  path.files["../escape"] = "x";
  r = Shared().Run(path);
  EXPECT_EQ(r.status, RunStatus::kSandboxError);
  EXPECT_NE(r.message.find("files"), std::string::npos) << r.message;

  RunRequest proc = Py("print(1)");
  proc.fetch_files = {"/proc/1/environ"};
  r = Shared().Run(proc);
  EXPECT_EQ(r.status, RunStatus::kSandboxError);
  EXPECT_NE(r.message.find("fetch_files"), std::string::npos) << r.message;

  RunRequest ro = Py("print(1)");
  ro.files["/usr/evil"] = "x";
  r = Shared().Run(ro);
  EXPECT_EQ(r.status, RunStatus::kSandboxError);
  EXPECT_NE(r.message.find("read-only"), std::string::npos) << r.message;

  // An absolute path names the sandbox's own root, never the host's.
  RunRequest abs = Py("print(1)");
  abs.fetch_files = {"/etc/passwd"};
  r = Shared().Run(abs);
  EXPECT_EQ(r.status, RunStatus::kOk) << r.message;
  EXPECT_NE(r.files["/etc/passwd"].find("sandbox:x:1000"), std::string::npos) << r.files["/etc/passwd"];
  EXPECT_EQ(r.files["/etc/passwd"].find("daemon"), std::string::npos);

  RunRequest lim = Py("print(1)");
  lim.limits.memory_mb = 1;
  r = Shared().Run(lim);
  EXPECT_EQ(r.status, RunStatus::kSandboxError);
  EXPECT_NE(r.message.find("memory_mb"), std::string::npos) << r.message;
}

TEST(Sandbox, EachRunGetsAFreshWorkDirAndRng) {
  auto a = Shared().Run(Py("import os, random\nopen('mark','w').write('1')\nprint(random.random())"));
  auto b = Shared().Run(Py("import os, random\nprint(os.path.exists('mark'))\nprint(random.random())"));
  ASSERT_EQ(a.status, RunStatus::kOk) << a.message << a.stderr_data;
  ASSERT_EQ(b.status, RunStatus::kOk) << b.message << b.stderr_data;
  auto lines = testing::Split(b.stdout_data, '\n');
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "False");
  EXPECT_NE(lines[1] + "\n", a.stdout_data) << "two runs drew the same random number";
}

TEST(Sandbox, RunsAsPid1UnprivilegedWithNoCapabilities) {
  auto r = Shared().Run(Py(
      "import os\nprint(os.getpid(), os.getuid(), os.geteuid())\n"
      "st = open('/proc/self/status').read()\n"
      "print([l.split()[1] for l in st.splitlines() if l.split()[0] in ('CapEff:','CapPrm:','CapBnd:','NoNewPrivs:','Seccomp:')])"));
  ASSERT_EQ(r.status, RunStatus::kOk) << r.stderr_data;
  EXPECT_EQ(r.stdout_data,
            "1 1000 1000\n['0000000000000000', '0000000000000000', '0000000000000000', '1', '2']\n");
}

// The warm pool (forked, pre-imported interpreter) must behave like a fresh python3 per run.
TEST(Sandbox, WarmPoolMatchesColdReference) {
  SandboxConfig cold_cfg = testing::TestConfig(/*slot=*/3);
  cold_cfg.warm = false;
  cold_cfg.workers = 1;
  auto cold = Sandbox::Create(cold_cfg);
  ASSERT_TRUE(cold.ok()) << cold.status().ToString();
  std::vector<RunRequest> programs = {
      Py("print(sum(range(10)))"),
      Py("import sys\nprint(__name__, sys.argv)\nsys.exit(2)"),
      Py("import json\nprint(json.dumps({'a': [1, 2]}))\nraise SystemExit('bye')"),
      Py("import os\nprint(sorted(os.listdir('.')), os.getcwd())"),
      Py("print(input()[::-1])"),
      Bash("echo $((6*7)); exit 5"),
      Py("import threading\nt = threading.Thread(target=lambda: print('thread'))\nt.start()"),
      Py("import atexit\natexit.register(lambda: print('atexit'))\nprint('main')"),
  };
  programs[4].stdin_data = "abc\n";
  for (const auto& p : programs) {
    auto w = Shared().Run(p);
    auto c = (*cold)->Run(p);
    EXPECT_EQ(w.status, c.status) << p.code << "\n" << w.message << " / " << c.message;
    EXPECT_EQ(w.exit_code, c.exit_code) << p.code;
    EXPECT_EQ(w.stdout_data, c.stdout_data) << p.code;
    EXPECT_EQ(w.stderr_data, c.stderr_data) << p.code;
  }
}

// A run without files drops its privileges in the zygote's native helper (C); a run with an input file
// goes through the Python reference path (run_program). Both must leave the program in the same state
// (ids, capabilities, no_new_privs, seccomp, rlimits, open fds, cwd, signals) and give the same results.
TEST(Sandbox, NativeFastPathMatchesPythonPath) {
  const std::string state_py =
      "import os, resource, signal\n"
      "st = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines())\n"
      "keys = ['Uid', 'Gid', 'Groups', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', "
      "'Seccomp', 'SigBlk', 'SigIgn']\n"
      "print({k: st[k].split() for k in keys})\n"
      "print([resource.getrlimit(r) for r in (resource.RLIMIT_CPU, resource.RLIMIT_NOFILE, "
      "resource.RLIMIT_CORE, resource.RLIMIT_FSIZE)])\n"
      "print(sorted(int(f) for f in os.listdir('/proc/self/fd')), os.getcwd(), os.getpid(), os.getsid(0))\n"
      "print(sorted(os.environ.items()))\n";
  std::vector<RunRequest> programs = {
      Py(state_py),
      Py("import sys\nprint(input()[::-1])\nsys.exit(4)"),
      Py("raise ValueError('boom')"),
      Bash("read x; echo \"$x$x\"; ls -l /proc/self/fd | wc -l; id -u; ulimit -n -t -c; grep -E "
           "'^(Cap|NoNewPrivs|Seccomp|SigIgn|SigBlk)' /proc/self/status; exit 7"),
  };
  programs[1].stdin_data = "abc\n";
  programs[3].stdin_data = "xy\n";
  for (const auto& p : programs) {
    RunRequest with_file = p;
    with_file.files["input.txt"] = "x";  // forces the Python path; the listing below ignores it
    auto fast = Shared().Run(p);
    auto slow = Shared().Run(with_file);
    EXPECT_EQ(fast.status, slow.status) << p.code << "\n" << fast.message << " / " << slow.message;
    EXPECT_EQ(fast.exit_code, slow.exit_code) << p.code;
    EXPECT_EQ(fast.stdout_data, slow.stdout_data) << p.code;
    EXPECT_EQ(fast.stderr_data, slow.stderr_data) << p.code;
  }
  auto r = Shared().Run(programs[0]);
  EXPECT_NE(r.stdout_data.find("'NoNewPrivs': ['1'], 'Seccomp': ['2']"), std::string::npos) << r.stdout_data;
  EXPECT_NE(r.stdout_data.find("[0, 1, 2, 3] /work 1 1"), std::string::npos) << r.stdout_data;  // 3: listdir's own fd
}

// The learned prefault (each run's child copies the pages that probe runs wrote, and maps the file pages
// they used, right after the fork) changes when pages are copied or mapped, never their content: runs give
// the same results with it off, with written pages only ("write") and with file pages too ("all", the
// default, used by Shared()).
TEST(Sandbox, LearnedPrefaultChangesNoResult) {
  auto info = json::parse(Shared().pool_info());
  ASSERT_EQ(info.size(), 2u) << info.dump();
  for (auto& z : info) {
    EXPECT_GT(z["pid"].get<int>(), 0) << info.dump();
    EXPECT_EQ(z["prefault"], 3) << info.dump();
    EXPECT_FALSE(z.contains("error")) << info.dump();
    // A print() run writes a few hundred of the zygote's pages; far fewer or thousands means the probe
    // report or the majority vote is wrong.
    EXPECT_GT(z["write_pages"].get<int>(), 30) << info.dump();
    EXPECT_LT(z["write_pages"].get<int>(), 2000) << info.dump();
    EXPECT_GT(z["read_pages"].get<int>(), 30) << info.dump();
    // The written pages are pinned in the zygote (copied by the fork) when io_uring is available, all of
    // them or none.
    const int pinned = z["pinned_pages"].get<int>();
    EXPECT_TRUE(pinned == 0 || pinned == z["write_pages"].get<int>()) << info.dump();
    // The learned file pages are mapped by the fork itself where the zygote could give their mappings an
    // anonymous page: at most all of them.
    EXPECT_GE(z["inherited_pages"].get<int>(), 0) << info.dump();
    EXPECT_LE(z["inherited_pages"].get<int>(), z["read_pages"].get<int>()) << info.dump();
  }
  SandboxConfig bad = testing::TestConfig(/*slot=*/4);
  bad.prefault = "fast";
  auto rejected = Sandbox::Create(bad);
  ASSERT_FALSE(rejected.ok());
  EXPECT_NE(rejected.status().message().find("sandbox.prefault"), std::string::npos) << rejected.status().ToString();
  SandboxConfig off_cfg = testing::TestConfig(/*slot=*/4), write_cfg = testing::TestConfig(/*slot=*/4);
  off_cfg.prefault = "off";
  write_cfg.prefault = "write";
  off_cfg.workers = write_cfg.workers = 1;
  auto off = Sandbox::Create(off_cfg);
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  auto off_info = json::parse((*off)->pool_info());
  EXPECT_EQ(off_info[0]["write_pages"], 0) << off_info.dump();
  EXPECT_EQ(off_info[0]["ranges"], 0) << off_info.dump();
  EXPECT_EQ(off_info[0]["pinned_pages"], 0) << off_info.dump();
  std::vector<RunRequest> programs = {
      Py("print(1)"),
      Py("import sys\nd = {i: str(i) * 3 for i in range(2000)}\nprint(len(d), sum(map(len, d.values())))\n"
         "print(input()[::-1])\nsys.exit(3)"),
      Py("import json, math\nclass A:\n    def __init__(s): s.x = [math.sqrt(i) for i in range(50)]\n"
         "print(json.dumps(round(sum(A().x), 6)))\nraise KeyError('k')"),
      Py("import threading\nt = threading.Thread(target=lambda: print('thread'))\nt.start()"),
      Py("import os\nst = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines())\n"
         "print([st[k].split() for k in ('Uid', 'CapEff', 'CapBnd', 'NoNewPrivs', 'Seccomp')], os.getpid())"),
      Bash("read x; echo \"$x$x\"; exit 7"),
  };
  programs[1].stdin_data = programs[5].stdin_data = "abc\n";
  std::vector<RunResult> ref;
  for (const auto& p : programs) ref.push_back((*off)->Run(p));
  off->reset();  // one extra sandbox at a time (slot 4)
  auto write = Sandbox::Create(write_cfg);
  ASSERT_TRUE(write.ok()) << write.status().ToString();
  auto write_info = json::parse((*write)->pool_info());
  EXPECT_EQ(write_info[0]["read_pages"], 0) << write_info.dump();
  EXPECT_EQ(write_info[0]["inherited_pages"], 0) << write_info.dump();
  EXPECT_GT(write_info[0]["write_pages"].get<int>(), 30) << write_info.dump();
  for (size_t i = 0; i < programs.size(); ++i) {
    const auto& p = programs[i];
    EXPECT_EQ(ref[i].status, i == 0 || i == 3 || i == 4 ? RunStatus::kOk : RunStatus::kRuntimeError) << p.code;
    for (auto* sb : {&Shared(), write->get()}) {
      auto r = sb->Run(p);
      EXPECT_EQ(r.status, ref[i].status) << p.code << "\n" << r.message << " / " << ref[i].message;
      EXPECT_EQ(r.exit_code, ref[i].exit_code) << p.code;
      EXPECT_EQ(r.stdout_data, ref[i].stdout_data) << p.code;
      EXPECT_EQ(r.stderr_data, ref[i].stderr_data) << p.code;
    }
  }
}

// On cgroup v1 the pids, cpu and cpuacct groups are reused by later runs (the memory group never is):
// a run's CPU time, processes and CPU bandwidth state do not carry over to the next run that gets them.
TEST(Sandbox, ReusedCgroupsCarryNothingToTheNextRun) {
  RunRequest burn = Py("import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4:\n    pass");
  burn.limits.cpus = 0.5;  // the run spends its bandwidth quota (50 ms per 100 ms period) and is throttled
  RunRequest quick = Py("print(1)");
  quick.limits.cpus = 0.5;
  for (int i = 0; i < 2; ++i) {
    auto b = Shared().Run(burn);
    ASSERT_EQ(b.status, RunStatus::kOk) << b.message << b.stderr_data;
    EXPECT_GE(b.cpu_s, 0.35);
    // Sequential runs get the set just returned: its usage restarts at zero.
    auto q = Shared().Run(quick);
    ASSERT_EQ(q.status, RunStatus::kOk) << q.message << q.stderr_data;
    EXPECT_LT(q.cpu_s, 0.3) << "CPU time of the previous run counted again";
    EXPECT_GT(q.cpu_s, 0.0);
  }
  testing::ExpectNoRunLeftovers(Shared());
}

// The deny list is split between the zygote's filter (loaded once, inherited by every run) and the small
// filter each run loads on top: the zygote's leaves the setup syscalls (unshare, setns, mount, hostname)
// to the run's, which denies them. Checked in a forked child of the test with syscalls whose outcome
// without a filter is known for any uid: unshare(0) succeeds, setns(-1) is EBADF, PTRACE_TRACEME succeeds.
TEST(Seccomp, RunFilterAddsWhatTheZygoteFilterLeavesForSetup) {
  auto f = detail::BuildSeccompFilters();
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_EQ(f->zygote.size() % 8, 0u);
  ASSERT_EQ(f->run.size() % 8, 0u);
  EXPECT_LT(f->run.size() / 8, 32u) << "the per-run filter should stay small (its cost grows with its size)";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto load = [](const std::string& bpf) {
      sock_fprog prog{static_cast<unsigned short>(bpf.size() / 8),
                      reinterpret_cast<sock_filter*>(const_cast<char*>(bpf.data()))};
      return ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0;
    };
    int fails = 0, check = 0;  // the number of the first failed check
    auto expect = [&](bool ok) { ++check; if (!ok && !fails) fails = check; };
    expect(::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
    expect(load(f->zygote));
    expect(::syscall(SYS_unshare, 0) == 0);
    expect(::syscall(SYS_setns, -1, 0) == -1 && errno == EBADF);
    expect(::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) == -1 && errno == EPERM);
    expect(load(f->run));
    expect(::syscall(SYS_unshare, 0) == -1 && errno == EPERM);
    expect(::syscall(SYS_setns, -1, 0) == -1 && errno == EPERM);
    expect(::ptrace(PTRACE_TRACEME, 0, nullptr, nullptr) == -1 && errno == EPERM);
    ::_exit(fails);
  }
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0) << "first failed check: " << WEXITSTATUS(st);
}

// The zygote's written pages are pinned so that each fork copies them into the child at once: the copies
// are the child's own. State that a run changes in the interpreter it inherited (module dicts, builtins,
// a preloaded module's attributes, the refcounts of shared objects) is never seen by a later run of the
// same zygote, and the zygote's pinning ring is not among the program's fds.
TEST(Sandbox, WritesToTheInheritedInterpreterStayInTheirRun) {
  RunRequest req = Py(
      "import sys, builtins, os\n"
      "print(getattr(sys, 'k2_mark', 0), getattr(builtins, 'k2_mark', 0), sys.getrefcount(None) > 0,\n"
      "      'k2_mark' in sys.modules, sorted(os.listdir('/proc/self/fd')))\n"
      "sys.k2_mark = builtins.k2_mark = 1\n"
      "sys.modules['k2_mark'] = sys\n"
      "junk = [None] * 100000\n");
  for (int i = 0; i < 6; ++i) {  // three runs per zygote of the shared pool
    auto r = Shared().Run(req);
    ASSERT_EQ(r.status, RunStatus::kOk) << r.message << r.stderr_data;
    EXPECT_EQ(r.stdout_data, "0 0 True False ['0', '1', '2', '3']\n") << "run " << i;
  }
}

// Each zygote reuses the network namespaces of finished runs (zygote_helper.c, "Network namespace pool").
// A reused one must look fresh: a run that leaves a TIME_WAIT connection behind makes the next run
// unshare a fresh namespace (a different inode), where it sees no socket and can bind the same port;
// concurrent runs never share one.
TEST(Sandbox, NetworkNamespacesAreReusedOnlyWhenNothingIsLeft) {
  SandboxConfig cfg = testing::TestConfig(/*slot=*/4);
  cfg.workers = 1;
  cfg.reuse_netns = true;  // opt-in (off by default: it carries packet counters over)
  cfg.preload = {};
  auto sb = Sandbox::Create(cfg);
  ASSERT_TRUE(sb.ok()) << sb.status().ToString();
  const std::string ns = "import os\nprint(os.readlink('/proc/self/ns/net'))\n";
  const std::string state =
      "st = open('/proc/net/sockstat').read().split()\n"
      "print('used', st[st.index('used') + 1], 'tw', st[st.index('tw') + 1])\n"
      "print(len(open('/proc/net/tcp').read().splitlines()) - 1, 'tcp sockets')\n";
  auto run = [&](const std::string& code) {
    auto r = (*sb)->Run(Py(code));
    EXPECT_EQ(r.status, RunStatus::kOk) << code << "\n" << r.message << r.stderr_data;
    return r.stdout_data;
  };
  std::vector<std::string> clean;
  for (int i = 0; i < 3; ++i) clean.push_back(run(ns + state));
  EXPECT_EQ(testing::Split(clean[1], '\n')[0], testing::Split(clean[2], '\n')[0]) << "no reuse: " << clean[1] << clean[2];
  for (auto& c : clean) EXPECT_NE(c.find("used 0 tw 0\n0 tcp sockets"), std::string::npos) << c;
  // The accepting side closes first: 127.0.0.1:5555 stays in TIME_WAIT after the run.
  std::string dirty = run(ns +
                          "import socket\ns = socket.socket()\ns.bind(('127.0.0.1', 5555))\ns.listen()\n"
                          "c = socket.create_connection(('127.0.0.1', 5555))\na, _ = s.accept()\na.close()\n"
                          "c.close()\ns.close()\n" + state);
  EXPECT_NE(dirty.find("tw 1"), std::string::npos) << dirty;
  std::string next = run(ns + "import socket\ns = socket.socket()\ns.bind(('127.0.0.1', 5555))\ns.listen()\n"
                              "print('bound')\ns.close()\n" + state);
  EXPECT_NE(testing::Split(next, '\n')[0], testing::Split(dirty, '\n')[0]) << "reused a namespace with a TIME_WAIT entry";
  EXPECT_NE(next.find("bound\nused 0 tw 0"), std::string::npos) << next;
  // Concurrent runs: one namespace each.
  std::vector<std::future<RunResult>> futs;
  for (int i = 0; i < 4; ++i) futs.push_back((*sb)->RunAsync(Py(ns + "import time\ntime.sleep(0.5)\n")));
  std::set<std::string> inodes;
  for (auto& f : futs) {
    auto r = f.get();
    EXPECT_EQ(r.status, RunStatus::kOk) << r.message << r.stderr_data;
    inodes.insert(r.stdout_data);
  }
  EXPECT_EQ(inodes.size(), 4u);
}

TEST(Sandbox, RunAsyncRunsConcurrently) {
  std::vector<std::future<RunResult>> futs;
  for (int i = 0; i < 8; ++i) {
    futs.push_back(Shared().RunAsync(Py("import time\ntime.sleep(0.5)\nprint(" + std::to_string(i) + ")")));
  }
  for (int i = 0; i < 8; ++i) {
    auto r = futs[i].get();
    EXPECT_EQ(r.status, RunStatus::kOk) << r.message;
    EXPECT_EQ(r.stdout_data, std::to_string(i) + "\n");
  }
}

TEST(Sandbox, DestructionRemovesZygotesCgroupsAndRootDir) {
  std::string mounts_before = testing::MountTable();
  SandboxConfig cfg = testing::TestConfig(/*slot=*/2);  // its zygotes can be told from the shared ones
  const int64_t base = cfg.host_uid_base;
  auto sb = Sandbox::Create(cfg);
  ASSERT_TRUE(sb.ok()) << sb.status().ToString();
  auto r = (*sb)->RunAsync(Py("import time\ntime.sleep(60)", 60));  // in flight at destruction
  auto r2 = (*sb)->Run(Bash("sleep 100 & echo started"));
  EXPECT_EQ(r2.status, RunStatus::kOk) << r2.message;
  std::string cg = (*sb)->cgroup_dirs(), root = (*sb)->root_dir();
  EXPECT_FALSE(testing::HostPidsWithUid(base, base).empty()) << "zygotes should run as the base uid";
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // Destruction waits for the in-flight run (its zygote is killed, so it ends at once).
  std::thread killer([&] { sb->reset(); });
  auto res = r.get();
  killer.join();
  EXPECT_NE(res.status, RunStatus::kOk);
  EXPECT_TRUE(testing::HostPidsWithUid(base, base + 9999).empty());
  for (auto& d : testing::Split(cg, ':')) EXPECT_FALSE(testing::PathExists(d)) << d;
  EXPECT_FALSE(testing::PathExists(root)) << root;
  EXPECT_EQ(testing::MountTable(), mounts_before);
}

// Regression: a host killed by SIGKILL (no destructors) left its cgroup tree and mountpoint dir behind.
TEST(Sandbox, CreateRemovesWhatDeadHostsLeftBehind) {
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ASSERT_GT(dead, 0);
  ::waitpid(dead, nullptr, 0);
  const std::string tag = "k2gym-sandbox-" + std::to_string(dead) + "-0";
  std::vector<std::string> stale;
  for (auto& base : testing::Split(Shared().cgroup_dirs(), ':')) {
    std::string d = base.substr(0, base.rfind('/')) + "/" + tag;
    if (std::find(stale.begin(), stale.end(), d) != stale.end()) continue;
    ASSERT_EQ(::mkdir(d.c_str(), 0755), 0) << d;
    ASSERT_EQ(::mkdir((d + "/run-7").c_str(), 0755), 0) << d;
    stale.push_back(d);
  }
  std::string tmp = "/tmp/k2gym-sandbox-" + std::to_string(dead) + "-stale1";
  ASSERT_EQ(::mkdir(tmp.c_str(), 0755), 0);
  SandboxConfig cfg = testing::TestConfig(/*slot=*/3);
  cfg.workers = 1;
  auto sb = Sandbox::Create(cfg);
  ASSERT_TRUE(sb.ok()) << sb.status().ToString();
  for (auto& d : stale) EXPECT_FALSE(testing::PathExists(d)) << d;
  EXPECT_FALSE(testing::PathExists(tmp));
}

TEST(Base64, RoundTripsAllLengthsAndRejectsGarbage) {
  std::string s;
  for (int n = 0; n < 70; ++n) {
    auto enc = Base64Encode(s);
    EXPECT_EQ(enc.size() % 4, 0u);
    auto dec = Base64Decode(enc);
    ASSERT_TRUE(dec.ok()) << dec.status().ToString();
    EXPECT_EQ(*dec, s);
    s += static_cast<char>((n * 37) & 255);
  }
  EXPECT_EQ(Base64Encode("hello"), "aGVsbG8=");
  EXPECT_FALSE(Base64Decode("aGVsbG8").ok());
  EXPECT_FALSE(Base64Decode("aG!sbG8=").ok());
  EXPECT_FALSE(Base64Decode("a=Vs").ok());
}

}  // namespace
}  // namespace k2::sandbox
