// The NCCL Communicator on a real GPU: a one-rank job (the only kind one GPU can run) all-reduces host
// and device-staged buffers and broadcasts; skipped where k2gym has no NCCL or no GPU is visible.
#include <gtest/gtest.h>

#include "engine/cuda/device.h"
#include "engine/dist/comm.h"

namespace k2::engine::dist {
namespace {

TEST(Nccl, SingleRankCollectivesOnTheGpu) {
  if (!NcclBuilt()) GTEST_SKIP() << "built without NCCL (CPU build or NCCL not found)";
  if (CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device visible";
  LaunchEnv env;
  env.master_port = 0;  // world 1: the bootstrap opens no socket
  auto c = ConnectNccl(env, 60);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ((*c)->backend(), "nccl");
  std::vector<float> f(1001);
  for (size_t i = 0; i < f.size(); ++i) f[i] = static_cast<float>(i) * 0.5f;
  auto want = f;
  ASSERT_TRUE((*c)->AllReduce(f.data(), static_cast<int64_t>(f.size()), ReduceOp::kSum).ok());
  EXPECT_EQ(f, want);
  std::vector<double> d = {1.5, -2, 3};
  ASSERT_TRUE((*c)->AllReduce(d.data(), 3, ReduceOp::kMax).ok());
  EXPECT_EQ(d, (std::vector<double>{1.5, -2, 3}));
  char msg[6] = "hello";
  ASSERT_TRUE((*c)->Broadcast(msg, 6, 0).ok());
  EXPECT_STREQ(msg, "hello");
  EXPECT_TRUE((*c)->Barrier().ok());
}

TEST(Nccl, UnavailableIsAClearError) {
  if (NcclBuilt() && CudaDeviceCount() > 0) GTEST_SKIP() << "NCCL and a GPU are present";
  auto c = ConnectNccl(LaunchEnv{}, 1);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(c.status().code() == Code::kUnavailable) << c.status().ToString();
}

}  // namespace
}  // namespace k2::engine::dist
