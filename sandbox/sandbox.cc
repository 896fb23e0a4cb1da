// The Sandbox: a pool of zygotes, one cgroup per run, the host side of a run (fds, polling with
// output caps, wall/CPU limits, kill and reap) and the classification of the outcome.
#include "sandbox/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <algorithm>
#include <deque>
#include <mutex>
#include <thread>

#include "core/json.h"
#include "core/thread_pool.h"
#include "sandbox/detail/base64.h"
#include "sandbox/detail/cgroup.h"
#include "sandbox/detail/seccomp.h"
#include "sandbox/detail/zygote.h"
#include "sandbox/detail/zygote_abi.h"

namespace k2::sandbox {

const char* RunStatusName(RunStatus s) {
  switch (s) {
    case RunStatus::kOk: return "ok";
    case RunStatus::kRuntimeError: return "runtime_error";
    case RunStatus::kTimeout: return "timeout";
    case RunStatus::kMemoryLimit: return "memory_limit";
    case RunStatus::kOutputLimit: return "output_limit";
    case RunStatus::kSandboxError: return "sandbox_error";
  }
  return "?";
}

Status ValidateLimits(const Limits& l) {
  auto bad = [](const char* f, const std::string& want, double got) {
    return InvalidArgument(std::string("limits.") + f + ": expected " + want + ", got " + std::to_string(got));
  };
  if (!(l.wall_s >= 0.01 && l.wall_s <= 3600)) return bad("wall_s", "number in [0.01, 3600]", l.wall_s);
  if (!(l.cpu_s >= 0.01 && l.cpu_s <= 3600)) return bad("cpu_s", "number in [0.01, 3600]", l.cpu_s);
  if (l.memory_mb < 16 || l.memory_mb > (1 << 20)) return bad("memory_mb", "integer in [16, 1048576]", double(l.memory_mb));
  if (l.pids < 4 || l.pids > (1 << 16)) return bad("pids", "integer in [4, 65536]", l.pids);
  if (l.output_bytes < 1 || l.output_bytes > (1LL << 34)) return bad("output_bytes", "integer in [1, 2^34]", double(l.output_bytes));
  if (l.tmpfs_mb < 1 || l.tmpfs_mb > (1 << 20)) return bad("tmpfs_mb", "integer in [1, 1048576]", double(l.tmpfs_mb));
  if (l.open_files < 16 || l.open_files > (1 << 20)) return bad("open_files", "integer in [16, 1048576]", l.open_files);
  if (!(l.cpus >= 0.01 && l.cpus <= 1024)) return bad("cpus", "number in [0.01, 1024]", l.cpus);
  return Status::Ok();
}

namespace {

// A path inside the sandbox: relative to /work (the program's cwd), or absolute in the sandbox's own root.
// Files are written only where the sandbox is writable (/work, /tmp, /mnt, /dev/shm); fetching reads any
// regular file of the root but /proc, /sys and /dev. No "..", NUL or empty path; bounded length. Symlinks
// are never followed when the files are written or read (zygote_py.cc, safe_open_in).
Status ValidateSandboxPath(const std::string& field, const std::string& p, bool for_writing) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument(field + ": \"" + p.substr(0, 80) + "\": " + why);
  };
  if (p.empty() || p.size() > 1024 || p.find('\0') != std::string::npos) return bad("expected a file path");
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    if (p.substr(start, end - start) == "..") return bad("\"..\" is not allowed");
    start = end + 1;
  }
  if (p[0] != '/') return Status::Ok();
  for (const char* dir : {"/work/", "/tmp/", "/mnt/", "/dev/shm/"}) {
    if (p.rfind(dir, 0) == 0 && p.size() > std::strlen(dir)) return Status::Ok();
  }
  if (for_writing) return bad("an absolute path must be under /work, /tmp, /mnt or /dev/shm (the rest is read-only)");
  if (p == "/proc" || p.rfind("/proc/", 0) == 0 || p.rfind("/dev/", 0) == 0 || p.rfind("/sys", 0) == 0) {
    return bad("/proc, /sys and /dev cannot be fetched");
  }
  return Status::Ok();
}

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Closes a set of fds on scope exit.
struct FdSet {
  std::vector<int> fds;
  ~FdSet() { for (int fd : fds) if (fd >= 0) ::close(fd); }
  int Add(int fd) { fds.push_back(fd); return fd; }
  void Close(int& fd) {
    for (auto& f : fds) if (f == fd) f = -1;
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

int MemfdWith(const std::string& name, const std::string& data) {
  int fd = ::memfd_create(name.c_str(), MFD_CLOEXEC);
  if (fd < 0) return -1;
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) { ::close(fd); return -1; }
    off += static_cast<size_t>(n);
  }
  if (::lseek(fd, 0, SEEK_SET) != 0) { ::close(fd); return -1; }
  return fd;
}

}  // namespace

