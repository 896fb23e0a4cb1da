// Deterministic mode's switch and environment (core/determinism.h).
#include "core/determinism.h"

#include <cstdlib>
#include <cstring>
#include <string>

namespace k2 {

bool DeterministicMode() {
  static const bool on = [] {
    const char* e = std::getenv("K2GYM_DETERMINISTIC");
    return e != nullptr && std::strcmp(e, "1") == 0;
  }();
  return on;
}

bool PrepareDeterministicEnvironment(int argc, char** argv) {
  bool asked = false;
  for (int i = 1; i < argc; ++i) asked = asked || std::strcmp(argv[i], "--deterministic") == 0;
  const char* e = std::getenv("K2GYM_DETERMINISTIC");
  asked = asked || (e != nullptr && std::strcmp(e, "1") == 0);
  if (!asked) return false;
  const std::string n = std::to_string(kDeterministicThreads);
  bool changed = false;
  for (const char* var : {"K2GYM_DETERMINISTIC", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"}) {
    const std::string want = std::strcmp(var, "K2GYM_DETERMINISTIC") == 0 ? "1" : n;
    const char* have = std::getenv(var);
    if (have != nullptr && want == have) continue;
    setenv(var, want.c_str(), 1);
    changed = true;
  }
  return changed;
}

}  // namespace k2
