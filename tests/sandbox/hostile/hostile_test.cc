// The hostile-program suite: each attack must be contained, reported with the right status, leave the
// host untouched and the sandbox serving; the last test checks that nothing at all is left behind.
#include <arpa/inet.h>
#include <fcntl.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <future>
#include <thread>

#include "sandbox/sandbox.h"
#include "tests/sandbox/sandbox_test.h"

namespace k2::sandbox {
namespace {

using testing::Bash;
using testing::Py;

// One sandbox for the suite; a canary run after each attack proves it still serves.
class Hostile : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    mounts_before_ = new std::string(testing::MountTable());
    SandboxConfig cfg = testing::TestConfig(/*slot=*/1);
    auto s = Sandbox::Create(cfg);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    sb_ = s->release();
  }
  static void TearDownTestSuite() {
    delete sb_;
    sb_ = nullptr;
  }
  void TearDown() override {
    auto canary = sb_->Run(Py("print('alive')"));
    EXPECT_EQ(canary.status, RunStatus::kOk) << canary.message << canary.stderr_data;
    EXPECT_EQ(canary.stdout_data, "alive\n");
    testing::ExpectNoRunLeftovers(*sb_);
  }
  static RunResult Run(RunRequest r) {
    r.limits.memory_mb = std::min<int64_t>(r.limits.memory_mb, 128);
    r.limits.pids = std::min(r.limits.pids, 32);
    return sb_->Run(r);
  }
  static Sandbox* sb_;
  static std::string* mounts_before_;
};
Sandbox* Hostile::sb_ = nullptr;
std::string* Hostile::mounts_before_ = nullptr;

TEST_F(Hostile, ForkBombIsBoundedByThePidsLimit) {
  auto r = Run(Py("import os\nn = 0\nwhile True:\n    try:\n        os.fork(); n += 1\n    except OSError:\n        pass", 2));
  EXPECT_EQ(r.status, RunStatus::kTimeout) << r.message;
  auto b = Run(Bash(":(){ :|:& };:; sleep 1; echo done", 3));
  EXPECT_NE(b.status, RunStatus::kSandboxError) << b.message;
  EXPECT_LT(b.wall_s, 8.0);
}

TEST_F(Hostile, MemoryBombIsKilled) {
  auto r = Run(Py("a = []\nwhile True:\n    a.append(bytearray(1 << 20))", 10));
  EXPECT_EQ(r.status, RunStatus::kMemoryLimit) << r.message << r.stderr_data;
  auto b = Run(Bash("x=a; while true; do x=$x$x; done", 10));
  EXPECT_EQ(b.status, RunStatus::kMemoryLimit) << b.message << b.stderr_data;
}

TEST_F(Hostile, CpuSpinIsStoppedByTheCpuLimit) {
  RunRequest req = Py("while True: pass", 30);
  req.limits.cpu_s = 1;
  auto r = Run(req);
  EXPECT_EQ(r.status, RunStatus::kTimeout) << r.message;
  EXPECT_LT(r.wall_s, 20);
}

TEST_F(Hostile, SleepForeverIsStoppedByTheWallClock) {
  auto r = Run(Bash("sleep infinity", 1));
  EXPECT_EQ(r.status, RunStatus::kTimeout) << r.message;
  EXPECT_LT(r.wall_s, 5);
}

TEST_F(Hostile, AGigabyteOfOutputIsCappedAndStopped) {
  RunRequest req = Bash("head -c 1000000000 /dev/zero; echo end", 30);
  req.limits.output_bytes = 1 << 20;
  auto r = Run(req);
  EXPECT_EQ(r.status, RunStatus::kOutputLimit) << r.message;
  EXPECT_TRUE(r.stdout_truncated);
  EXPECT_EQ(r.stdout_data.size(), size_t{1} << 20);
  EXPECT_LT(r.wall_s, 20);
  RunRequest err = Py("import sys\nwhile True: sys.stderr.write('e' * 65536)", 30);
  err.limits.output_bytes = 1000;
  auto e = Run(err);
  EXPECT_EQ(e.status, RunStatus::kOutputLimit);
  EXPECT_TRUE(e.stderr_truncated);
}

