// Launch environment of a data-parallel job: torchrun's RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT
// with Slurm's SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID as fallbacks (see comm.h).
#include <cerrno>
#include <cstdlib>
#include <string>

#include "engine/dist/comm.h"

namespace k2::engine::dist {
namespace {

// Strict integer parse: the whole value, base 10, within [lo, hi].
Expected<int> ParseInt(const char* name, const char* value, long lo, long hi, const std::string& expected) {
  std::string v(value);
  char* end = nullptr;
  errno = 0;
  const long x = v.empty() ? 0 : std::strtol(v.c_str(), &end, 10);
  if (v.empty() || errno != 0 || end == nullptr || *end != '\0' || x < lo || x > hi)
    return InvalidArgument(std::string("environment variable ") + name + "=\"" + v + "\": expected " + expected);
  return static_cast<int>(x);
}

}  // namespace

Expected<LaunchEnv> LaunchEnvFromEnv(const std::function<const char*(const char*)>& getenv_fn) {
  auto get = [&](const char* k) -> const char* { return getenv_fn ? getenv_fn(k) : std::getenv(k); };
  LaunchEnv e;
  const char* rank = get("RANK");
  const char* world = get("WORLD_SIZE");
  const char* local = get("LOCAL_RANK");
  const char *rank_name = "RANK", *world_name = "WORLD_SIZE", *local_name = "LOCAL_RANK";
  if (rank == nullptr && world == nullptr) {
    rank = get("SLURM_PROCID");
    world = get("SLURM_NTASKS");
    local = local != nullptr ? local : get("SLURM_LOCALID");
    rank_name = "SLURM_PROCID", world_name = "SLURM_NTASKS";
    if (local != nullptr && get("LOCAL_RANK") == nullptr) local_name = "SLURM_LOCALID";
    e.source = rank != nullptr || world != nullptr ? "slurm" : "default";
  } else {
    e.source = "torchrun";
  }
  if ((rank == nullptr) != (world == nullptr))
    return InvalidArgument(std::string("environment: ") + (rank == nullptr ? rank_name : world_name) +
                           " is not set but " + (rank == nullptr ? world_name : rank_name) +
                           " is (a data-parallel launch sets both)");
  if (world != nullptr) {
    K2_ASSIGN_OR_RETURN(e.world_size, ParseInt(world_name, world, 1, 1 << 20, "an integer >= 1"));
    K2_ASSIGN_OR_RETURN(e.rank, ParseInt(rank_name, rank, 0, e.world_size - 1,
                                         "an integer in [0, " + std::to_string(e.world_size) + ") (" +
                                             world_name + "=" + std::to_string(e.world_size) + ")"));
  }
  if (local != nullptr) {
    K2_ASSIGN_OR_RETURN(e.local_rank, ParseInt(local_name, local, 0, 1 << 20, "an integer >= 0"));
  }
  if (const char* a = get("MASTER_ADDR")) {
    if (*a == '\0') return InvalidArgument("environment variable MASTER_ADDR is empty: expected a host name or IPv4 address");
    e.master_addr = a;
  }
  if (const char* p = get("MASTER_PORT")) {
    K2_ASSIGN_OR_RETURN(e.master_port, ParseInt("MASTER_PORT", p, 1, 65535, "a TCP port in [1, 65535]"));
  }
  // torchrun's agent serves its own store on MASTER_PORT and says so; k2gym's goes on the next port.
  if (const char* a = get("TORCHELASTIC_USE_AGENT_STORE"); a != nullptr && (std::string(a) == "True" || std::string(a) == "1")) {
    if (e.master_port == 65535)
      return InvalidArgument("MASTER_PORT=65535 under torchrun's agent store: k2gym's rendezvous needs MASTER_PORT+1");
    e.master_port += 1;
  }
  return e;
}

}  // namespace k2::engine::dist
