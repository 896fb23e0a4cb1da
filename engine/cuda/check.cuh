// Checked CUDA and cuBLAS calls. K2_CUDA_RETURN / K2_CUBLAS_RETURN turn a failure into an Internal
// k2::Status (ResourceExhausted for out of memory) naming the statement, CUDA's error string, file and
// line, and return it from the enclosing function; nothing in the backend aborts.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "core/status.h"

namespace k2::cuda_detail {
inline Status FromCuda(cudaError_t e, const char* stmt, const char* file, int line) {
  std::string m = std::string(stmt) + ": " + cudaGetErrorString(e) + " (" + file + ":" + std::to_string(line) + ")";
  (void)cudaGetLastError();  // clear a sticky-free error so the next call is not blamed for it
  return e == cudaErrorMemoryAllocation ? ResourceExhausted(m) : Internal(m);
}
inline Status FromCublas(cublasStatus_t s, const char* stmt, const char* file, int line) {
  std::string m = std::string(stmt) + ": " + cublasGetStatusString(s) + " (" + file + ":" + std::to_string(line) + ")";
  return s == CUBLAS_STATUS_ALLOC_FAILED ? ResourceExhausted(m) : Internal(m);
}
}  // namespace k2::cuda_detail

#define K2_CUDA_RETURN(stmt)                                                              \
  do {                                                                                    \
    cudaError_t k2_cuda_err_ = (stmt);                                                    \
    if (k2_cuda_err_ != cudaSuccess)                                                      \
      return ::k2::cuda_detail::FromCuda(k2_cuda_err_, #stmt, __FILE__, __LINE__);        \
  } while (0)

#define K2_CUBLAS_RETURN(stmt)                                                            \
  do {                                                                                    \
    cublasStatus_t k2_cublas_st_ = (stmt);                                                \
    if (k2_cublas_st_ != CUBLAS_STATUS_SUCCESS)                                           \
      return ::k2::cuda_detail::FromCublas(k2_cublas_st_, #stmt, __FILE__, __LINE__);     \
  } while (0)

// After a kernel launch: launch-configuration errors (asynchronous faults show at the next sync).
#define K2_CUDA_LAUNCHED() K2_CUDA_RETURN(cudaGetLastError())