TEST_F(Hostile, WritesOutsideTheWorkDirFail) {
  std::string marker = std::string(K2GYM_BINARY_DIR) + "/hostile_marker";
  ::unlink(marker.c_str());
  auto r = Run(Py(
      "import os\nok = []\n"
      "for p in ['/usr/evil', '/etc/evil', '/evil', '/proc/sys/kernel/hostname', '/dev/evil', '" + marker + "']:\n"
      "    try:\n        open(p, 'w').write('x'); ok.append(p)\n    except OSError:\n        pass\n"
      "print(ok)\nopen('/work/fine', 'w').write('ok')\nopen('/tmp/fine', 'w').write('ok')\nprint('wrote')"));
  EXPECT_EQ(r.status, RunStatus::kOk) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "[]\nwrote\n");
  EXPECT_FALSE(testing::PathExists(marker));
  EXPECT_FALSE(testing::PathExists("/usr/evil"));
}

TEST_F(Hostile, SecretsAndTheProjectAreNotVisible) {
  std::string project_file = std::string(K2GYM_SOURCE_DIR) + "/CMakeLists.txt";
  ASSERT_TRUE(testing::PathExists(project_file));
  auto r = Run(Py(
      "import os\nseen = []\n"
      "for p in ['/etc/shadow', '/etc/gshadow', '/root/.bashrc', '/home', '/proc/1/environ', '" + project_file + "', '" +
      std::string(K2GYM_SOURCE_DIR) + "', '/sys/fs/cgroup', '/proc/kcore', '/dev/mem', '/dev/sda', '/dev/vda']:\n"
      "    try:\n        os.listdir(p) if os.path.isdir(p) else open(p, 'rb').read(1); seen.append(p)\n"
      "    except OSError:\n        pass\n"
      "print(seen)"));
  EXPECT_EQ(r.status, RunStatus::kOk) << r.stderr_data;
  // Even /proc/1/environ (the program's own: it is PID 1) is closed: setuid made it non-dumpable.
  EXPECT_EQ(r.stdout_data, "[]\n");
}

TEST_F(Hostile, NoNetworkButLoopback) {
  // A listener on the host's loopback must be unreachable from inside (separate network namespace).
  int ls = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(ls, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(ls, 4), 0);
  socklen_t len = sizeof a;
  ::getsockname(ls, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  auto r = Run(Py(
      "import socket\nres = []\n"
      "def tcp(h, p):\n    s = socket.socket(); s.settimeout(1)\n    try:\n        s.connect((h, p)); return 'open'\n"
      "    except OSError as e:\n        return 'blocked'\n"
      "res.append(tcp('127.0.0.1', " + std::to_string(port) + "))\n"
      "res.append(tcp('1.1.1.1', 53))\nres.append(tcp('10.0.2.2', 80))\n"
      "u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
      "try:\n    u.sendto(b'x', ('8.8.8.8', 53)); res.append('udp sent')\nexcept OSError:\n    res.append('blocked')\n"
      "try:\n    socket.getaddrinfo('example.com', 80); res.append('dns')\nexcept OSError:\n    res.append('blocked')\n"
      "srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)\n"
      "c = socket.create_connection(srv.getsockname()); res.append('loopback ok')\n"
      "print(res)",
      10));
  ::close(ls);
  EXPECT_EQ(r.status, RunStatus::kOk) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "['blocked', 'blocked', 'blocked', 'blocked', 'blocked', 'loopback ok']\n");
}

