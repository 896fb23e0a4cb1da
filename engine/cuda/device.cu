// The CUDA translation unit of the foundation: device discovery and a checked saxpy self-test.
#include <cuda_runtime.h>

#include <cmath>
#include <vector>

#include "engine/cuda/check.cuh"
#include "engine/cuda/device.h"

namespace k2 {

namespace {
__global__ void Saxpy(int n, float a, const float* x, float* y) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) y[i] = a * x[i] + y[i];
}
}  // namespace

bool CudaBuilt() { return true; }

int CudaDeviceCount() {
  int n = 0;
  // No driver or no device is a normal situation on CPU machines: report 0, do not abort.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

Status CudaSelfTest() {
  if (CudaDeviceCount() == 0) return Unavailable("no CUDA device");
  const int n = 1 << 20;
  std::vector<float> x(n), y(n), ref(n);
  for (int i = 0; i < n; ++i) {
    x[i] = 0.001f * (i % 1000) + 0.5f;
    y[i] = 1.0f - 0.0005f * (i % 777);
    ref[i] = 2.5f * x[i] + y[i];
  }
  float *dx = nullptr, *dy = nullptr;
  Status st = [&]() -> Status {
    K2_CUDA_RETURN(cudaMalloc(&dx, n * sizeof(float)));
    K2_CUDA_RETURN(cudaMalloc(&dy, n * sizeof(float)));
    K2_CUDA_RETURN(cudaMemcpy(dx, x.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    K2_CUDA_RETURN(cudaMemcpy(dy, y.data(), n * sizeof(float), cudaMemcpyHostToDevice));
    Saxpy<<<(n + 255) / 256, 256>>>(n, 2.5f, dx, dy);
    K2_CUDA_LAUNCHED();
    K2_CUDA_RETURN(cudaMemcpy(y.data(), dy, n * sizeof(float), cudaMemcpyDeviceToHost));
    return Status::Ok();
  }();
  (void)cudaFree(dx);  // best effort: the self-test result is what matters
  (void)cudaFree(dy);
  K2_RETURN_IF_ERROR(st);
  for (int i = 0; i < n; ++i) {
    if (std::fabs(y[i] - ref[i]) > 1e-5f * std::fabs(ref[i]) + 1e-6f)
      return Internal("saxpy mismatch at " + std::to_string(i));
  }
  return Status::Ok();
}

}  // namespace k2
