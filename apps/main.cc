// k2gym: the one binary. Everything is in the commands (apps/cmd_*.cc).
#include "apps/cli.h"
#include "engine/pretrain.h"

int main(int argc, char** argv) {
  k2::engine::ReexecWithPassiveOpenMpWait(argv);  // engine/pretrain.h: libgomp must not spin beside BLAS
  return k2::app::Main(argc, argv);
}