namespace detail {

class SandboxImpl {
 public:
  SandboxConfig cfg;
  std::unique_ptr<CgroupTree> cgroups;
  detail::SeccompFilters seccomp;
  std::string root_dir;
  std::vector<std::unique_ptr<Zygote>> zygotes;
  std::mutex zy_mu;      // guards zygotes (restarts)
  std::atomic<uint64_t> next{0};
  std::atomic<bool> stopping{false};
  std::vector<Zygote*> cold;  // cold-path zygotes in use (guarded by zy_mu)
  std::atomic<uint64_t> run_counter{0};
  std::mutex slots_mu;
  std::condition_variable slots_cv;
  int running = 0;
  std::unique_ptr<ThreadPool> pool;

  ~SandboxImpl() {
    // Kill first, then drain: killing a zygote (PID 1 of its namespace) ends every run it started, so
    // in-flight runs finish at once with an error, and queued ones see `stopping`.
    stopping = true;
    {
      std::lock_guard<std::mutex> lk(zy_mu);
      for (auto& z : zygotes) if (z) z->Kill();
      for (auto* z : cold) z->Kill();
    }
    pool.reset();
    {
      std::lock_guard<std::mutex> lk(zy_mu);
      zygotes.clear();
    }
    cgroups.reset();
    if (!root_dir.empty()) ::rmdir(root_dir.c_str());
  }

  ZygoteOptions Options() const {
    ZygoteOptions o;
    o.python = cfg.python;
    o.root_dir = root_dir;
    o.ro_binds = cfg.ro_binds;
    o.preload = cfg.warm ? cfg.preload : std::vector<std::string>{};
    o.warm_up = cfg.warm;  // the cold reference stays a plain fresh interpreter
    o.seccomp_bpf = seccomp.run;
    o.seccomp_zygote_bpf = seccomp.zygote;
    o.host_uid_base = cfg.host_uid_base;
    o.netns_per_run = cfg.per_run_netns;
    // The cold reference learns nothing: it would pay the probes on every run.
    o.prefault = !cfg.warm || cfg.prefault == "off" ? 0 : cfg.prefault == "all" ? 3 : 1;
    return o;
  }

  // A live zygote (restarting a dead one), or an error.
  Expected<Zygote*> Pick() {
    uint64_t i = next++ % zygotes.size();
    std::lock_guard<std::mutex> lk(zy_mu);
    if (stopping) return Cancelled("the sandbox is shutting down");
    if (!zygotes[i] || !zygotes[i]->alive()) {
      zygotes[i].reset();
      K2_ASSIGN_OR_RETURN(zygotes[i], Zygote::Start(Options()));
    }
    return zygotes[i].get();
  }

  void Acquire() {
    std::unique_lock<std::mutex> lk(slots_mu);
    slots_cv.wait(lk, [&] { return running < cfg.max_concurrent; });
    ++running;
  }
  void Release() {
    {
      std::lock_guard<std::mutex> lk(slots_mu);
      --running;
    }
    slots_cv.notify_one();
  }

