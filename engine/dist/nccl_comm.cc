// The NCCL Communicator (K2GYM_CUDA builds with NCCL): ncclUniqueId from rank 0 through the rendezvous
// store (store.h), non-blocking communicator init and collectives polled against a deadline (ncclCommAbort on
// expiry, so a dead peer is a Timeout, not a hang); host buffers are staged through device memory.
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "engine/dist/comm.h"
#include "engine/dist/store.h"

namespace k2::engine::dist {

bool NcclBuilt() { return true; }

namespace {
using Clock = std::chrono::steady_clock;

std::string CudaErr(cudaError_t e) { return std::string(cudaGetErrorName(e)) + " (" + cudaGetErrorString(e) + ")"; }
std::string NcclErr(ncclResult_t r) { return ncclGetErrorString(r); }

class NcclComm final : public Communicator {
 public:
  NcclComm(int rank, int world, int device, double timeout_s)
      : rank_(rank), world_(world), device_(device), timeout_s_(timeout_s) {}
  ~NcclComm() override {
    if (comm_ != nullptr) (void)(broken_.empty() ? ncclCommDestroy(comm_) : ncclCommAbort(comm_));
    if (stage_ != nullptr) (void)cudaFree(stage_);
    if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
  }
  int rank() const override { return rank_; }
  int world_size() const override { return world_; }
  std::string backend() const override { return "nccl"; }

  Status Init(const ncclUniqueId& id) {
    cudaError_t ce = cudaSetDevice(device_);
    if (ce != cudaSuccess) return Unavailable("cudaSetDevice(" + std::to_string(device_) + "): " + CudaErr(ce));
    ce = cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking);
    if (ce != cudaSuccess) return Unavailable("cudaStreamCreate: " + CudaErr(ce));
    ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
    cfg.blocking = 0;  // init and collectives return at once; Wait() polls them against the deadline
    ncclResult_t r = ncclCommInitRankConfig(&comm_, world_, id, rank_, &cfg);
    if (r != ncclSuccess && r != ncclInProgress) return Unavailable("ncclCommInitRankConfig: " + NcclErr(r));
    return Wait("ncclCommInitRank", /*stream=*/false);
  }

  Status AllReduce(float* data, int64_t n, ReduceOp op) override { return Reduce(data, n, ncclFloat32, op, 4); }
  Status AllReduce(double* data, int64_t n, ReduceOp op) override { return Reduce(data, n, ncclFloat64, op, 8); }
  Status Broadcast(void* data, int64_t bytes, int root) override {
    if (root < 0 || root >= world_) return InvalidArgument("Broadcast: root " + std::to_string(root) + " out of range");
    if (bytes == 0) return Status::Ok();
    K2_RETURN_IF_ERROR(Precheck());
    void* dev = nullptr;
    const bool host = !IsDevice(data);
    if (host) {
      K2_RETURN_IF_ERROR(Stage(static_cast<size_t>(bytes)));
      dev = stage_;
      if (rank_ == root) K2_RETURN_IF_ERROR(Cuda(cudaMemcpyAsync(dev, data, static_cast<size_t>(bytes), cudaMemcpyHostToDevice, stream_)));
    } else {
      dev = data;
    }
    K2_RETURN_IF_ERROR(Nccl(ncclBroadcast(dev, dev, static_cast<size_t>(bytes), ncclUint8, root, comm_, stream_)));
    K2_RETURN_IF_ERROR(Wait("ncclBroadcast", true));
    if (host) K2_RETURN_IF_ERROR(Cuda(cudaMemcpy(data, dev, static_cast<size_t>(bytes), cudaMemcpyDeviceToHost)));
    return Status::Ok();
  }
  Status Barrier() override {
    float x = 1;
    return AllReduce(&x, 1, ReduceOp::kSum);
  }

