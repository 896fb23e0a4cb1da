/* The zygote's native half: its serve loop (receive a run, fork PID 1 of a fresh PID namespace, reap
   and report) and a run's privileged namespace setup, in C rather than Python.

   Why C: on VMs where page faults and TLB flushes are expensive, a run's cost is the number of zygote
   pages that it and the zygote write after the fork (each is a copy-on-write fault). Python touches
   hundreds of objects per step; this loop touches a few pages of stack and static data, so the zygote
   itself takes almost no faults between forks and the child starts its setup without copying.

   Loaded by the zygote's Python (zygote_py.cc) with ctypes.PyDLL from a memfd (so the GIL stays held):
   built as a shared module and embedded into k2gym_sandbox (sandbox/CMakeLists.txt). Single-threaded
   use only (the zygote has one thread). Uses libc and, in the child, PyOS_AfterFork_Child. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "sandbox/detail/zygote_abi.h"

#define K2_EXPORT __attribute__((visibility("default")))

enum { kMaxRuns = 4096 };

/* Runs in flight: PID 1 of each run and the status pipe its wait status goes to (dense array). */
static struct {
  pid_t pid;
  int status_fd;
} g_runs[kMaxRuns];
static int g_nruns;

static void write_all(int fd, const char* p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    p += w;
    n -= (size_t)w;
  }
}

/* Reaps every exited child and reports a run's PID 1 status as {"wait": N} on its status pipe. */
static void reap(void) {
  for (;;) {
    int st = 0;
    pid_t pid = waitpid(-1, &st, WNOHANG);
    if (pid <= 0) return;
    for (int i = 0; i < g_nruns; ++i) {
      if (g_runs[i].pid != pid) continue;
      char line[48];
      int n = snprintf(line, sizeof line, "{\"wait\": %d}\n", st);
      write_all(g_runs[i].status_fd, line, (size_t)n);
      close(g_runs[i].status_fd);
      g_runs[i] = g_runs[--g_nruns];
      break;
    }
  }
}

/* In a run's child: reports a failed setup step to the host and exits. */
static void die(int status_fd, const char* what) {
  int e = errno;
  char line[256];
  int n = snprintf(line, sizeof line, "{\"setup_error\": \"%s: %s (errno %d)\"}\n", what, strerror(e), e);
  write_all(status_fd, line, (size_t)n);
  _exit(127);
}

/* In a run's child, still privileged in the zygote's user namespace: joins the run's cgroups (first,
   so everything after is accounted), then fresh mount/IPC/UTS/cgroup (and network) namespaces, a new
   session, fresh size-capped tmpfs on /work (owned by the program's uid), /tmp and /dev/shm, a proc
   for the new PID namespace, the hostname, and loopback up. */
static void setup_run(const struct k2_run_params* p, const int* fds, int nfds, int uid, int gid) {
  const int status_fd = fds[4];
  for (int i = 5; i < nfds; ++i) {
    if (write(fds[i], "0", 1) != 1) die(status_fd, "join the run's cgroup");
    close(fds[i]);
  }
  int flags = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;
  if (p->netns) flags |= CLONE_NEWNET;
  if (unshare(flags) != 0) die(status_fd, "unshare");
  if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) die(status_fd, "pdeathsig");
  if (setsid() < 0) die(status_fd, "setsid");
  char opts[160];
  snprintf(opts, sizeof opts, "size=%lldk,nr_inodes=%lld,mode=0755,uid=%d,gid=%d", (long long)p->tmpfs_kb,
           (long long)p->inodes, uid, gid);
  if (mount("tmpfs", "/work", "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) die(status_fd, "mount /work");
  snprintf(opts, sizeof opts, "size=%lldk,nr_inodes=%lld,mode=1777", (long long)p->tmpfs_kb, (long long)p->inodes);
  if (mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) die(status_fd, "mount /tmp");
  if (mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, opts) != 0) die(status_fd, "mount /dev/shm");
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) die(status_fd, "mount /proc");
  if (sethostname("sandbox", 7) != 0) die(status_fd, "sethostname");
  if (p->netns) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) die(status_fd, "socket for loopback");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strcpy(ifr.ifr_name, "lo");
    ifr.ifr_flags = IFF_UP | IFF_LOOPBACK | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) die(status_fd, "loopback up");
    close(s);
  }
}

static char* const kEnv[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/work", "LANG=C.UTF-8", "TMPDIR=/tmp",
                              "PYTHONDONTWRITEBYTECODE=1", "USER=sandbox", NULL};

/* The fast path (no files to write, none to fetch), still in C: rlimits, the program's uid/gid (which
   clears the permitted and effective capabilities; the bounding set is already empty), no_new_privs,
   stdio, /work as cwd, the seccomp filter, and only the request memfd left open (on fd 3). Bash is
   executed from here; for Python the caller returns to the interpreter. Same steps, same order as
   run_program in zygote_py.cc. */
