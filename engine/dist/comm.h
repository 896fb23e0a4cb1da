// Collective communication for data-parallel training: the Communicator interface (all-reduce sum/max,
// broadcast, barrier), torchrun/Slurm launch variables, Gloo (CPU, its TCP transport) and NCCL (GPU).
//
// Ownership and threads: a Communicator belongs to one rank of one job; it may be used from any ONE
// thread at a time (data parallelism runs it on a comm thread while backward continues, and the caller
// waits for that thread before the next call). Every collective must be called by every rank in the
// same order with the same sizes; a mismatch is detected (Gloo: a header all-reduce before each
// collective) and reported, never silently mixed. Failure: the rendezvous and every collective are
// bounded by the timeout; a peer that exits gives an IoError (closed connection) or a Timeout on every
// other rank, naming this rank; nothing hangs and nothing throws. After an error the communicator is
// broken (later calls fail fast) — the job should exit.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/status.h"

namespace k2::engine::dist {

enum class ReduceOp { kSum, kMax };

// Where this process sits in the job, from the launcher's environment.
struct LaunchEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;                    // GPU index on this host (NCCL); informational on CPU
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;               // where rank 0 serves k2gym's rendezvous store
  std::string source;                    // "torchrun", "slurm" or "default" (no variables: world of 1)
};

// Reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT (torchrun); when RANK/WORLD_SIZE are
// absent, SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID. No variables at all = one process (rank 0 of 1).
// Errors (InvalidArgument) name the variable, its value and what was expected: non-integers, rank
// outside [0, world), world < 1, port outside [1, 65535], RANK without WORLD_SIZE or the reverse, a world
// above 1 with no MASTER_ADDR/MASTER_PORT is allowed (defaults 127.0.0.1:29500, torchrun's defaults).
// Under torchrun with TORCHELASTIC_USE_AGENT_STORE=True, torchrun's own agent already serves a store on
// MASTER_PORT, so k2gym's store goes on MASTER_PORT + 1 (master_port is that port).
// `getenv` is injectable for tests.
Expected<LaunchEnv> LaunchEnvFromEnv(const std::function<const char*(const char*)>& getenv_fn = {});

// Data-parallel settings shared by pretrain, sft and rl (config sections <cmd>.dist).
struct DistConfig {
  std::string backend = "gloo";  // gloo (CPU, TCP) | nccl (GPU builds)
  double bucket_mb = 4.0;        // gradient bucket size
  bool overlap = true;           // all-reduce buckets during Backward (comm thread) instead of after it
  double timeout_s = 300;        // bound on the rendezvous and on every collective
  template <class V> void Visit(V& v) {
    v("backend", backend, "collectives: gloo (CPU, TCP) or nccl (CUDA builds)", {.choices = {"gloo", "nccl"}});
    v("bucket_mb", bucket_mb, "gradient all-reduce bucket size in MiB", {.min = 0.001});
    v("overlap", overlap, "reduce buckets while Backward continues (comm thread)");
    v("timeout_s", timeout_s, "seconds to wait for a peer before failing", {.min = 0.1});
  }
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string backend() const = 0;  // "gloo" | "nccl"
  // In place: every rank ends with the element-wise sum/max over ranks, bit-identical on all ranks.
  // n may be 0 or any length (not a multiple of the world size).
  virtual Status AllReduce(float* data, int64_t n, ReduceOp op) = 0;
  virtual Status AllReduce(double* data, int64_t n, ReduceOp op) = 0;
  // Copies `bytes` bytes from rank `root` into every rank's `data`.
  virtual Status Broadcast(void* data, int64_t bytes, int root) = 0;
  virtual Status Barrier() = 0;
};

// Gloo over its TCP transport. Rendezvous: rank 0 serves a key-value store at master_addr:master_port
// (engine/dist/store.h); every rank registers there (a duplicate RANK or a different WORLD_SIZE is
// rejected, ranks missing after timeout_s are named), then Gloo connects a full mesh of pairs through
// it. Collectives: Gloo's ring all-reduce (every rank ends with the same bits), broadcast, barrier.
// world_size 1 opens no socket. Gloo writes to sockets without MSG_NOSIGNAL, so connecting sets
// SIGPIPE to ignored for the process (a dead peer is then an EPIPE error, not a kill).
struct GlooOptions {
  int rank = 0;
  int world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;   // rank 0 only: 0 = any free port (tests), reported through on_listen
  double timeout_s = 300;    // bound on the rendezvous and on every collective
  std::function<void(int port)> on_listen;  // rank 0: called with the bound store port
};
Expected<std::unique_ptr<Communicator>> ConnectGloo(const GlooOptions& opt);

// NCCL (K2GYM_CUDA builds with NCCL found): device `local_rank`; rank 0 creates the ncclUniqueId and
// publishes it in the same rendezvous store as Gloo's (served by rank 0 at master_addr:master_port).
// Buffers may be host or device pointers (host buffers are staged through the device). Waits are
// bounded by timeout_s (the communicator is aborted on expiry). Unavailable when k2gym was built
// without NCCL or no GPU is visible.
bool NcclBuilt();
Expected<std::unique_ptr<Communicator>> ConnectNccl(const LaunchEnv& env, double timeout_s);

// The communicator of a launched job: null for a world of 1, else ConnectGloo / ConnectNccl by
// cfg.backend. Errors carry `what` (e.g. "sft") and the launch source.
Expected<std::unique_ptr<Communicator>> ConnectFromEnv(const LaunchEnv& env, const DistConfig& cfg,
                                                       const std::string& what);

}  // namespace k2::engine::dist
