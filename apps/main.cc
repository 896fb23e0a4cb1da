// k2gym: the one binary. Everything is in the commands (apps/cmd_*.cc).
#include <unistd.h>

#include <cstdlib>

#include "apps/cli.h"
#include "core/determinism.h"
#include "engine/pretrain.h"

int main(int argc, char** argv) {
  // --deterministic fixes the OpenMP/OpenBLAS thread counts, which those libraries read once when loaded:
  // re-exec with them set (the OMP_WAIT_POLICY re-exec below does it when that is still to come).
  if (k2::PrepareDeterministicEnvironment(argc, argv) && std::getenv("OMP_WAIT_POLICY") != nullptr)
    execv("/proc/self/exe", argv);
  k2::engine::ReexecWithPassiveOpenMpWait(argv);  // engine/pretrain.h: libgomp must not spin beside BLAS
  return k2::app::Main(argc, argv);
}
