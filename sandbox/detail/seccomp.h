// The seccomp filters of sandboxed programs: built once with libseccomp on the host and exported as raw
// BPF. A zygote loads the first one itself once it is ready, before it serves runs, so that every run
// inherits it; each run's PID 1 loads the second, small one (after no_new_privs) right before the
// untrusted code starts. Together they deny exactly DeniedSyscalls() (and the clone/socket rules).
//
// Thread safety: pure functions. Failure: a Status naming the libseccomp call.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace k2::sandbox::detail {

// Syscalls the filter denies with EPERM (clone/clone3/unshare are handled specially: new namespaces
// are refused, clone3 gets ENOSYS so libc falls back to clone, whose flags the filter can inspect).
const std::vector<std::string>& DeniedSyscalls();

// The part of DeniedSyscalls() that the zygote and a run's setup still call (new namespaces, mounts, the
// hostname), so that only the run's own filter can deny it.
const std::vector<std::string>& RunOnlyDeniedSyscalls();

// Each filter is an array of struct sock_filter (8 bytes each), for prctl(PR_SET_SECCOMP); syscalls of
// other ABIs (x32, i386) kill the process.
struct SeccompFilters {
  std::string zygote;  // everything but RunOnlyDeniedSyscalls(): loaded once by the zygote
  std::string run;     // RunOnlyDeniedSyscalls(): loaded by each run on top of the zygote's
};
Expected<SeccompFilters> BuildSeccompFilters();

}  // namespace k2::sandbox::detail