  RunResult Run(const RunRequest& req);
  RunResult RunOn(Zygote* zy, const RunRequest& req);
};

RunResult SandboxImpl::Run(const RunRequest& req) {
  RunResult res;
  auto reject = [&](const Status& s) {
    res.status = RunStatus::kSandboxError;
    res.message = s.message();
    return res;
  };
  if (req.language != "python" && req.language != "bash") {
    return reject(InvalidArgument("language: expected \"python\" or \"bash\", got \"" + req.language.substr(0, 40) + "\""));
  }
  if (Status s = ValidateLimits(req.limits); !s.ok()) return reject(s);
  for (auto& [path, _] : req.files) {
    if (Status s = ValidateSandboxPath("files", path, true); !s.ok()) return reject(s);
  }
  for (auto& path : req.fetch_files) {
    if (Status s = ValidateSandboxPath("fetch_files", path, false); !s.ok()) return reject(s);
  }
  Acquire();
  struct Slot { SandboxImpl* s; ~Slot() { s->Release(); } } slot{this};
  if (stopping) return reject(Cancelled("the sandbox is shutting down"));
  if (!cfg.warm) {
    // The reference path: a fresh interpreter (no preloads) per run, otherwise the same code.
    auto z = Zygote::Start(Options());
    if (!z.ok()) return reject(z.status());
    std::unique_ptr<Zygote> zy = std::move(*z);
    {
      std::lock_guard<std::mutex> lk(zy_mu);
      if (stopping) return reject(Cancelled("the sandbox is shutting down"));
      cold.push_back(zy.get());
    }
    RunResult r = RunOn(zy.get(), req);
    std::lock_guard<std::mutex> lk(zy_mu);
    cold.erase(std::find(cold.begin(), cold.end(), zy.get()));
    return r;
  }
  auto zy = Pick();
  if (!zy.ok()) return reject(zy.status());
  return RunOn(*zy, req);
}

RunResult SandboxImpl::RunOn(Zygote* zy, const RunRequest& req) {
  using Clock = std::chrono::steady_clock;
  RunResult res;
  const Limits& L = req.limits;
  auto fail = [&](const Status& s) {
    res.status = RunStatus::kSandboxError;
    res.message = s.message();
    return res;
  };
  CgroupLimits cl;
  // PID 1 (a forked copy of the zygote) is in the group; its pages are shared until written.
  cl.memory_bytes = L.memory_mb << 20;
  cl.pids = L.pids + 1;  // + our PID 1 when it stays to fetch files
  cl.cpus = L.cpus;
  auto cg = cgroups->NewRun("run-" + std::to_string(run_counter++), cl);
  if (!cg.ok()) return fail(cg.status());

  // The numeric parameters travel in the message itself (parsed by C in the zygote); the request memfd
  // holds a line of JSON only when there are files to write or fetch, then the program's bytes.
  k2_run_params params{};
  params.magic = K2_RUN_MAGIC;
  params.netns = cfg.per_run_netns ? (cfg.reuse_netns ? 2 : 1) : 0;
  params.tmpfs_kb = L.tmpfs_mb << 10;
  params.inodes = std::max<int64_t>(1024, L.tmpfs_mb * 256);
  params.cpu_s = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(L.cpu_s)));
  params.nofile = L.open_files;
  params.fsize = (L.tmpfs_mb << 20) * 2;  // above the tmpfs size: a full disk is ENOSPC, not SIGXFSZ
  params.lang = req.language == "bash" ? 1 : 0;
  params.fetch = req.fetch_files.empty() ? 0 : 1;
  params.files = req.files.empty() ? 0 : 1;
  std::string request;
  if (!req.files.empty() || !req.fetch_files.empty()) {
    json files = json::object();
    for (auto& [p, bytes] : req.files) files[p] = Base64Encode(bytes);
    json meta = {{"files", std::move(files)}, {"fetch", req.fetch_files}, {"fetch_cap", (L.tmpfs_mb << 20) * 2}};
    request = meta.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  request += '\n';
  request += req.code;

  FdSet fds;
  int req_fd = fds.Add(MemfdWith("k2gym-req", request));
  int in_fd = fds.Add(MemfdWith("k2gym-stdin", req.stdin_data));
  int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, st_p[2] = {-1, -1};
  bool pipes_ok = ::pipe2(out_p, O_CLOEXEC) == 0 && ::pipe2(err_p, O_CLOEXEC) == 0 && ::pipe2(st_p, O_CLOEXEC) == 0;
  for (int fd : {out_p[0], out_p[1], err_p[0], err_p[1], st_p[0], st_p[1]}) fds.Add(fd);
  if (req_fd < 0 || in_fd < 0 || !pipes_ok) return fail(IoError(std::string("run setup (memfd/pipe): ") + std::strerror(errno)));
  for (int fd : {out_p[0], err_p[0], st_p[0]}) ::fcntl(fd, F_SETFL, O_NONBLOCK);
  // A larger pipe means fewer wake-ups for chatty programs.
  ::fcntl(out_p[0], F_SETPIPE_SZ, 1 << 18);

  std::vector<int> send = {req_fd, in_fd, out_p[1], err_p[1], st_p[1]};
  for (int fd : (*cg)->procs_fds()) send.push_back(fd);
  auto t0 = Clock::now();
  Status sent = zy->Submit(std::string(reinterpret_cast<const char*>(&params), sizeof params), send);
  // The zygote holds its own copies now; ours must go so EOF means "every sandbox process is gone".
  fds.Close(req_fd);
  fds.Close(in_fd);
  fds.Close(out_p[1]);
  fds.Close(err_p[1]);
  fds.Close(st_p[1]);
  if (!sent.ok()) return fail(sent);

  std::string status_text;
  bool out_open = true, err_open = true, st_open = true;
  enum class Kill { kNone, kWall, kCpu, kOutput } killed = Kill::kNone;
  Clock::time_point kill_time{};
  const double wall = L.wall_s;
  char buf[65536];
  auto drain = [&](int fd, std::string& dst, bool& trunc, bool& open, int64_t cap) {
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n > 0) {
        int64_t room = cap - static_cast<int64_t>(dst.size());
        if (room > 0) dst.append(buf, static_cast<size_t>(std::min<int64_t>(room, n)));
        if (n > room) trunc = true;
        continue;
      }
      if (n == 0) open = false;
      if (n < 0 && errno == EINTR) continue;
      return;
    }
  };
  const int64_t status_cap = (L.tmpfs_mb << 20) * 3 + (1 << 20);
  Clock::time_point last_cpu_check = t0;
  const double cpu_check_s = std::clamp(L.cpu_s / 10, 0.01, 0.1);
  bool status_trunc = false;
  while (out_open || err_open || st_open) {
    double elapsed = Since(t0);
    int timeout_ms = 20;
    if (killed == Kill::kNone) {
      double left = wall - elapsed;
      if (left <= 0) {
        killed = Kill::kWall;
        kill_time = Clock::now();
        (*cg)->KillAll();
        continue;
      }
      timeout_ms = static_cast<int>(std::clamp(left * 1000.0, 1.0, 20.0));
    } else {
      (*cg)->KillAll();  // processes forked during the previous pass
      if (Since(kill_time) > 3.0) {
        // Every process is killed but a pipe is still open: the writer is outside the run's cgroup
        // (e.g. the zygote died mid-handoff). Give up rather than hang.
        res.message = "pipes stayed open 3 s after the kill";
        break;
      }
    }
    pollfd p[3];
    int n = 0;
    int idx_out = -1, idx_err = -1, idx_st = -1;
    if (out_open) { idx_out = n; p[n++] = {out_p[0], POLLIN, 0}; }
    if (err_open) { idx_err = n; p[n++] = {err_p[0], POLLIN, 0}; }
    if (st_open) { idx_st = n; p[n++] = {st_p[0], POLLIN, 0}; }
    int r = ::poll(p, static_cast<nfds_t>(n), timeout_ms);
    if (r < 0 && errno != EINTR) return fail(IoError(std::string("poll: ") + std::strerror(errno)));
    if (r > 0) {
      if (idx_out >= 0 && p[idx_out].revents) drain(out_p[0], res.stdout_data, res.stdout_truncated, out_open, L.output_bytes);
      if (idx_err >= 0 && p[idx_err].revents) drain(err_p[0], res.stderr_data, res.stderr_truncated, err_open, L.output_bytes);
      if (idx_st >= 0 && p[idx_st].revents) drain(st_p[0], status_text, status_trunc, st_open, status_cap);
    }
    if (killed == Kill::kNone && (res.stdout_truncated || res.stderr_truncated)) {
      killed = Kill::kOutput;
      kill_time = Clock::now();
      (*cg)->KillAll();
    }
    // The group's CPU time is read every cpu_s/10 (10 to 100 ms; the cgroup file costs an open/read/close,
    // which under load added ~10 reads to a 100 ms print(1) run), not on every wake-up for output; RLIMIT_CPU
    // stops a single process in between anyway, and the group's CPU quota bounds the overshoot of several.
    if (killed == Kill::kNone && Since(last_cpu_check) >= cpu_check_s) {
      last_cpu_check = Clock::now();
      if ((*cg)->CpuSeconds() > L.cpu_s) {
        killed = Kill::kCpu;
        kill_time = Clock::now();
        (*cg)->KillAll();
      }
    }
  }
  res.wall_s = Since(t0);
  auto stats = (*cg)->Stats();
  Status removed = (*cg)->Remove();
  if (stats.ok()) {
    res.cpu_s = stats->cpu_s;
    res.memory_peak_bytes = stats->memory_peak;
  }

  // Status lines: the zygote's {"wait": <PID 1 wait status>}, PID 1's {"setup_error": ...} or, with
  // fetch_files, {"main_wait": <program wait status>, "files": {...}, "fetch_errors": {...}}.
  json st = json::object();
  std::string setup_error;
  size_t pos = 0;
  while (pos < status_text.size()) {
    size_t nl = status_text.find('\n', pos);
    if (nl == std::string::npos) break;
    auto line = ParseJson(std::string_view(status_text).substr(pos, nl - pos), "keeper status");
    pos = nl + 1;
    if (!line.ok() || !line->is_object()) continue;
    if (line->contains("setup_error")) setup_error = (*line)["setup_error"].is_string() ? (*line)["setup_error"].get<std::string>() : "?";
    for (auto& [k, v] : line->items()) st[k] = v;
  }
  // PID 1's own status, unless PID 1 was our fetching init; then the program's ("main_wait").
  const char* wait_key = st.contains("main_wait") ? "main_wait" : "wait";
  bool have_wait = st.is_object() && st.contains(wait_key) && st[wait_key].is_number_integer() && st[wait_key].get<int>() >= 0;
  if (have_wait) {
    int ws = st[wait_key].get<int>();
    if (WIFEXITED(ws)) res.exit_code = WEXITSTATUS(ws);
    if (WIFSIGNALED(ws)) res.signal = WTERMSIG(ws);
    if (st.contains("files") && st["files"].is_object()) {
      for (auto& [p, v] : st["files"].items()) {
        if (!v.is_string()) continue;
        auto bytes = Base64Decode(v.get<std::string>());
        if (bytes.ok()) res.files[p] = std::move(*bytes);
      }
    }
  }
  const bool oom = stats.ok() && stats->oom_kills > 0;
  if (killed == Kill::kOutput) {
    res.status = RunStatus::kOutputLimit;
    res.message = "output limit of " + std::to_string(L.output_bytes) + " bytes exceeded (" +
                  (res.stdout_truncated ? "stdout" : "stderr") + ")";
  } else if (killed == Kill::kWall) {
    res.status = RunStatus::kTimeout;
    res.message = "wall-clock limit of " + std::to_string(L.wall_s) + " s exceeded";
  } else if (killed == Kill::kCpu) {
    res.status = RunStatus::kTimeout;
    res.message = "CPU-time limit of " + std::to_string(L.cpu_s) + " s exceeded";
  } else if (!setup_error.empty() && (!have_wait || res.exit_code == 127)) {
    res.status = RunStatus::kSandboxError;
    res.message = "sandbox setup failed: " + setup_error;
  } else if (!have_wait) {
    res.status = RunStatus::kSandboxError;
    if (res.message.empty()) res.message = "no exit status from the sandbox (zygote died?)";
  } else if (oom) {
    res.status = RunStatus::kMemoryLimit;
    res.message = "memory limit of " + std::to_string(L.memory_mb) + " MiB exceeded";
  } else if (res.signal == SIGXCPU || (res.signal == SIGKILL && res.cpu_s >= std::floor(L.cpu_s)) ||
             (stats.ok() && res.cpu_s > L.cpu_s && res.exit_code != 0)) {
    // The last arm: a process below PID 1 hit RLIMIT_CPU and PID 1 then exited on its own (the assert
    // harness reports its program's death) between two reads of the group's CPU time in the loop above.
    res.status = RunStatus::kTimeout;
    res.message = "CPU-time limit of " + std::to_string(L.cpu_s) + " s exceeded (RLIMIT_CPU)";
  } else if (res.exit_code == 0) {
    res.status = RunStatus::kOk;
  } else {
    // An allocation that failed under the cgroup limit ends as MemoryError (Python) or "cannot allocate"
    // (bash, C) rather than an OOM kill; the cgroup's fail counter confirms the limit was the cause.
    bool mem_error = stats.ok() && stats->memory_failed &&
                     (res.stderr_data.find("MemoryError") != std::string::npos ||
                      res.stderr_data.find("annot allocate") != std::string::npos);
    res.status = mem_error ? RunStatus::kMemoryLimit : RunStatus::kRuntimeError;
    res.message = res.signal ? "killed by signal " + std::to_string(res.signal)
                             : "exit code " + std::to_string(res.exit_code);
    if (mem_error) res.message = "memory limit of " + std::to_string(L.memory_mb) + " MiB exceeded (MemoryError)";
  }
  if (!removed.ok()) {
    res.status = RunStatus::kSandboxError;
    res.message = removed.message();
  }
  if (st.contains("fetch_errors") && st["fetch_errors"].is_object() && !st["fetch_errors"].empty()) {
    if (!res.message.empty()) res.message += "; ";
    res.message += "fetch_files: " + st["fetch_errors"].dump();
  }
  return res;
}

}  // namespace detail

