// CPU-only build: the CUDA entry points report that CUDA is not built.
#include "engine/cuda/device.h"

namespace k2 {

bool CudaBuilt() { return false; }
int CudaDeviceCount() { return 0; }
Status CudaSelfTest() { return Unavailable("k2gym was built without CUDA (cmake --preset cuda)"); }

}  // namespace k2
