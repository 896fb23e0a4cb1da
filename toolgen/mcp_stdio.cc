// The stdio MCP transport: spawns the server with posix_spawn, talks newline-delimited JSON over its
// stdin/stdout, keeps the tail of its stderr for error messages, and always reaps it.
//
// Why posix_spawn + poll rather than Boost.Process v1: we need exact control of three things Boost.Process
// v1 hides or makes awkward: a byte cap on an unterminated line (an oversize reply must be an error, not an
// allocation), a process group (so `npx`/shell wrappers and their children die together), and signal
// hygiene (the child's stdin is a socketpair written with MSG_NOSIGNAL, so a dead server is EPIPE, never a
// SIGPIPE that kills us; Boost.Process v1 also reports failures by exception). This file is ~300 lines.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>

#include "toolgen/mcp_transport.h"

extern char** environ;

namespace k2::toolgen::mcp {
namespace {

std::string Errno(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("killed by signal ") + strsignal(WTERMSIG(status));
  return "stopped";
}

int MillisUntil(const Wait& w, int cap_ms) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(w.deadline - Clock::now()).count();
  if (left < 0) left = 0;
  if (w.cancel) cap_ms = std::min(cap_ms, 20);  // cancellation is polled
  return static_cast<int>(std::min<int64_t>(left, cap_ms));
}

class StdioTransport final : public Transport {
 public:
  explicit StdioTransport(StdioOptions o) : opt_(std::move(o)) {}
  ~StdioTransport() override { Close(); }

  Status Start() {
    if (opt_.argv.empty()) return InvalidArgument("mcp stdio: empty command");
    int in_sv[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_sv) != 0) return Unavailable(Errno("socketpair"));
    if (pipe2(out, O_CLOEXEC) != 0) {
      CloseAll({in_sv[0], in_sv[1]});
      return Unavailable(Errno("pipe2"));
    }
    if (!opt_.forward_stderr && pipe2(err, O_CLOEXEC) != 0) {
      CloseAll({in_sv[0], in_sv[1], out[0], out[1]});
      return Unavailable(Errno("pipe2"));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_sv[1], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    if (!opt_.forward_stderr) posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    if (!opt_.cwd.empty()) posix_spawn_file_actions_addchdir_np(&fa, opt_.cwd.c_str());
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGINT);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setpgroup(&attr, 0);  // own process group: Close() signals wrappers and children together
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    std::vector<std::string> env_strings;
    for (const std::string& name : opt_.inherit_env) {
      if (opt_.env.count(name)) continue;
      const char* v = std::getenv(name.c_str());
      // Shell functions exported by bash ("() {" values) are skipped, as the SDK does.
      if (v != nullptr && std::string_view(v).rfind("()", 0) != 0) env_strings.push_back(name + "=" + v);
    }
    for (auto& [k, v] : opt_.env) env_strings.push_back(k + "=" + v);
    std::vector<char*> envp, argv;
    for (auto& s : env_strings) envp.push_back(s.data());
    envp.push_back(nullptr);
    for (auto& s : opt_.argv) argv.push_back(const_cast<char*>(s.c_str()));
    argv.push_back(nullptr);

    int rc = posix_spawnp(&pid_, argv[0], &fa, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    CloseAll({in_sv[1], out[1], err[1]});
    if (rc != 0) {
      CloseAll({in_sv[0], out[0], err[0]});
      pid_ = -1;
      return Unavailable("mcp stdio: cannot start " + json(opt_.argv[0]).dump() + ": " + std::strerror(rc));
    }
    in_ = in_sv[0];
    out_ = out[0];
    err_ = err[0];
    for (int fd : {in_, out_, err_})
      if (fd >= 0) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return Status::Ok();
  }