TEST_F(Hostile, PtraceAndNewUserNamespacesAreDenied) {
  auto r = Run(Py(
      "import ctypes, os, subprocess\nlibc = ctypes.CDLL(None, use_errno=True)\n"
      "child = subprocess.Popen(['sleep', '5'])\n"
      "rc = libc.ptrace(16, child.pid, 0, 0)\nprint('ptrace', rc, ctypes.get_errno())\n"
      "child.kill()\n"
      "print('unshare', libc.unshare(0x10000000), ctypes.get_errno())\n"
      "p = subprocess.run(['unshare', '-U', 'true'], capture_output=True)\nprint('unshare(1)', p.returncode != 0)\n"
      "p = subprocess.run(['strace', '-o', '/dev/null', 'true'], capture_output=True)\nprint('strace', p.returncode != 0)\n"
      "print('mount', libc.mount(b'tmpfs', b'/tmp', b'tmpfs', 0, None), ctypes.get_errno())\n"
      "print('bpf', libc.syscall(321, 0, 0, 0), ctypes.get_errno())\n"
      "print('io_uring', libc.syscall(425, 1, 0), ctypes.get_errno())\n"
      "print('keyctl', libc.syscall(250, 0, 0), ctypes.get_errno())\n"
      "print('perf', libc.syscall(298, 0, 0, -1, -1, 0), ctypes.get_errno())\n",
      10));
  EXPECT_EQ(r.status, RunStatus::kOk) << r.stderr_data;
  EXPECT_EQ(r.stdout_data,
            "ptrace -1 1\nunshare -1 1\nunshare(1) True\nstrace True\nmount -1 1\nbpf -1 1\nio_uring -1 1\n"
            "keyctl -1 1\nperf -1 1\n");
}

TEST_F(Hostile, KillEverythingOnlyKillsTheRunItself) {
  auto r = Run(Bash("sleep 100 & kill -9 -1; echo after", 5));
  EXPECT_EQ(r.status, RunStatus::kOk) << r.message;
  EXPECT_EQ(r.stdout_data, "after\n");
  // Signalling every pid number, the parent (0 inside) and PID 1's parent is harmless too.
  auto s = Run(Py("import os, signal\nn = 0\nfor pid in range(2, 70000):\n    try:\n        os.kill(pid, signal.SIGKILL); n += 1\n"
                  "    except OSError:\n        pass\nprint(n, os.getppid())", 20));
  EXPECT_EQ(s.status, RunStatus::kOk) << s.message;
  EXPECT_EQ(s.stdout_data, "0 0\n");
}

TEST_F(Hostile, SetuidBinariesGiveNoPrivileges) {
  auto r = Run(Bash("ls -l /usr/bin/passwd | cut -c1-10; su -c id root </dev/null 2>/dev/null; echo su=$?; "
                    "mount -t tmpfs x /tmp 2>/dev/null; echo mount=$?; id -u",
                    10));
  EXPECT_EQ(r.status, RunStatus::kOk) << r.stderr_data;
  EXPECT_EQ(r.stdout_data.find("su=0"), std::string::npos) << r.stdout_data;
  EXPECT_EQ(r.stdout_data.find("uid=0"), std::string::npos) << r.stdout_data;
  EXPECT_EQ(r.stdout_data.find("mount=0"), std::string::npos) << r.stdout_data;
  EXPECT_NE(r.stdout_data.find("\n1000\n"), std::string::npos) << r.stdout_data;
}

TEST_F(Hostile, SymlinkAndHardlinkEscapesFail) {
  RunRequest req = Py(
      "import os\nos.symlink('/etc/passwd', 'link')\nos.symlink('/proc/self/environ', 'env')\n"
      "os.makedirs('d'); os.symlink('/usr/bin', 'd/up')\nres = []\n"
      "for src in ['/usr/bin/python3', '/etc/passwd']:\n"
      "    try:\n        os.link(src, 'hard'); res.append('linked')\n    except OSError:\n        res.append('blocked')\n"
      "print(res)");
  req.fetch_files = {"link", "env", "d/up/python3"};
  auto r = Run(req);
  EXPECT_EQ(r.status, RunStatus::kOk) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "['blocked', 'blocked']\n");
  EXPECT_TRUE(r.files.empty()) << "a fetched symlink was followed";
  EXPECT_NE(r.message.find("link"), std::string::npos) << r.message;
}

