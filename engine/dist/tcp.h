// Internal to engine/dist: bounded POSIX TCP helpers shared by the TCP ring and the NCCL bootstrap.
// Every call takes a deadline; none blocks past it. Not thread-safe per socket (one user per Fd).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "core/status.h"

namespace k2::engine::dist {

// Owns a file descriptor (closed on destruction).
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  bool ok() const { return fd_ >= 0; }
  int get() const { return fd_; }
  void Close();

 private:
  int fd_ = -1;
};

using Deadline = std::chrono::steady_clock::time_point;

Expected<uint32_t> ResolveIpv4(const std::string& host);      // network byte order
std::string Ipv4String(uint32_t ip_be, int port);              // "a.b.c.d:port"
// Non-blocking listener on ip:port (0 = any free port, written to *bound_port).
Expected<Fd> ListenTcp(uint32_t ip_be, int port, int* bound_port);
// Connects, retrying refused attempts every 50 ms until the deadline (the peer may start later).
Expected<Fd> ConnectTcpRetry(uint32_t ip_be, int port, Deadline deadline, const std::string& what);
Expected<Fd> AcceptWithin(int listen_fd, Deadline deadline);
// Sends sn bytes on send_fd while receiving rn bytes on recv_fd (both at once, so two ranks sending to
// each other cannot deadlock on full kernel buffers). EOF / reset name the peer; the deadline is a Timeout.
Status Exchange(int send_fd, const void* sbuf, size_t sn, int recv_fd, void* rbuf, size_t rn, Deadline deadline,
                const std::string& send_peer, const std::string& recv_peer);
Status SendAll(int fd, const void* buf, size_t n, Deadline deadline, const std::string& peer);
Status RecvAll(int fd, void* buf, size_t n, Deadline deadline, const std::string& peer);

}  // namespace k2::engine::dist
