// Fault injection for crash-consistency tests: named points in the checkpoint and metrics protocol at
// which a process can be made to SIGKILL itself, so a crash test hits each step deterministically.
//
// K2GYM_CRASH_AT=NAME kills the process the first time CrashPoint(NAME) runs; NAME@N the N-th time
// (1-based). K2GYM_CRASH_SIGNAL=INT or TERM sends that signal instead of SIGKILL (the interrupt path of
// core/interrupt.h, which then lets the process go on to its clean stop). Unset (the normal case) a
// CrashPoint costs one branch. Thread-safe.
#pragma once

#include <string_view>

namespace k2 {

// Dies with SIGKILL here (or receives K2GYM_CRASH_SIGNAL) when K2GYM_CRASH_AT names this point (and hit
// count); else returns.
void CrashPoint(std::string_view name);

}  // namespace k2