Expected<std::unique_ptr<Sandbox>> Sandbox::Create(const SandboxConfig& cfg) {
  if (cfg.workers < 1) return InvalidArgument("sandbox.workers: expected integer >= 1");
  if (cfg.prefault != "off" && cfg.prefault != "write" && cfg.prefault != "all") {
    return InvalidArgument("sandbox.prefault: expected \"off\", \"write\" or \"all\", got \"" + cfg.prefault.substr(0, 40) + "\"");
  }
  if (Status s = ValidateLimits(cfg.defaults); !s.ok()) return s.Context("sandbox.defaults");
  if (::access(cfg.python.c_str(), X_OK) != 0) {
    return InvalidArgument("sandbox.python: \"" + cfg.python + "\" is not an executable file");
  }
  auto impl = std::make_unique<detail::SandboxImpl>();
  impl->cfg = cfg;
  K2_ASSIGN_OR_RETURN(impl->seccomp, detail::BuildSeccompFilters());
  K2_ASSIGN_OR_RETURN(impl->cgroups, detail::CgroupTree::Create(cfg.cgroup_root));
  // Empty mountpoint dirs of dead owners (a SIGKILLed host cannot clean up) are removed; ours carries our pid.
  if (DIR* d = ::opendir(cfg.tmp_dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n.rfind("k2gym-sandbox-", 0) != 0) continue;
      int pid = std::atoi(n.c_str() + 14);
      if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) ::rmdir((cfg.tmp_dir + "/" + n).c_str());
    }
    ::closedir(d);
  }
  std::string tmpl = cfg.tmp_dir + "/k2gym-sandbox-" + std::to_string(::getpid()) + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) return IoError("sandbox.tmp_dir: mkdtemp " + tmpl + ": " + std::strerror(errno));
  impl->root_dir = buf.data();
  // The zygote's root (host uid base) must be able to traverse to its mountpoint.
  ::chmod(impl->root_dir.c_str(), 0755);
  if (cfg.warm) {
    for (int i = 0; i < cfg.workers; ++i) {
      K2_ASSIGN_OR_RETURN(auto zy, detail::Zygote::Start(impl->Options()));
      impl->zygotes.push_back(std::move(zy));
    }
  }
  impl->pool = std::make_unique<ThreadPool>(cfg.max_concurrent);
  return std::unique_ptr<Sandbox>(new Sandbox(std::move(impl)));
}

