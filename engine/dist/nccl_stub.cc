// Builds without NCCL (CPU-only, or CUDA without NCCL found): the NCCL entry points say so.
#include "engine/dist/comm.h"

namespace k2::engine::dist {

bool NcclBuilt() { return false; }

Expected<std::unique_ptr<Communicator>> ConnectNccl(const LaunchEnv&, double) {
  return Unavailable("k2gym was built without NCCL (configure with -DK2GYM_CUDA=ON where nccl.h and libnccl are "
                     "installed); use the tcp backend");
}

}  // namespace k2::engine::dist
