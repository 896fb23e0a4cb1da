// K2GYM_CRASH_AT parsing and the self-SIGKILL of CrashPoint (core/fault.h).
#include "core/fault.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace k2 {
namespace {

struct Target {
  std::string name;  // "" = none
  long hit = 1;
};

// Read at every call (a few per training step): a test may set the variable in a forked child.
Target GetTarget() {
  Target r;
  const char* env = std::getenv("K2GYM_CRASH_AT");
  if (env == nullptr || *env == '\0') return r;
  std::string s(env);
  const size_t at = s.rfind('@');
  r.name = s.substr(0, at);
  if (at != std::string::npos) {
    char* end = nullptr;
    r.hit = std::strtol(s.c_str() + at + 1, &end, 10);
    if (end == s.c_str() + at + 1 || *end != '\0' || r.hit < 1) {
      std::fprintf(stderr, "K2GYM_CRASH_AT=%s: expected NAME or NAME@N (N >= 1); ignored\n", env);
      r.name.clear();
    }
  }
  return r;
}

std::atomic<long> g_hits{0};

}  // namespace

void CrashPoint(std::string_view name) {
  const Target t = GetTarget();
  if (t.name.empty() || name != t.name) return;
  if (g_hits.fetch_add(1) + 1 != t.hit) return;
  const char* sig = std::getenv("K2GYM_CRASH_SIGNAL");
  if (sig != nullptr && (std::string(sig) == "INT" || std::string(sig) == "TERM")) {
    ::kill(::getpid(), std::string(sig) == "INT" ? SIGINT : SIGTERM);
    return;
  }
  ::kill(::getpid(), SIGKILL);
  ::pause();  // SIGKILL is delivered before kill() returns to a single-threaded caller; others wait here
}

}  // namespace k2