static void drop(const struct k2_run_params* p, const int* fds, int uid, int gid, const struct sock_fprog* fprog) {
  const int req_fd = fds[0], status_fd = fds[4];
  struct rlimit rl = {(rlim_t)p->cpu_s, (rlim_t)p->cpu_s + 1};
  if (setrlimit(RLIMIT_CPU, &rl) != 0) die(status_fd, "RLIMIT_CPU");
  rl.rlim_cur = rl.rlim_max = (rlim_t)p->nofile;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0) die(status_fd, "RLIMIT_NOFILE");
  rl.rlim_cur = rl.rlim_max = 0;
  if (setrlimit(RLIMIT_CORE, &rl) != 0) die(status_fd, "RLIMIT_CORE");
  rl.rlim_cur = rl.rlim_max = (rlim_t)p->fsize;
  if (setrlimit(RLIMIT_FSIZE, &rl) != 0) die(status_fd, "RLIMIT_FSIZE");
  /* Raw syscalls: the zygote is single-threaded, and glibc's set*id would broadcast to threads. */
  if (syscall(SYS_setresgid, gid, gid, gid) != 0) die(status_fd, "setresgid");
  if (syscall(SYS_setresuid, uid, uid, uid) != 0) die(status_fd, "setresuid");
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die(status_fd, "no_new_privs");
  if (dup2(fds[1], 0) < 0 || dup2(fds[2], 1) < 0 || dup2(fds[3], 2) < 0) die(status_fd, "dup2 stdio");
  if (chdir("/work") != 0) die(status_fd, "chdir /work");
  int code_fd = req_fd;
  if (p->lang == 1) {
    /* bash reads its script from /dev/fd/3, which reopens the file at offset 0: copy the program
       (after the request's empty metadata line) into a memfd of its own. */
    code_fd = memfd_create("main.sh", 0);
    if (code_fd < 0) die(status_fd, "memfd for the script");
    char buf[16384];
    off_t off = 1;
    for (;;) {
      ssize_t n = pread(req_fd, buf, sizeof buf, off);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) die(status_fd, "read the request");
      if (n == 0) break;
      write_all(code_fd, buf, (size_t)n);
      off += n;
    }
  }
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, fprog, 0, 0) != 0) die(status_fd, "seccomp");
  if (code_fd != 3 && dup2(code_fd, 3) < 0) die(status_fd, "dup2 code");
  if (fcntl(3, F_SETFD, 0) != 0) die(status_fd, "fcntl code fd");
  syscall(SYS_close_range, 4U, ~0U, 0U);  /* the status pipe too: the program must not write it */
  if (p->lang == 1) {
    signal(SIGPIPE, SIG_DFL); /* Python ignores SIGPIPE; bash expects the default */
    char* const argv[] = {"bash", "/dev/fd/3", NULL};
    execve("/bin/bash", argv, kEnv);
    _exit(127);
  }
}

/* The zygote's loop. ctl: the control socket; pidns_fd: the zygote's own PID namespace; uid/gid: the
   program's ids; out: K2_OUT_SIZE int64 slots.

   Returns 0 when the host closed the socket (the zygote should exit, which as PID 1 of its namespace
   kills every run), -errno on an unrecoverable error, and, in a run's child only,
   K2_CHILD_PRIVILEGED (fds in out) or K2_CHILD_DROPPED (see drop), after setup_run and
   PyOS_AfterFork_Child, with the params in out. */
K2_EXPORT int k2_zygote_serve(int ctl, int pidns_fd, int uid, int gid, const struct sock_fprog* fprog,
                              int64_t* out) {
  void (*after_fork_child)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "PyOS_AfterFork_Child");
  if (!after_fork_child) return -ENOSYS;
  sigset_t chld, old;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  if (sigprocmask(SIG_BLOCK, &chld, &old) != 0) return -errno;
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) return -errno;
  for (;;) {
    struct pollfd pf[2] = {{ctl, POLLIN, 0}, {sfd, POLLIN, 0}};
    int r = poll(pf, 2, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return -errno;
    if (pf[1].revents & POLLIN) {
      struct signalfd_siginfo si[8];
      while (read(sfd, si, sizeof si) > 0) {
      }
      reap();
    }
    if (!(pf[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    struct k2_run_params params;
    union {
      char buf[CMSG_SPACE(sizeof(int) * K2_OUT_MAX_FDS)];
      struct cmsghdr align;
    } cbuf;
    struct iovec iov = {&params, sizeof params};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.buf;
    msg.msg_controllen = sizeof cbuf.buf;
    ssize_t n = recvmsg(ctl, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n == 0 ? 0 : -errno;
    int fds[K2_OUT_MAX_FDS];
    int nfds = 0;
    for (struct cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
      if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
      int k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
      for (int i = 0; i < k && nfds < K2_OUT_MAX_FDS; ++i) memcpy(&fds[nfds++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
    }
    const int ok = n == (ssize_t)sizeof params && params.magic == K2_RUN_MAGIC && nfds >= 5 &&
                   !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) && g_nruns < kMaxRuns;
    pid_t pid = -1;
    /* unshare(CLONE_NEWPID) makes the next child PID 1 of a namespace of its own; the kernel only allows
       it while the children's namespace is our own, so setns() resets that first. A malformed message
       or a failed fork gets no answer: the host sees its pipes close without a status. */
    if (ok && setns(pidns_fd, CLONE_NEWPID) == 0 && unshare(CLONE_NEWPID) == 0) pid = fork();
    if (pid == 0) {
      close(ctl);
      close(sfd);
      close(pidns_fd);
      for (int i = 0; i < g_nruns; ++i) close(g_runs[i].status_fd);
      sigprocmask(SIG_SETMASK, &old, NULL);
      setup_run(&params, fds, nfds, uid, gid);
      const int fast = !params.fetch && !params.files;
      if (fast) drop(&params, fds, uid, gid, fprog);
      after_fork_child();
      memset(out, 0, sizeof(int64_t) * K2_OUT_SIZE);
      memcpy(out + K2_OUT_PARAMS, &params, sizeof params);
      if (fast) return K2_CHILD_DROPPED;
      out[K2_OUT_NFDS] = 5;
      for (int i = 0; i < 5; ++i) out[K2_OUT_FDS + i] = fds[i];
      return K2_CHILD_PRIVILEGED;
    }
    for (int i = 0; i < nfds; ++i) {
      if (pid > 0 && i == 4) continue;
      close(fds[i]);
    }
    if (pid > 0) {
      g_runs[g_nruns].pid = pid;
      g_runs[g_nruns].status_fd = fds[4];
      ++g_nruns;
    }
  }
}
