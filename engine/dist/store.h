// Internal to engine/dist: the rendezvous key-value store over TCP (Boost.Asio). Rank 0 serves it at
// MASTER_ADDR:MASTER_PORT; every rank (rank 0 included) is a client. Gloo's connectFullMesh exchanges
// its pair addresses through it, and the NCCL bootstrap its ncclUniqueId.
//
// Why a store of our own: Gloo (Debian's 0.5 snapshot) ships only FileStore (needs a shared
// filesystem), HashStore (one process) and RedisStore (a Redis server); torchrun and Slurm give a host
// and a port, so the smallest thing that works across machines is this one: SET, SET-if-absent and GET
// of byte values over one TCP connection per client, with waits polled by the client.
//
// Threads: the server runs its own I/O thread; a client is used by one thread at a time. Every client
// call is bounded by a deadline; the Status calls never throw, the gloo::rendezvous::Store overrides
// (called inside Gloo) throw gloo::IoException as Gloo expects.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gloo/rendezvous/store.h>

#include "core/status.h"

namespace k2::engine::dist {

class StoreServer {
 public:
  // Listens on addr:port (IPv4 or a name; port 0 = any free port, see port()).
  static Expected<std::unique_ptr<StoreServer>> Start(const std::string& addr, int port);
  virtual ~StoreServer() = default;
  virtual int port() const = 0;
};

class StoreClient final : public gloo::rendezvous::Store {
 public:
  // Connects to the server, retrying refused connects until timeout_s (the server may start later).
  // `what` names the server in errors ("rank 0's store at MASTER_ADDR:MASTER_PORT 10.0.0.1:29500").
  static Expected<std::unique_ptr<StoreClient>> Connect(const std::string& addr, int port, double timeout_s,
                                                        const std::string& what);
  ~StoreClient() override;

  Status Set(const std::string& key, const std::vector<char>& value);
  // Sets the key only when absent; false when it already existed (value unchanged).
  Expected<bool> SetIfAbsent(const std::string& key, const std::vector<char>& value);
  Expected<std::optional<std::vector<char>>> TryGet(const std::string& key);
  // Polls until every key exists or the timeout: Timeout naming the missing keys.
  Status Wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout);
  // This end's IPv4 address (the interface that routes to the server).
  std::string local_address() const;

  // gloo::rendezvous::Store (throw gloo::IoException on failure).
  void set(const std::string& key, const std::vector<char>& data) override;
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override;

 private:
  struct Impl;
  explicit StoreClient(std::unique_ptr<Impl> impl);
  Expected<std::vector<char>> Call(char op, const std::string& key, const std::vector<char>* value);
  std::unique_ptr<Impl> impl_;
};

}  // namespace k2::engine::dist
