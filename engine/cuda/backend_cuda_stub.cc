// CPU-only build: the CUDA backend factory reports that CUDA was not built.
#include "engine/cuda/backend_cuda.h"

namespace k2::engine {

Expected<std::unique_ptr<Backend>> MakeCudaBackend(const BackendOptions&) {
  return Unavailable("cuda backend: k2gym was built without CUDA (configure with cmake --preset cuda)");
}

}  // namespace k2::engine
