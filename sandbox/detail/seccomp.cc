// libseccomp filters for sandboxed programs: a deny list of kernel attack surface and escape routes, split
// between the zygote (loaded once, inherited) and each run (the syscalls the run's setup still needs).
#include "sandbox/detail/seccomp.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>

namespace k2::sandbox::detail {

const std::vector<std::string>& DeniedSyscalls() {
  // Debugging and other processes' memory; mounts and roots; kernel keyrings; eBPF; io_uring (a large,
  // often-exploited surface); perf; kexec and modules; namespaces; swap, reboot, clock and accounting.
  static const std::vector<std::string> kDenied = {
      "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
      "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount",
      "fspick", "mount_setattr", "open_by_handle_at", "name_to_handle_at",
      "keyctl", "add_key", "request_key",
      "bpf", "io_uring_setup", "io_uring_enter", "io_uring_register", "perf_event_open", "userfaultfd",
      "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
      "setns", "unshare",
      "swapon", "swapoff", "reboot", "syslog", "acct", "quotactl", "settimeofday", "clock_settime",
      "clock_adjtime", "adjtimex", "sethostname", "setdomainname", "iopl", "ioperm", "lookup_dcookie",
      "fanotify_init", "personality", "vhangup", "nfsservctl", "uselib", "ustat", "sysfs", "_sysctl",
  };
  return kDenied;
}

const std::vector<std::string>& RunOnlyDeniedSyscalls() {
  static const std::vector<std::string> kRunOnly = {"mount", "unshare", "setns", "sethostname"};
  return kRunOnly;
}

namespace {

using Ctx = std::unique_ptr<void, void (*)(void*)>;

Status SeccompError(const char* what, int rc) {
  return Internal(std::string("seccomp: ") + what + ": " + std::strerror(-rc));
}

// The context's filter as raw BPF.
Expected<std::string> Export(void* ctx) {
  // Only the native ABI: x32 and i386 syscall numbers would bypass the rules.
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (rc < 0) return SeccompError("badarch", rc);
  int fd = ::memfd_create("k2gym-seccomp", MFD_CLOEXEC);
  if (fd < 0) return IoError(std::string("memfd_create: ") + std::strerror(errno));
  rc = seccomp_export_bpf(ctx, fd);
  if (rc < 0) {
    ::close(fd);
    return SeccompError("export_bpf", rc);
  }
  std::string out;
  char buf[4096];
  ::lseek(fd, 0, SEEK_SET);
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  if (out.empty() || out.size() % 8 != 0) return Internal("seccomp: exported filter has a bad size");
  return out;
}

}  // namespace

// Why two filters: loading a filter costs each run ~0.2 ms of fixed kernel work (allocation, JIT, the
// action cache) plus ~1.4 µs per instruction on the development VM (the action cache emulates the filter
// for every syscall number), and a filter cannot be taken back. Everything the zygote itself never calls
// is denied by the zygote's filter, inherited by every run at fork; the run's own filter only adds the
// four syscalls that the zygote and the run's setup need. A syscall is refused when either filter refuses
// it, so the program sees exactly the one filter's behaviour.
Expected<SeccompFilters> BuildSeccompFilters() {
  Ctx ctx(seccomp_init(SCMP_ACT_ALLOW), [](void* c) { seccomp_release(c); });
  Ctx run(seccomp_init(SCMP_ACT_ALLOW), [](void* c) { seccomp_release(c); });
  if (!ctx || !run) return Internal("seccomp_init failed");
  auto err = SeccompError;
  const auto& run_only = RunOnlyDeniedSyscalls();
  for (const auto& name : DeniedSyscalls()) {
    int nr = seccomp_syscall_resolve_name(name.c_str());
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture (e.g. _sysctl on newer headers)
    const bool only_run = std::find(run_only.begin(), run_only.end(), name) != run_only.end();
    int rc = seccomp_rule_add(only_run ? run.get() : ctx.get(), SCMP_ACT_ERRNO(EPERM), nr, 0);
    if (rc < 0) return err(name.c_str(), rc);
  }
  // clone(2) with any namespace flag is refused; plain fork/thread creation passes.
  const uint64_t ns_flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |
                            CLONE_NEWUTS | CLONE_NEWCGROUP;
  for (uint64_t flag = 1; flag; flag <<= 1) {
    if (!(ns_flags & flag)) continue;
    int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, flag, flag));
    if (rc < 0) return err("clone rule", rc);
  }
  // Address families: a program needs AF_UNIX, AF_INET and AF_INET6 (loopback inside its own network
  // namespace). Every other family is refused with EAFNOSUPPORT, as if the kernel lacked it: AF_VSOCK is
  // not isolated by network namespaces (a bind inside a run would meet the host's ports), AF_NETLINK
  // reads interface state and counters, AF_PACKET/AF_KEY/AF_ALG... are attack surface nobody needs.
  // The domain is an int but the register is compared whole: a value with high bits set is refused.
  for (const char* call : {"socket", "socketpair"}) {
    const int nr = seccomp_syscall_resolve_name(call);
    if (nr == __NR_SCMP_ERROR) continue;
    for (uint64_t fam = 0; fam <= AF_INET6; ++fam) {
      if (fam == AF_UNIX || fam == AF_INET || fam == AF_INET6) continue;
      int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1, SCMP_A0(SCMP_CMP_EQ, fam));
      if (rc < 0) return err("socket family rule", rc);
    }
    int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1, SCMP_A0(SCMP_CMP_GT, uint64_t{AF_INET6}));
    if (rc < 0) return err("socket family rule", rc);
  }
  // clone3 passes flags in memory that BPF cannot read: ENOSYS makes glibc fall back to clone(2).
  int rc = seccomp_rule_add(ctx.get(), SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
  if (rc < 0) return err("clone3 rule", rc);
  SeccompFilters out;
  K2_ASSIGN_OR_RETURN(out.zygote, Export(ctx.get()));
  K2_ASSIGN_OR_RETURN(out.run, Export(run.get()));
  return out;
}

}  // namespace k2::sandbox::detail
