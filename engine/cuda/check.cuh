// K2_CUDA_CHECK: every CUDA runtime call is checked; failure aborts with the statement, file, line
// and CUDA's error string (programmer/environment error inside the backend).
#pragma once

#include <cuda_runtime.h>

#include "core/check.h"

#define K2_CUDA_CHECK(stmt)                                                               \
  do {                                                                                   \
    cudaError_t k2_err_ = (stmt);                                                        \
    K2_CHECK(k2_err_ == cudaSuccess) << #stmt << ": " << cudaGetErrorString(k2_err_);   \
  } while (0)