Sandbox::Sandbox(std::unique_ptr<detail::SandboxImpl> impl) : impl_(std::move(impl)) {}
Sandbox::~Sandbox() = default;

RunResult Sandbox::Run(const RunRequest& req) { return impl_->Run(req); }

std::future<RunResult> Sandbox::RunAsync(RunRequest req) {
  auto* impl = impl_.get();
  return impl->pool->Submit([impl, r = std::move(req)]() { return impl->Run(r); });
}

const SandboxConfig& Sandbox::config() const { return impl_->cfg; }
std::string Sandbox::cgroup_version() const { return impl_->cgroups->v2() ? "v2" : "v1"; }
std::string Sandbox::cgroup_dirs() const {
  std::string out;
  for (auto& d : impl_->cgroups->base_dirs()) out += (out.empty() ? "" : ":") + d;
  return out;
}
std::string Sandbox::root_dir() const { return impl_->root_dir; }
std::string Sandbox::pool_info() const {
  json out = json::array();
  std::lock_guard<std::mutex> lk(impl_->zy_mu);
  for (auto& z : impl_->zygotes) {
    if (!z) continue;
    json j = z->info();
    j["pid"] = z->pid();
    out.push_back(std::move(j));
  }
  return out.dump();
}

}  // namespace k2::sandbox
