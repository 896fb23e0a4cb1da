// Factory of the CUDA implementation of engine/backend.h (engine/cuda/backend_cuda.cu); in a CPU-only
// build (engine/cuda/backend_cuda_stub.cc) it reports that CUDA was not built.
#pragma once

#include <memory>

#include "core/status.h"
#include "engine/backend.h"

namespace k2::engine {

// Unavailable when CUDA is not built, no device is visible or opts.device does not exist; Internal when
// creating the stream or the cuBLAS handle fails.
Expected<std::unique_ptr<Backend>> MakeCudaBackend(const BackendOptions& opts);

}  // namespace k2::engine
