// A zygote: one python3 process living in fresh user/mount/PID/network/IPC/UTS namespaces on a minimal
// read-only root, with the preload modules imported; it forks a fresh child per run (zygote_py.cc).
//
// Ownership: a Zygote owns its process (PID 1 of its PID namespace, so killing it kills every run it
// started) and its control socket. Thread safety: Submit() may be called from many threads (a mutex
// serializes the sendmsg). Failure: Start() reports the failing setup step and errno; a dead zygote
// makes Submit() fail, and the pool restarts it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace k2::sandbox::detail {

const char* ZygoteScript();
// The zygote's native helper (zygote_helper.c), a shared object embedded at build time.
const unsigned char* ZygoteHelperSo();
size_t ZygoteHelperSoSize();

struct ZygoteOptions {
  std::string python = "/usr/bin/python3";
  std::string root_dir;                 // host mountpoint for the zygote's private root (exists, empty)
  std::vector<std::string> ro_binds;    // host paths bound read-only (symlinks recreated)
  std::vector<std::string> preload;
  bool warm_up = true;                  // run the warm-up program before freezing (zygote_py.cc)
  std::string seccomp_bpf;              // raw BPF, loaded by each run
  std::string seccomp_zygote_bpf;       // raw BPF, loaded by the zygote before it serves (runs inherit it)
  int64_t host_uid_base = 100000;
  int sandbox_uid = 1000;               // uid/gid of the program inside
  bool netns_per_run = true;
  int prefault = 3;                     // learned prefault (zygote_helper.c): 0 off, 1 written pages, 3 + file pages
  int probes = 3;                       // probe runs that learn it (a page must show in a majority)
};

class Zygote {
 public:
  static Expected<std::unique_ptr<Zygote>> Start(const ZygoteOptions& opt);
  ~Zygote();  // closes the control socket, kills and reaps the process

  // Hands one run to the zygote: its k2_run_params (zygote_abi.h, as bytes) and fds ([request memfd,
  // stdin, stdout, stderr, status, cgroup fds...]).
  Status Submit(const std::string& params, const std::vector<int>& fds);
  bool alive();  // false once it died (reaped here) or was killed
  // SIGKILLs the zygote and so every run it started (the destructor still reaps it).
  void Kill();
  pid_t pid() const { return pid_; }
  // What the zygote reported when ready: {"prefault", "ranges", "write_pages", "read_pages" [, "error"]}.
  const json& info() const { return info_; }

 private:
  Zygote() = default;
  pid_t pid_ = -1;
  int ctl_ = -1;
  std::mutex mu_;
  bool dead_ = false;
  json info_ = json::object();
};

}  // namespace k2::sandbox::detail