 private:
  Status Precheck() const {
    if (!broken_.empty()) return FailedPrecondition("nccl communicator unusable after an earlier error: " + broken_);
    return Status::Ok();
  }
  Status Fail(Status st) {
    if (broken_.empty()) broken_ = st.message();
    return st.Context("rank " + std::to_string(rank_) + " of " + std::to_string(world_) + " (nccl)");
  }
  Status Cuda(cudaError_t e) { return e == cudaSuccess ? Status::Ok() : Fail(Internal("CUDA: " + CudaErr(e))); }
  Status Nccl(ncclResult_t r) {
    return r == ncclSuccess || r == ncclInProgress ? Status::Ok() : Fail(IoError("NCCL: " + NcclErr(r)));
  }
  static bool IsDevice(const void* p) {
    cudaPointerAttributes a{};
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
      (void)cudaGetLastError();
      return false;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
  }
  Status Stage(size_t bytes) {
    if (bytes <= stage_bytes_) return Status::Ok();
    if (stage_ != nullptr) (void)cudaFree(stage_);
    stage_ = nullptr;
    stage_bytes_ = 0;
    K2_RETURN_IF_ERROR(Cuda(cudaMalloc(&stage_, bytes)));
    stage_bytes_ = bytes;
    return Status::Ok();
  }
  // Polls the communicator (and the stream) until done, an asynchronous NCCL error, or the deadline;
  // on expiry the communicator is aborted so that no kernel keeps waiting for a dead peer.
  Status Wait(const char* what, bool stream) {
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s_));
    while (true) {
      ncclResult_t ar = ncclSuccess;
      (void)ncclCommGetAsyncError(comm_, &ar);
      if (ar != ncclSuccess && ar != ncclInProgress) return Fail(IoError(std::string(what) + ": " + NcclErr(ar)));
      if (ar == ncclSuccess) {
        if (!stream) return Status::Ok();
        const cudaError_t q = cudaStreamQuery(stream_);
        if (q == cudaSuccess) return Status::Ok();
        if (q != cudaErrorNotReady) return Fail(Internal(std::string(what) + ": " + CudaErr(q)));
      }
      if (Clock::now() >= deadline) {
        (void)ncclCommAbort(comm_);
        comm_ = nullptr;
        return Fail(Timeout(std::string(what) + " did not complete within " + std::to_string(timeout_s_) +
                            " s (a peer is missing or dead); communicator aborted"));
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  Status Reduce(void* data, int64_t n, ncclDataType_t type, ReduceOp op, size_t elem) {
    if (n == 0) return Status::Ok();
    K2_RETURN_IF_ERROR(Precheck());
    const size_t bytes = static_cast<size_t>(n) * elem;
    void* dev = data;
    const bool host = !IsDevice(data);
    if (host) {
      K2_RETURN_IF_ERROR(Stage(bytes));
      dev = stage_;
      K2_RETURN_IF_ERROR(Cuda(cudaMemcpyAsync(dev, data, bytes, cudaMemcpyHostToDevice, stream_)));
    }
    K2_RETURN_IF_ERROR(Nccl(ncclAllReduce(dev, dev, static_cast<size_t>(n), type, op == ReduceOp::kSum ? ncclSum : ncclMax,
                                          comm_, stream_)));
    K2_RETURN_IF_ERROR(Wait("ncclAllReduce", true));
    if (host) K2_RETURN_IF_ERROR(Cuda(cudaMemcpy(data, dev, bytes, cudaMemcpyDeviceToHost)));
    return Status::Ok();
  }

  int rank_, world_, device_;
  double timeout_s_;
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  void* stage_ = nullptr;
  size_t stage_bytes_ = 0;
  std::string broken_;
};

}  // namespace

Expected<std::unique_ptr<Communicator>> ConnectNccl(const LaunchEnv& env, double timeout_s) {
  int devices = 0;
  const cudaError_t ce = cudaGetDeviceCount(&devices);
  if (ce != cudaSuccess || devices == 0)
    return Unavailable("NCCL backend: no CUDA device visible" + (ce != cudaSuccess ? ": " + CudaErr(ce) : std::string()));
  if (env.local_rank >= devices)
    return InvalidArgument("NCCL backend: LOCAL_RANK=" + std::to_string(env.local_rank) + " but only " +
                           std::to_string(devices) + " GPU(s) are visible on this host");
  // Bootstrap: rank 0 serves the store and publishes the 128-byte ncclUniqueId; every rank reads it.
  std::unique_ptr<StoreServer> server;
  if (env.rank == 0) {
    K2_ASSIGN_OR_RETURN(server, StoreServer::Start(env.master_addr, env.master_port));
  }
  const std::string what = "rank 0's store (MASTER_ADDR:MASTER_PORT " + env.master_addr + ":" +
                           std::to_string(env.master_port) + ")";
  K2_ASSIGN_OR_RETURN(auto store, StoreClient::Connect(env.master_addr, env.master_port, timeout_s, what));
  ncclUniqueId id;
  std::memset(&id, 0, sizeof id);
  const auto wait = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  if (env.rank == 0) {
    const ncclResult_t r = ncclGetUniqueId(&id);
    if (r != ncclSuccess) return Unavailable("ncclGetUniqueId: " + NcclErr(r));
    const char* p = reinterpret_cast<const char*>(&id);
    K2_RETURN_IF_ERROR(store->Set("k2gym/nccl/id", std::vector<char>(p, p + sizeof id)));
  } else {
    K2_RETURN_IF_ERROR(store->Wait({"k2gym/nccl/id"}, wait));
    K2_ASSIGN_OR_RETURN(auto v, store->TryGet("k2gym/nccl/id"));
    if (!v || v->size() != sizeof id) return IoError(what + ": k2gym/nccl/id is not an ncclUniqueId");
    std::memcpy(&id, v->data(), sizeof id);
  }
  // Rank 0 keeps serving until every rank has read the id.
  K2_RETURN_IF_ERROR(store->Set("k2gym/nccl/got/" + std::to_string(env.rank), {'1'}));
  if (env.rank == 0) {
    std::vector<std::string> keys;
    for (int r = 0; r < env.world_size; ++r) keys.push_back("k2gym/nccl/got/" + std::to_string(r));
    K2_RETURN_IF_ERROR(store->Wait(keys, wait));
  }
  auto comm = std::make_unique<NcclComm>(env.rank, env.world_size, env.local_rank, timeout_s);
  K2_RETURN_IF_ERROR(comm->Init(id));
  return std::unique_ptr<Communicator>(std::move(comm));
}

}  // namespace k2::engine::dist