TEST_F(Hostile, ProcShowsOnlyTheRunsOwnProcesses) {
  auto r = Run(Py("import os\npids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
                  "cmds = [open('/proc/%d/cmdline' % p, 'rb').read() for p in pids]\n"
                  "print(pids, any(b'sandbox_' in c for c in cmds))"));
  EXPECT_EQ(r.status, RunStatus::kOk) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "[1] False\n");
}

TEST_F(Hostile, OrphansAndZombiesDieWithTheRun) {
  auto r = Run(Bash("(setsid sleep 1000 &) ; (sleep 1000 &); for i in 1 2 3; do (exit 0) & done; echo bye", 5));
  EXPECT_EQ(r.status, RunStatus::kOk) << r.message;
  EXPECT_EQ(r.stdout_data, "bye\n");
  // TearDown checks that no process with the program's uid is left on the host.
}

TEST_F(Hostile, FillingTmpStopsAtTheTmpfsCap) {
  RunRequest req = Bash("dd if=/dev/zero of=/tmp/fill bs=1M count=100000 2>/dev/null; echo rc=$?; "
                        "du -m /tmp/fill | cut -f1", 20);
  req.limits.tmpfs_mb = 8;
  auto r = Run(req);
  EXPECT_EQ(r.status, RunStatus::kOk) << r.message << r.stderr_data;
  EXPECT_NE(r.stdout_data.find("rc=1"), std::string::npos) << r.stdout_data;
  EXPECT_NE(r.stdout_data.find("\n8\n"), std::string::npos) << r.stdout_data;
}

TEST_F(Hostile, ExhaustingFileDescriptorsHitsRlimit) {
  RunRequest req = Py("import os\nfds = []\ntry:\n    while True: fds.append(os.open('/dev/null', os.O_RDONLY))\n"
                      "except OSError as e:\n    print(len(fds) < 64, e.errno)");
  req.limits.open_files = 64;
  auto r = Run(req);
  EXPECT_EQ(r.status, RunStatus::kOk) << r.stderr_data;
  EXPECT_EQ(r.stdout_data, "True 24\n");
}

TEST_F(Hostile, AHundredConcurrentHostileRuns) {
  const std::vector<RunRequest> attacks = {
      Py("import os\nwhile True:\n    try: os.fork()\n    except OSError: pass", 2),
      // Generous walls for the attacks that must hit another limit: 64 runs share 2 cores here.
      Py("a = []\nwhile True: a.append(bytearray(32 << 20))", 60),
      Py("while True: pass", 2),
      Bash("sleep 100", 1),
      Bash("yes", 60),
  };
  const RunStatus expected[] = {RunStatus::kTimeout, RunStatus::kMemoryLimit, RunStatus::kTimeout, RunStatus::kTimeout,
                                RunStatus::kOutputLimit};
  std::vector<std::future<RunResult>> futs;
  for (int i = 0; i < 100; ++i) {
    RunRequest r = attacks[i % attacks.size()];
    r.limits.memory_mb = 64;
    r.limits.pids = 16;
    r.limits.cpu_s = 1;
    r.limits.cpus = 0.5;
    r.limits.output_bytes = 1 << 16;
    futs.push_back(sb_->RunAsync(r));
  }
  for (int i = 0; i < 100; ++i) {
    auto r = futs[i].get();
    EXPECT_EQ(r.status, expected[i % attacks.size()]) << i << ": " << r.message << r.stderr_data.substr(0, 200);
  }
}