  Status Send(const json& message, const Wait& wait) override {
    if (!alive()) return Unavailable(Gone());
    std::string line = message.dump(-1, ' ', false, json::error_handler_t::replace);
    line += '\n';
    size_t off = 0;
    while (off < line.size()) {
      ssize_t n = send(in_, line.data() + off, line.size() - off, MSG_NOSIGNAL);
      if (n > 0) {
        off += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        ReapIfExited(200);
        return Unavailable(Gone() + " (write: " + std::strerror(errno) + ")");
      }
      // The server is not reading; keep draining its output so neither side blocks on a full pipe.
      if (wait.cancel && wait.cancel->load()) return Cancelled("mcp stdio: send cancelled");
      if (Clock::now() >= wait.deadline) return Timeout("mcp stdio: server did not read its stdin before the deadline");
      pollfd fds[3] = {{in_, POLLOUT, 0}, {out_, POLLIN, 0}, {err_, POLLIN, 0}};
      poll(fds, err_ >= 0 ? 3 : 2, MillisUntil(wait, 100));
      if (fds[1].revents & (POLLIN | POLLHUP)) {
        Status s = ReadOut();
        if (!s.ok()) return s;
      }
      if (err_ >= 0 && (fds[2].revents & (POLLIN | POLLHUP))) ReadErr();
    }
    return Status::Ok();
  }

