// The seccomp filter of sandboxed programs: built once with libseccomp on the host and exported as raw
// BPF, which each run's PID 1 loads (after no_new_privs) right before the untrusted code starts.
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

// The filter as an array of struct sock_filter (8 bytes each), for prctl(PR_SET_SECCOMP).
// Syscalls of other ABIs (x32, i386) kill the process.
Expected<std::string> BuildSeccompBpf();

}  // namespace k2::sandbox::detail
