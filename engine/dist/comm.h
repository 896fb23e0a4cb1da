// Collective communication for data-parallel training: the Communicator interface (all-reduce sum/max,
// broadcast, barrier), torchrun/Slurm launch variables, a TCP ring (CPU, loopback by default) and NCCL.
//
// Ownership and threads: a Communicator belongs to one rank of one job; it may be used from any ONE
// thread at a time (data parallelism runs it on a comm thread while backward continues, and the caller
// waits for that thread before the next call). Every collective must be called by every rank in the
// same order with the same sizes; a mismatch is detected (message headers) and reported, never silently
// mixed. Failure: every connect, accept, send and receive is bounded by the timeout; a peer that exits
// or closes its socket gives an IoError naming both ranks; nothing hangs and nothing throws. After an
// error the communicator is broken (later calls fail fast) — the job should exit.
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
  int master_port = 29500;
  std::string source;                    // "torchrun", "slurm" or "default" (no variables: world of 1)
};

// Reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT (torchrun); when RANK/WORLD_SIZE are
// absent, SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID. No variables at all = one process (rank 0 of 1).
// Errors (InvalidArgument) name the variable, its value and what was expected: non-integers, rank
// outside [0, world), world < 1, port outside [1, 65535], RANK without WORLD_SIZE or the reverse, a world
// above 1 with no MASTER_ADDR/MASTER_PORT is allowed (defaults 127.0.0.1:29500, torchrun's defaults).
// `getenv` is injectable for tests.
Expected<LaunchEnv> LaunchEnvFromEnv(const std::function<const char*(const char*)>& getenv_fn = {});

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual std::string backend() const = 0;  // "tcp" | "nccl"
  // In place: every rank ends with the element-wise sum/max over ranks, bit-identical on all ranks.
  // n may be 0 or any length (not a multiple of the world size).
  virtual Status AllReduce(float* data, int64_t n, ReduceOp op) = 0;
  virtual Status AllReduce(double* data, int64_t n, ReduceOp op) = 0;
  // Copies `bytes` bytes from rank `root` into every rank's `data`.
  virtual Status Broadcast(void* data, int64_t bytes, int root) = 0;
  virtual Status Barrier() = 0;
};

// TCP ring. Rank 0 listens at master_addr:master_port for the rendezvous (every rank reports its own
// ring listener there and receives the table); then rank r connects to rank r+1 and accepts rank r-1,
// and collectives run as a ring (reduce-scatter + all-gather, 2(W-1)/W of the data per rank per link).
// IPv4. world_size 1 opens no socket.
struct TcpOptions {
  int rank = 0;
  int world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;   // rank 0 only: 0 = any free port (tests), reported through on_listen
  double timeout_s = 300;    // bound on rendezvous and on every wait for a peer inside a collective
  std::function<void(int port)> on_listen;  // rank 0: called with the bound rendezvous port
};
Expected<std::unique_ptr<Communicator>> ConnectTcp(const TcpOptions& opt);

// NCCL (K2GYM_CUDA builds with NCCL found): device `local_rank`; rank 0 creates the ncclUniqueId and
// sends it over a TCP rendezvous at master_addr:master_port (the same ring as ConnectTcp, then kept for
// nothing else). Buffers may be host or device pointers (host buffers are staged through the device).
// Waits are bounded by timeout_s (the communicator is aborted on expiry). Unavailable when k2gym was
// built without NCCL or no GPU is visible.
bool NcclBuilt();
Expected<std::unique_ptr<Communicator>> ConnectNccl(const LaunchEnv& env, double timeout_s);

}  // namespace k2::engine::dist
