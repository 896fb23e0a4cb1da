// The interrupt flag and its signal handlers (core/interrupt.h). The handler only stores to lock-free
// atomics and calls write/signal/raise, which are async-signal-safe.
#include "core/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <cstring>

namespace k2 {
namespace {

std::atomic<bool> g_flag{false};
std::atomic<int> g_signal{0};
std::atomic<bool> g_installed{false};

void OnSignal(int sig) {
  if (g_flag.load()) {  // the second one: stop now
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  g_signal.store(sig);
  g_flag.store(true);
  static const char kMsg[] =
      "\nk2gym: interrupt: finishing the items in flight and saving them (interrupt again to stop at once)\n";
  (void)!::write(STDERR_FILENO, kMsg, sizeof kMsg - 1);
}

}  // namespace

void InstallInterruptHandlers() {
  if (g_installed.exchange(true)) return;
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;  // blocking reads/writes of HTTP clients and SQLite go on after the handler
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

const std::atomic<bool>* InterruptFlag() { return &g_flag; }
bool InterruptRequested() { return g_flag.load(std::memory_order_relaxed); }
int InterruptSignal() { return g_signal.load(); }

void RequestInterrupt(int signal_number) {
  g_signal.store(signal_number);
  g_flag.store(true);
}

}  // namespace k2