// The assert harness's pass nonce: a program that looks for it everywhere it could be (every fd,
// including pread at offset 0 of stdin's memfd, /proc/self/fd and /proc/self/fdinfo, sys.stdin, the
// environment, every str/bytes object of the interpreter) and prints what it finds, then exits before
// the tests, must not pass. Against an earlier harness (nonce left on stdin until the end) the fd scan
// alone passed; now the program runs in a process forked before the nonce was read.
TEST_F(Hostile, AssertNonceCannotBeReadFromFdsOrProc) {
  const std::string scan =
      "import os, sys, gc, re\n"
      "found = set()\n"
      "def look(b):\n"
      "    if isinstance(b, str): b = b.encode('latin-1', 'replace')\n"
      "    found.update(re.findall(rb'[0-9a-f]{32}', b))\n"
      "for fd in range(1024):\n"
      "    for f in (lambda: os.pread(fd, 1 << 16, 0), lambda: os.set_blocking(fd, False) or os.read(fd, 1 << 16)):\n"
      "        try: look(f())\n"
      "        except Exception: pass\n"
      "for d in ('/proc/self/fd', '/proc/self/fdinfo'):\n"
      "    for name in os.listdir(d):\n"
      "        try:\n"
      "            fd = os.open(os.path.join(d, name), os.O_RDONLY | os.O_NONBLOCK)\n"
      "            look(os.read(fd, 1 << 16))\n"
      "            os.close(fd)\n"
      "        except Exception: pass\n"
      "try: look(sys.stdin.read())\n"
      "except Exception: pass\n"
      "look(repr(dict(os.environ)))\n"
      "for o in gc.get_objects():\n"
      "    for v in ([o] if isinstance(o, (str, bytes)) else (o.values() if isinstance(o, dict) else o if isinstance(o, (list, tuple)) else [])):\n"
      "        if isinstance(v, (str, bytes, bytearray)) and len(v) < 4096: look(bytes(v) if not isinstance(v, str) else v)\n"
      "for b in found: print(b.decode())\n"
      "sys.stdout.flush()\n"
      "os._exit(0)\n"
      "def add(a, b): return 0\n";
  Limits lim;
  lim.wall_s = 20;
  lim.cpu_s = 20;
  auto r = RunAssertTests(*sb_, "python", scan, "assert add(2, 3) == 5\n", lim);
  // The scan ran to its os._exit(0) in the program's process (the harness saw it end before the tests).
  EXPECT_NE(r.run.stderr_data.find("[k2 harness] exit"), std::string::npos) << r.run.message << r.run.stderr_data;
  EXPECT_EQ(r.status, CaseStatus::kFailed) << r.detail << "\nfound:\n" << r.run.stdout_data;
  // The control: the same tests pass with an honest program, so the harness still works.
  auto ok = RunAssertTests(*sb_, "python", "def add(a, b): return a + b\n", "assert add(2, 3) == 5\n", lim);
  EXPECT_EQ(ok.status, CaseStatus::kPassed) << ok.detail << ok.run.stderr_data;
}

