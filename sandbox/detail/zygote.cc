// Starting a zygote: clone(2) into new namespaces, map uids, build a minimal read-only root with
// pivot_root, then exec python3 with the zygote script. The child side only makes raw syscalls on
// data prepared by the parent, because the host may be multithreaded (no malloc after clone).
#include "sandbox/detail/zygote.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/json.h"

namespace k2::sandbox::detail {
namespace {

// One setup step of the child, prepared by the parent.
struct Op {
  enum Kind { kMkdir, kSymlink, kTouch, kWrite, kMount, kPivot, kChdir, kUmountDetach, kRmdir, kHostname };
  Kind kind;
  std::string a, b, c, d;
  unsigned long flags = 0;
  const char* what = "";
};

// Async-signal-safe error report: "<what>: errno N" to fd, then _exit.
[[noreturn]] void ChildDie(int fd, const char* what) {
  int e = errno;
  char buf[256];
  size_t n = 0;
  for (const char* p = what; *p && n < 200; ++p) buf[n++] = *p;
  const char* sep = ": errno ";
  for (const char* p = sep; *p; ++p) buf[n++] = *p;
  char digits[16];
  int k = 0;
  do { digits[k++] = static_cast<char>('0' + e % 10); e /= 10; } while (e && k < 15);
  while (k) buf[n++] = digits[--k];
  (void)!::write(fd, buf, n);
  ::_exit(127);
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Mount flags a bind of `path` must keep when remounted read-only inside a user namespace (the kernel
// locks the atime/nosuid/nodev/noexec flags of mounts inherited from a more privileged namespace).
unsigned long LockedFlags(const std::string& path) {
  struct statvfs sv;
  if (::statvfs(path.c_str(), &sv) != 0) return 0;
  unsigned long f = 0;
  if (sv.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV) f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

std::vector<Op> BuildOps(const ZygoteOptions& o) {
  std::vector<Op> ops;
  const std::string& r = o.root_dir;
  ops.push_back({Op::kMount, "", "/", "", "", MS_REC | MS_PRIVATE, "make / private"});
  ops.push_back({Op::kMount, "tmpfs", r, "tmpfs", "size=4m,nr_inodes=4096,mode=0755", MS_NOSUID | MS_NODEV, "mount root tmpfs"});
  for (const char* d : {"/etc", "/dev", "/proc", "/work", "/tmp", "/mnt", "/.old"}) {
    ops.push_back({Op::kMkdir, r + d, "", "", "", 0755, "mkdir"});
  }
  for (const auto& src : o.ro_binds) {
    struct stat st;
    if (src.empty() || src[0] != '/' || ::lstat(src.c_str(), &st) != 0) continue;
    std::string dst = r + src;
    // Parents of nested binds (e.g. /etc/alternatives) are created on the fly.
    for (size_t pos = r.size() + 1; (pos = dst.find('/', pos)) != std::string::npos; ++pos) {
      ops.push_back({Op::kMkdir, dst.substr(0, pos), "", "", "", 0755, "mkdir parent"});
    }
    if (S_ISLNK(st.st_mode)) {
      char target[4096];
      ssize_t n = ::readlink(src.c_str(), target, sizeof target - 1);
      if (n <= 0) continue;
      ops.push_back({Op::kSymlink, std::string(target, static_cast<size_t>(n)), dst, "", "", 0, "symlink"});
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      ops.push_back({Op::kMkdir, dst, "", "", "", 0755, "mkdir bind target"});
    } else {
      ops.push_back({Op::kTouch, dst, "", "", "", 0644, "create bind target"});
    }
    ops.push_back({Op::kMount, src, dst, "", "", MS_BIND | MS_REC, "bind"});
    ops.push_back({Op::kMount, "", dst, "", "", MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | LockedFlags(src),
                   "remount bind read-only"});
  }
  ops.push_back({Op::kWrite, r + "/etc/passwd",
                 "root:x:0:0:root:/work:/bin/sh\nsandbox:x:" + std::to_string(o.sandbox_uid) + ":" +
                     std::to_string(o.sandbox_uid) + ":sandbox:/work:/bin/sh\n",
                 "", "", 0644, "write /etc/passwd"});
  ops.push_back({Op::kWrite, r + "/etc/group",
                 "root:x:0:\nsandbox:x:" + std::to_string(o.sandbox_uid) + ":\n", "", "", 0644, "write /etc/group"});
  ops.push_back({Op::kWrite, r + "/etc/hosts", "127.0.0.1 localhost sandbox\n::1 localhost\n", "", "", 0644,
                 "write /etc/hosts"});
  // /dev: a private tmpfs with only the harmless character devices bound from the host.
  ops.push_back({Op::kMount, "tmpfs", r + "/dev", "tmpfs", "size=64k,nr_inodes=64,mode=0755", MS_NOSUID | MS_NOEXEC,
                 "mount /dev tmpfs"});
  for (const char* dev : {"null", "zero", "full", "random", "urandom"}) {
    std::string dst = r + "/dev/" + dev;
    ops.push_back({Op::kTouch, dst, "", "", "", 0666, "create device target"});
    ops.push_back({Op::kMount, std::string("/dev/") + dev, dst, "", "", MS_BIND, "bind device"});
  }
  ops.push_back({Op::kMkdir, r + "/dev/shm", "", "", "", 01777, "mkdir /dev/shm"});
  ops.push_back({Op::kSymlink, "/proc/self/fd", r + "/dev/fd", "", "", 0, "symlink /dev/fd"});
  ops.push_back({Op::kSymlink, "/proc/self/fd/0", r + "/dev/stdin", "", "", 0, "symlink /dev/stdin"});
  ops.push_back({Op::kSymlink, "/proc/self/fd/1", r + "/dev/stdout", "", "", 0, "symlink /dev/stdout"});
  ops.push_back({Op::kSymlink, "/proc/self/fd/2", r + "/dev/stderr", "", "", 0, "symlink /dev/stderr"});
  ops.push_back({Op::kMount, "", r + "/dev", "", "", MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
                 "remount /dev read-only"});
  // A proc for the zygote's PID namespace: the kernel only lets each run mount its own proc when a fully
  // visible one exists in the mount namespace.
  ops.push_back({Op::kMount, "proc", r + "/proc", "proc", "", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mount /proc"});
  ops.push_back({Op::kPivot, r, r + "/.old", "", "", 0, "pivot_root"});
  ops.push_back({Op::kChdir, "/", "", "", "", 0, "chdir /"});
  ops.push_back({Op::kUmountDetach, "/.old", "", "", "", 0, "umount old root"});
  ops.push_back({Op::kRmdir, "/.old", "", "", "", 0, "rmdir old root"});
  ops.push_back({Op::kMount, "", "/", "", "", MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV,
                 "remount / read-only"});
  ops.push_back({Op::kHostname, "sandbox", "", "", "", 0, "sethostname"});
  return ops;
}

const char* Cstr(const std::string& s) { return s.empty() ? nullptr : s.c_str(); }

// Runs in the cloned child. Never returns.
[[noreturn]] void ChildMain(const std::vector<Op>& ops, int sync_fd, int err_fd, int ctl_fd, int bpf_fd,
                            int helper_fd, const char* const* argv, const char* const* envp) {
  char c;
  ssize_t n;
  do { n = ::read(sync_fd, &c, 1); } while (n < 0 && errno == EINTR);
  if (n != 1) ChildDie(err_fd, "waiting for the uid map");
  // Become the namespace's root (host uid base): until now the child kept the host's uid 0, which is
  // unmapped here. Raw syscalls: glibc's set*id would try to sync threads copied from the host.
  if (::syscall(SYS_setgroups, 0, nullptr) != 0) ChildDie(err_fd, "setgroups");
  if (::syscall(SYS_setresgid, 0, 0, 0) != 0) ChildDie(err_fd, "setresgid");
  if (::syscall(SYS_setresuid, 0, 0, 0) != 0) ChildDie(err_fd, "setresuid");
  for (const Op& op : ops) {
    switch (op.kind) {
      case Op::kMkdir:
        if (::mkdir(op.a.c_str(), static_cast<mode_t>(op.flags)) != 0 && errno != EEXIST) ChildDie(err_fd, op.what);
        if (op.flags & 07000) (void)::chmod(op.a.c_str(), static_cast<mode_t>(op.flags));
        break;
      case Op::kSymlink:
        if (::symlink(op.a.c_str(), op.b.c_str()) != 0 && errno != EEXIST) ChildDie(err_fd, op.what);
        break;
      case Op::kTouch: {
        int fd = ::open(op.a.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, static_cast<mode_t>(op.flags));
        if (fd < 0) ChildDie(err_fd, op.what);
        ::close(fd);
        break;
      }
      case Op::kWrite: {
        int fd = ::open(op.a.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, static_cast<mode_t>(op.flags));
        if (fd < 0 || !WriteAll(fd, op.b.data(), op.b.size())) ChildDie(err_fd, op.what);
        ::close(fd);
        break;
      }
      case Op::kMount:
        if (::mount(Cstr(op.a), op.b.c_str(), Cstr(op.c), op.flags, Cstr(op.d)) != 0) ChildDie(err_fd, op.what);
        break;
      case Op::kPivot:
        if (::syscall(SYS_pivot_root, op.a.c_str(), op.b.c_str()) != 0) ChildDie(err_fd, op.what);
        break;
      case Op::kChdir:
        if (::chdir(op.a.c_str()) != 0) ChildDie(err_fd, op.what);
        break;
      case Op::kUmountDetach:
        if (::umount2(op.a.c_str(), MNT_DETACH) != 0) ChildDie(err_fd, op.what);
        break;
      case Op::kRmdir:
        if (::rmdir(op.a.c_str()) != 0) ChildDie(err_fd, op.what);
        break;
      case Op::kHostname:
        if (::sethostname(op.a.c_str(), op.a.size()) != 0) ChildDie(err_fd, op.what);
        break;
    }
  }
  // fds: 0,1,2 -> /dev/null; 3 = control socket; 4 = seccomp filters; 5 = err_fd (CLOEXEC: reports exec
  // failure); 6 = the native helper.
  int null_fd = ::open("/dev/null", O_RDWR);
  if (null_fd < 0) ChildDie(err_fd, "open /dev/null");
  // Move the fds we keep above 10 first so the dup2s below cannot clobber each other.
  int ctl_hi = ::fcntl(ctl_fd, F_DUPFD, 10), bpf_hi = ::fcntl(bpf_fd, F_DUPFD, 10), err_hi = ::fcntl(err_fd, F_DUPFD_CLOEXEC, 10);
  int helper_hi = ::fcntl(helper_fd, F_DUPFD, 10);
  if (ctl_hi < 0 || bpf_hi < 0 || err_hi < 0 || helper_hi < 0) ChildDie(err_fd, "dup fds");
  if (::dup2(null_fd, 0) < 0 || ::dup2(null_fd, 1) < 0 || ::dup2(null_fd, 2) < 0 || ::dup2(ctl_hi, 3) < 0 ||
      ::dup2(bpf_hi, 4) < 0 || ::dup2(helper_hi, 6) < 0) {
    ChildDie(err_hi, "dup2");
  }
  if (err_hi != 5 && ::dup3(err_hi, 5, O_CLOEXEC) < 0) ChildDie(err_hi, "dup3");
  ::syscall(SYS_close_range, 7U, ~0U, 0U);
  ::execve(argv[0], const_cast<char* const*>(argv), const_cast<char* const*>(envp));
  ChildDie(5, "execve python");
}

Status WriteProcFile(pid_t pid, const char* name, const std::string& content) {
  std::string path = "/proc/" + std::to_string(pid) + "/" + name;
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return IoError("zygote: open " + path + ": " + std::strerror(errno));
  bool ok = WriteAll(fd, content.data(), content.size());
  int err = errno;
  ::close(fd);
  if (!ok) return IoError("zygote: write " + path + ": " + std::strerror(err));
  return Status::Ok();
}

}  // namespace

Expected<std::unique_ptr<Zygote>> Zygote::Start(const ZygoteOptions& o) {
  std::vector<Op> ops = BuildOps(o);
  json cfg = {{"uid", o.sandbox_uid}, {"gid", o.sandbox_uid}, {"preload", o.preload}, {"warm_up", o.warm_up},
              {"prefault", o.prefault}, {"probes", o.probes}};
  std::string cfg_text = cfg.dump();
  std::string script = ZygoteScript();
  std::vector<const char*> argv = {o.python.c_str(), "-I", "-c", script.c_str(), cfg_text.c_str(), nullptr};
  // LD_BIND_NOW: the dynamic linker resolves every symbol when the zygote starts, not lazily in each run's
  // child (which resolved e.g. pthread_key_delete, called only after a fork, in every run: ~3% of a run's
  // CPU). The zygote script resets its environment, so programs never see it.
  std::vector<const char*> envp = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "PYTHONDONTWRITEBYTECODE=1",
                                   "HOME=/work", "LD_BIND_NOW=1", nullptr};

  int sync_pipe[2], err_pipe[2], sv[2];
  if (::pipe2(sync_pipe, O_CLOEXEC) != 0) return IoError(std::string("zygote: pipe: ") + std::strerror(errno));
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(sync_pipe[0]); ::close(sync_pipe[1]);
    return IoError(std::string("zygote: pipe: ") + std::strerror(errno));
  }
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    for (int fd : {sync_pipe[0], sync_pipe[1], err_pipe[0], err_pipe[1]}) ::close(fd);
    return IoError(std::string("zygote: socketpair: ") + std::strerror(errno));
  }
  // The filters: the zygote's length (4 bytes, native order), the zygote's filter, the run's filter.
  const uint32_t zlen = static_cast<uint32_t>(o.seccomp_zygote_bpf.size());
  const std::string filters = std::string(reinterpret_cast<const char*>(&zlen), sizeof zlen) + o.seccomp_zygote_bpf + o.seccomp_bpf;
  int bpf_fd = ::memfd_create("k2gym-bpf", MFD_CLOEXEC);
  if (bpf_fd < 0 || !WriteAll(bpf_fd, filters.data(), filters.size()) || ::lseek(bpf_fd, 0, SEEK_SET) != 0) {
    for (int fd : {sync_pipe[0], sync_pipe[1], err_pipe[0], err_pipe[1], sv[0], sv[1], bpf_fd}) if (fd >= 0) ::close(fd);
    return IoError(std::string("zygote: memfd for the seccomp filter: ") + std::strerror(errno));
  }
  int helper_fd = ::memfd_create("k2gym-zygote-helper", MFD_CLOEXEC);
  if (helper_fd < 0 || !WriteAll(helper_fd, reinterpret_cast<const char*>(ZygoteHelperSo()), ZygoteHelperSoSize())) {
    for (int fd : {sync_pipe[0], sync_pipe[1], err_pipe[0], err_pipe[1], sv[0], sv[1], bpf_fd, helper_fd}) if (fd >= 0) ::close(fd);
    return IoError(std::string("zygote: memfd for the native helper: ") + std::strerror(errno));
  }
  auto close_all = [&] {
    for (int fd : {sync_pipe[0], sync_pipe[1], err_pipe[0], err_pipe[1], sv[0], sv[1], bpf_fd, helper_fd}) if (fd >= 0) ::close(fd);
  };

  const unsigned long flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
                              CLONE_NEWUTS | CLONE_NEWCGROUP | CLONE_PARENT | SIGCHLD;
  // The zygote's user namespace is created by a process running as the dedicated uid host_uid_base, not
  // by root, so that it is owned by that uid: the kernel charges what runs create inside it (inotify
  // instances and watches, POSIX message queue bytes, processes...) to their uid in the namespace and
  // then to the namespace's owner in the parent namespace. Owned by root, a run holding 128 inotify
  // instances made host root's inotify_init1 fail. So a short-lived middle process (a raw, fork-like
  // clone without glibc's atfork handlers) drops to that uid and clones the zygote with CLONE_PARENT: the
  // zygote is still our child (we reap and kill it) while its namespaces belong to the dedicated uid.
  int pid_pipe[2];
  if (::pipe2(pid_pipe, O_CLOEXEC) != 0) {
    int e = errno;
    close_all();
    return IoError(std::string("zygote: pipe: ") + std::strerror(e));
  }
  const long owner = static_cast<long>(o.host_uid_base);
  long mid = ::syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, nullptr);
  if (mid == 0) {
    if (::syscall(SYS_setgroups, 0, nullptr) != 0) ChildDie(err_pipe[1], "setgroups before dropping to host_uid_base");
    if (::syscall(SYS_setresgid, owner, owner, owner) != 0) ChildDie(err_pipe[1], "setresgid host_uid_base");
    if (::syscall(SYS_setresuid, owner, owner, owner) != 0) ChildDie(err_pipe[1], "setresuid host_uid_base");
    long z = ::syscall(SYS_clone, flags, nullptr, nullptr, nullptr, nullptr);
    if (z == 0) ChildMain(ops, sync_pipe[0], err_pipe[1], sv[1], bpf_fd, helper_fd, argv.data(), envp.data());
    if (z < 0) ChildDie(err_pipe[1], "clone with new user/pid/mount/net namespaces as host_uid_base");
    pid_t zp = static_cast<pid_t>(z);
    (void)!::write(pid_pipe[1], &zp, sizeof zp);
    ::_exit(0);
  }
  ::close(pid_pipe[1]);
  long pid = -1;
  if (mid > 0) {
    pid_t zp = -1;
    ssize_t got;
    do { got = ::read(pid_pipe[0], &zp, sizeof zp); } while (got < 0 && errno == EINTR);
    int st = 0;
    while (::waitpid(static_cast<pid_t>(mid), &st, 0) < 0 && errno == EINTR) {
    }
    if (got == static_cast<ssize_t>(sizeof zp) && zp > 0) pid = zp;
  }
  int clone_errno = errno;
  ::close(pid_pipe[0]);
  if (pid < 0) {
    char buf[512];
    // The middle process has exited; what it reported is in the pipe (we hold a write end: never block).
    pollfd ep{err_pipe[0], POLLIN, 0};
    ssize_t n = mid > 0 && ::poll(&ep, 1, 0) == 1 ? ::read(err_pipe[0], buf, sizeof buf) : -1;
    std::string why = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::strerror(clone_errno);
    close_all();
    return FailedPrecondition("zygote: starting as the dedicated uid " + std::to_string(owner) + ": " + why);
  }
  ::close(sync_pipe[0]); sync_pipe[0] = -1;
  ::close(err_pipe[1]); err_pipe[1] = -1;
  ::close(sv[1]); sv[1] = -1;
  ::close(bpf_fd); bpf_fd = -1;
  ::close(helper_fd); helper_fd = -1;

  auto zy = std::unique_ptr<Zygote>(new Zygote());
  zy->pid_ = static_cast<pid_t>(pid);
  zy->ctl_ = sv[0]; sv[0] = -1;
  auto abort_start = [&](Status s) -> Status {
    close_all();
    return s;  // ~Zygote kills and reaps the child
  };

  const int64_t base = o.host_uid_base;
  std::string map = "0 " + std::to_string(base) + " 1\n" + std::to_string(o.sandbox_uid) + " " +
                    std::to_string(base + o.sandbox_uid) + " 1\n";
  Status s = WriteProcFile(zy->pid_, "uid_map", map);
  if (s.ok()) s = WriteProcFile(zy->pid_, "gid_map", map);
  if (!s.ok()) return abort_start(s);
  if (!WriteAll(sync_pipe[1], "x", 1)) return abort_start(IoError("zygote: sync write failed"));
  ::close(sync_pipe[1]); sync_pipe[1] = -1;

  // Wait for "ready" on the control socket, or an error / EOF on the error pipe, 20 s at most
  // (importing the preloads on a loaded 2-core machine can take a second or two).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::string err;
  bool err_eof = false;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) return abort_start(Timeout("zygote: no \"ready\" from " + o.python + " within 20 s"));
    pollfd p[2] = {{zy->ctl_, POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
    int nfds = err_eof ? 1 : 2;
    int r = ::poll(p, nfds, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return abort_start(IoError(std::string("zygote: poll: ") + std::strerror(errno)));
    if (nfds == 2 && (p[1].revents & (POLLIN | POLLHUP))) {
      char buf[512];
      ssize_t n = ::read(err_pipe[0], buf, sizeof buf);
      if (n > 0) err.append(buf, static_cast<size_t>(n));
      else err_eof = true;
      if (n > 0) return abort_start(FailedPrecondition("zygote setup failed: " + err));
    }
    if (p[0].revents & POLLIN) {
      char buf[512];
      ssize_t n = ::recv(zy->ctl_, buf, sizeof buf, 0);
      if (n >= 5 && std::memcmp(buf, "ready", 5) == 0) {
        // "ready {json}": the learned prefault set, for diagnostics (Sandbox::pool_info).
        auto info = n > 6 ? ParseJson(std::string_view(buf + 6, static_cast<size_t>(n - 6)), "zygote ready") : json::object();
        if (info.ok()) zy->info_ = *info;
        break;
      }
      return abort_start(Unavailable("zygote: " + o.python + " exited before it was ready (is it python3 >= 3.8?)"));
    }
    if (p[0].revents & (POLLHUP | POLLERR)) {
      return abort_start(Unavailable("zygote: " + o.python + " exited before it was ready"));
    }
  }
  close_all();
  return zy;
}

Zygote::~Zygote() {
  if (ctl_ >= 0) ::close(ctl_);  // EOF: the zygote exits on its own
  if (pid_ > 0) {
    // It is PID 1 of its namespace: SIGKILL takes every run with it. Give it a moment to exit cleanly.
    for (int i = 0; i < 50; ++i) {
      int st;
      pid_t r = ::waitpid(pid_, &st, WNOHANG);
      if (r == pid_ || (r < 0 && errno == ECHILD)) return;
      if (i == 10) ::kill(pid_, SIGKILL);
      ::usleep(i < 10 ? 1000 : 10000);
    }
    ::kill(pid_, SIGKILL);
    int st;
    ::waitpid(pid_, &st, 0);
  }
}

void Zygote::Kill() {
  std::lock_guard<std::mutex> lk(mu_);
  dead_ = true;
  if (pid_ > 0) ::kill(pid_, SIGKILL);
}

bool Zygote::alive() {
  std::lock_guard<std::mutex> lk(mu_);
  int st;
  if (!dead_ && pid_ > 0 && ::waitpid(pid_, &st, WNOHANG) == pid_) {
    dead_ = true;
    pid_ = -1;
  }
  return !dead_;
}

Status Zygote::Submit(const std::string& params, const std::vector<int>& fds) {
  std::lock_guard<std::mutex> lk(mu_);
  if (dead_) return Unavailable("zygote is gone");
  iovec iov{const_cast<char*>(params.data()), params.size()};
  std::vector<char> cbuf(CMSG_SPACE(sizeof(int) * fds.size()), 0);
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf.data();
  msg.msg_controllen = cbuf.size();
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
  std::memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
  for (;;) {
    ssize_t n = ::sendmsg(ctl_, &msg, MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(params.size())) return Status::Ok();
    if (n < 0 && errno == EINTR) continue;
    dead_ = true;
    return Unavailable(std::string("zygote: sendmsg: ") + std::strerror(errno));
  }
}

}  // namespace k2::sandbox::detail