  Expected<json> Receive(const Wait& wait) override {
    while (true) {
      size_t nl;
      while ((nl = buf_.find('\n', scanned_)) != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        scanned_ = 0;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        auto j = ParseJson(line, "mcp server stdout");
        // A line that is a JSON-RPC message but breaks the reader's limits (a number outside the double
        // range, nesting past the depth limit) is the server's protocol error, reported as such: skipping
        // it like a banner would leave the request waiting for its deadline.
        if (!j.ok() && line[line.find_first_not_of(" \t\r")] == '{' && line.find("\"jsonrpc\"") != std::string::npos)
          return Corruption("invalid JSON-RPC message from " + Describe() + ": " + j.status().message());
        if (!j.ok() || !j->is_object()) {
          // Servers print banners and logs to stdout; the SDK client skips such lines, so do we (bounded).
          const std::string head = json(line.substr(0, 120)).dump(-1, ' ', false, json::error_handler_t::replace);
          if (++skipped_ > opt_.max_skipped_lines)
            return Corruption("invalid JSON from " + Describe() + ": more than " +
                              std::to_string(opt_.max_skipped_lines) + " non-JSON lines in a row; last starts " + head);
          std::fprintf(stderr, "mcp stdio: %s: skipped a non-JSON stdout line: %s\n", Describe().c_str(), head.c_str());
          continue;
        }
        skipped_ = 0;
        return std::move(*j);
      }
      scanned_ = buf_.size();
      if (buf_.size() > opt_.max_message_bytes) {
        size_t n = buf_.size();
        Close();
        return ResourceExhausted("mcp stdio: a message from " + opt_.argv[0] + " exceeds " +
                                 std::to_string(opt_.max_message_bytes) + " bytes (" + std::to_string(n) +
                                 " read without a newline); connection closed");
      }
      if (out_ < 0) return Unavailable(Gone());
      if (wait.cancel && wait.cancel->load()) return Cancelled("mcp stdio: receive cancelled");
      int ms = MillisUntil(wait, 1000);
      if (ms == 0 && Clock::now() >= wait.deadline) return Timeout("mcp stdio: no message from " + Describe() + " before the deadline");
      pollfd fds[2] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}};
      int rc = poll(fds, err_ >= 0 ? 2 : 1, ms);
      if (rc < 0 && errno != EINTR) return Unavailable(Errno("poll"));
      if (err_ >= 0 && (fds[1].revents & (POLLIN | POLLHUP))) ReadErr();
      if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
        Status s = ReadOut();
        if (!s.ok()) return s;
      }
    }
  }

  void Close() override {
    if (in_ >= 0) {
      ::close(in_);  // EOF on stdin is the polite way to ask an MCP stdio server to exit
      in_ = -1;
    }
    if (pid_ > 0) {
      if (!WaitExit(opt_.close_grace_ms)) {
        kill(-pid_, SIGTERM);
        if (!WaitExit(1000)) {
          kill(-pid_, SIGKILL);
          WaitExit(-1);
        }
      }
      kill(-pid_, SIGKILL);  // children the server left behind in its group (ESRCH when none)
      pid_ = -1;
    }
    CloseAll({out_, err_});
    out_ = err_ = -1;
  }

  bool alive() const override { return pid_ > 0 && out_ >= 0 && in_ >= 0; }

  std::string Describe() const override {
    std::string cmd;
    for (auto& a : opt_.argv) cmd += (cmd.empty() ? "" : " ") + a;
    return "stdio:" + cmd + (pid_ > 0 ? " (pid " + std::to_string(pid_) + ")" : "");
  }

 private:
  static void CloseAll(std::initializer_list<int> fds) {
    for (int fd : fds)
      if (fd >= 0) ::close(fd);
  }

  // Reads what stdout has; EOF marks the server gone (and reaps it).
  Status ReadOut() {
    char chunk[65536];
    while (true) {
      ssize_t n = read(out_, chunk, sizeof chunk);
      if (n > 0) {
        buf_.append(chunk, static_cast<size_t>(n));
        if (buf_.size() > opt_.max_message_bytes + sizeof chunk) return Status::Ok();  // Receive reports it
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Status::Ok();
      // EOF or error: the server closed stdout.
      size_t partial = buf_.find('\n') == std::string::npos ? buf_.size() : 0;
      ::close(out_);
      out_ = -1;
      if (buf_.find('\n') != std::string::npos) return Status::Ok();  // complete lines still to deliver
      ReapIfExited(500);
      return Unavailable(Gone() + (partial ? " mid-message after " + std::to_string(partial) + " bytes" : ""));
    }
  }

  void ReadErr() {
    char chunk[4096];
    while (err_ >= 0) {
      ssize_t n = read(err_, chunk, sizeof chunk);
      if (n > 0) {
        err_tail_.append(chunk, static_cast<size_t>(n));
        if (err_tail_.size() > 4096) err_tail_.erase(0, err_tail_.size() - 4096);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n == 0) {
        ::close(err_);
        err_ = -1;
      }
      return;
    }
  }

  bool WaitExit(int timeout_ms) {
    if (pid_ <= 0) return true;
    auto until = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, timeout_ms < 0 ? 0 : WNOHANG);
      if (r == pid_) {
        exit_ = DescribeExit(status);
        return true;
      }
      if (r < 0 && errno != EINTR) return true;  // not our child any more
      if (timeout_ms >= 0 && Clock::now() >= until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  void ReapIfExited(int ms) {
    if (pid_ > 0 && WaitExit(ms)) {
      kill(-pid_, SIGKILL);
      pid_ = -1;
    }
    if (err_ >= 0) ReadErr();
  }

  std::string Gone() const {
    std::string tail = err_tail_;
    while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.pop_back();
    if (tail.size() > 300) tail = "..." + tail.substr(tail.size() - 300);
    std::string cmd = opt_.argv.empty() ? "" : opt_.argv[0];
    return "mcp server " + json(cmd).dump() + " is gone (" + (exit_.empty() ? "closed its stdout" : exit_) + ")" +
           (tail.empty() ? "" : "; stderr: " + tail);
  }

  StdioOptions opt_;
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1, err_ = -1;
  std::string buf_;       // stdout bytes not yet returned as messages
  size_t scanned_ = 0;    // buf_[0, scanned_) holds no newline
  std::string err_tail_;  // last 4 KiB of stderr
  std::string exit_;      // how the process ended, once reaped
  int skipped_ = 0;       // non-JSON stdout lines in a row
};

}  // namespace

Expected<std::unique_ptr<Transport>> StartStdio(const StdioOptions& options) {
  auto t = std::make_unique<StdioTransport>(options);
  K2_RETURN_IF_ERROR(t->Start());
  return std::unique_ptr<Transport>(std::move(t));
}

}  // namespace k2::toolgen::mcp