// Waits until a process of the running program (host uid base+1000) has created /work/<flag> (seen
// through its /proc/<pid>/root), i.e. until the run holds what it exhausted; false after 20 s.
bool WaitForRunFlag(Sandbox& sb, const std::string& flag) {
  const int64_t uid = sb.config().host_uid_base + 1000;
  for (int i = 0; i < 2000; ++i) {
    for (int pid : testing::HostPidsWithUid(uid, uid)) {
      struct stat st;
      if (::stat(("/proc/" + std::to_string(pid) + "/root/work/" + flag).c_str(), &st) == 0) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// A run that holds every inotify instance it can get must not take host root's: the zygote's user
// namespace is owned by the dedicated uid, so its runs are charged to that uid, not to root.
TEST_F(Hostile, InotifyExhaustionInARunLeavesHostRootsInstances) {
  auto fut = std::async(std::launch::async, [] {
    return Run(Py("import ctypes, os, time\nlibc = ctypes.CDLL(None, use_errno=True)\nfds = []\n"
                  "while len(fds) < 100000:\n    fd = libc.inotify_init1(0)\n    if fd < 0: break\n    fds.append(fd)\n"
                  "err = ctypes.get_errno()\nopen('/work/ready', 'w').close()\ntime.sleep(3)\n"
                  "print(len(fds), os.strerror(err))\n", 20));
  });
  ASSERT_TRUE(WaitForRunFlag(*sb_, "ready"));
  int fd = ::inotify_init1(IN_CLOEXEC);
  int err = errno;
  EXPECT_GE(fd, 0) << "host root's inotify_init1 failed while a run held its instances: " << std::strerror(err);
  if (fd >= 0) ::close(fd);
  RunResult r = fut.get();
  ASSERT_EQ(r.status, RunStatus::kOk) << r.message << r.stderr_data;
  // The run did exhaust its own limit (the host's per-user default is 128).
  EXPECT_NE(r.stdout_data.find("Too many open files"), std::string::npos) << r.stdout_data;
  EXPECT_GE(std::atoi(r.stdout_data.c_str()), 64) << r.stdout_data;
}

// Same for POSIX message queues (RLIMIT_MSGQUEUE bytes): nine 80 KiB queues used to exhaust root's.
TEST_F(Hostile, MessageQueueExhaustionInARunLeavesHostRootsQuota) {
  auto fut = std::async(std::launch::async, [] {
    return Run(Py("import ctypes, os, time\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                  "class Attr(ctypes.Structure):\n    _fields_ = [('f', ctypes.c_long), ('maxmsg', ctypes.c_long), "
                  "('msgsize', ctypes.c_long), ('cur', ctypes.c_long), ('pad', ctypes.c_long * 4)]\n"
                  "libc.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.POINTER(Attr)]\n"
                  "a = Attr(0, 10, 8192, 0)\nqs = []\n"
                  "while len(qs) < 1000:\n    q = libc.mq_open(b'/k2q%d' % len(qs), os.O_CREAT | os.O_RDWR, 0o600, ctypes.byref(a))\n"
                  "    if q < 0: break\n    qs.append(q)\n"
                  "err = ctypes.get_errno()\nopen('/work/ready', 'w').close()\ntime.sleep(3)\n"
                  "print(len(qs), os.strerror(err))\n", 20));
  });
  ASSERT_TRUE(WaitForRunFlag(*sb_, "ready"));
  mq_attr attr{};
  attr.mq_maxmsg = 10;
  attr.mq_msgsize = 8192;
  const std::string name = "/k2gym-hostile-test-" + std::to_string(::getpid());
  mqd_t q = ::mq_open(name.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0600, &attr);
  int err = errno;
  EXPECT_NE(q, static_cast<mqd_t>(-1)) << "host root's mq_open failed while a run held its queues: " << std::strerror(err);
  if (q != static_cast<mqd_t>(-1)) {
    ::mq_close(q);
    ::mq_unlink(name.c_str());
  }
  RunResult r = fut.get();
  ASSERT_EQ(r.status, RunStatus::kOk) << r.message << r.stderr_data;
  EXPECT_NE(r.stdout_data.find("Too many open files"), std::string::npos) << r.stdout_data;
  EXPECT_GE(std::atoi(r.stdout_data.c_str()), 1) << r.stdout_data;
}

// No counter carries over between runs: one run sends 4242 loopback datagrams, the next (same zygote)
// reads its network namespace's counters and sees none of them.
TEST_F(Hostile, SecondRunSeesZeroNetworkCounters) {
  SandboxConfig cfg = testing::TestConfig(/*slot=*/2);
  cfg.workers = 1;
  cfg.preload = {};
  auto sb = Sandbox::Create(cfg);
  ASSERT_TRUE(sb.ok()) << sb.status().ToString();
  const std::string counters =
      "snmp = open('/proc/net/snmp').read().splitlines()\n"
      "udp = [l.split() for l in snmp if l.startswith('Udp:')]\n"
      "print('udp_out', udp[1][udp[0].index('OutDatagrams')])\n"
      "dev = [l.split() for l in open('/proc/net/dev').read().splitlines() if l.strip().startswith('lo:')]\n"
      "print('lo_rx_packets', dev[0][2])\n";
  auto first = (*sb)->Run(Py("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                             "for i in range(4242): s.sendto(b'x', ('127.0.0.1', 9))\n" + counters));
  ASSERT_EQ(first.status, RunStatus::kOk) << first.message << first.stderr_data;
  EXPECT_NE(first.stdout_data.find("udp_out 4242"), std::string::npos) << first.stdout_data;
  for (int i = 0; i < 3; ++i) {
    auto next = (*sb)->Run(Py(counters));
    ASSERT_EQ(next.status, RunStatus::kOk) << next.message << next.stderr_data;
    EXPECT_EQ(next.stdout_data, "udp_out 0\nlo_rx_packets 0\n");
  }
}

// AF_VSOCK is not isolated by network namespaces, so seccomp refuses it (and every family a program
// does not need); AF_UNIX, AF_INET and AF_INET6 still work.
TEST_F(Hostile, VsockAndOtherAddressFamiliesAreRefused) {
  auto r = Run(Py("import socket, errno\n"
                  "for fam in ('AF_VSOCK', 'AF_NETLINK', 'AF_PACKET', 'AF_KEY', 'AF_ALG', 'AF_TIPC', 'AF_BLUETOOTH'):\n"
                  "    try:\n        socket.socket(getattr(socket, fam), socket.SOCK_DGRAM if fam != 'AF_ALG' else socket.SOCK_SEQPACKET)\n"
                  "        print(fam, 'opened')\n"
                  "    except OSError as e:\n        print(fam, errno.errorcode.get(e.errno))\n"
                  "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                  "print('raw 40|1<<32', libc.syscall(41, (1 << 32) | 40, 1, 0), ctypes.get_errno() == errno.EAFNOSUPPORT)\n"
                  "for fam in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6):\n"
                  "    socket.socket(fam, socket.SOCK_STREAM).close()\n"
                  "print('inet ok')\n"));
  ASSERT_EQ(r.status, RunStatus::kOk) << r.message << r.stderr_data;
  for (const char* fam : {"AF_VSOCK", "AF_NETLINK", "AF_PACKET", "AF_KEY", "AF_ALG", "AF_TIPC", "AF_BLUETOOTH"}) {
    EXPECT_NE(r.stdout_data.find(std::string(fam) + " EAFNOSUPPORT"), std::string::npos) << fam << "\n" << r.stdout_data;
  }
  EXPECT_NE(r.stdout_data.find("raw 40|1<<32 -1 True"), std::string::npos) << r.stdout_data;
  EXPECT_NE(r.stdout_data.find("inet ok"), std::string::npos) << r.stdout_data;
}

TEST_F(Hostile, ZzNothingIsLeftBehindAfterTheSuite) {
  std::string cg = sb_->cgroup_dirs(), root = sb_->root_dir();
  const int64_t base = sb_->config().host_uid_base;
  delete sb_;
  auto s = Sandbox::Create(testing::TestConfig(/*slot=*/4));  // TearDown's canary needs a sandbox
  ASSERT_TRUE(s.ok());
  sb_ = s->release();
  EXPECT_TRUE(testing::HostPidsWithUid(base, base + 9999).empty()) << "sandbox processes left";
  for (auto& d : testing::Split(cg, ':')) EXPECT_FALSE(testing::PathExists(d)) << "cgroup left: " << d;
  EXPECT_FALSE(testing::PathExists(root)) << "temp dir left: " << root;
  EXPECT_EQ(testing::MountTable(), *mounts_before_) << "host mount table changed";
}

}  // namespace
}  // namespace k2::sandbox
