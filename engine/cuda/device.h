// CUDA device discovery, usable from CPU-only builds (then: not built, 0 devices).
#pragma once

#include <string>

#include "core/status.h"

namespace k2 {

bool CudaBuilt();
int CudaDeviceCount();  // 0 when not built, no driver or no device
// Runs a small kernel (y = a*x + y over 1M floats) on device 0 and compares it with the CPU result.
// Unavailable when not built or no device.
Status CudaSelfTest();

}  // namespace k2
