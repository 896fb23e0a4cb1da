// SIGINT/SIGTERM as a request to stop long work cleanly: commands that stream their results (simulate,
// eval) check the flag between items, finish the items in flight, mark their run `interrupted` and print
// the command that resumes it. A second signal ends the process at once (the signal's default action).
#pragma once

#include <atomic>

namespace k2 {

// Installs the handlers (idempotent). Until then SIGINT/SIGTERM keep their default action.
void InstallInterruptHandlers();
// The flag the handlers set; long loops poll it (relaxed loads are enough: it only ever goes true).
const std::atomic<bool>* InterruptFlag();
bool InterruptRequested();
// The signal that set the flag (0 when none); exit code 128 + it, as shells report a signal death.
int InterruptSignal();
// Sets the flag as a signal would (tests, and commands that stop on their own request).
void RequestInterrupt(int signal_number);

}  // namespace k2
