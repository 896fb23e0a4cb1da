// cgroup v1/v2 management for sandbox runs: discovery from /proc/self/{mountinfo,cgroup}, per-run
// groups with limits, usage readout, kill-until-empty and removal.
#include "sandbox/detail/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace k2::sandbox::detail {
namespace {

std::string ReadSmall(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

Status WriteSmall(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cgroup: open " + path + ": " + std::strerror(errno));
  ssize_t n = ::write(fd, value.data(), value.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    return IoError("cgroup: write \"" + value + "\" to " + path + ": " + std::strerror(err));
  }
  return Status::Ok();
}

// A write to an open cgroup file (at offset 0: each write is one setting).
bool PwriteStr(int fd, const std::string& value) {
  return ::pwrite(fd, value.data(), value.size(), 0) == static_cast<ssize_t>(value.size());
}

// The integer at the start of an open cgroup file, or -1.
int64_t PreadInt(int fd) {
  char buf[64];
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return -1;
  buf[n] = 0;
  return std::strtoll(buf, nullptr, 10);
}

int64_t ReadInt(const std::string& path) {
  std::string s = ReadSmall(path);
  if (s.empty()) return 0;
  return std::strtoll(s.c_str(), nullptr, 10);
}

// Value of "key N" in a flat-keyed file (memory.oom_control, memory.events, cpu.stat).
int64_t ReadKey(const std::string& path, const std::string& key) {
  std::istringstream in(ReadSmall(path));
  std::string k;
  int64_t v;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return 0;
}

bool Exists(const std::string& p) { return ::access(p.c_str(), F_OK) == 0; }

struct Mount {
  std::string point;
  std::string fstype;
  std::string opts;
};

std::vector<Mount> CgroupMounts() {
  std::vector<Mount> out;
  std::istringstream in(ReadSmall("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::vector<std::string> f;
    std::string w;
    while (ls >> w) f.push_back(w);
    size_t dash = 0;
    for (size_t i = 0; i < f.size(); ++i) {
      if (f[i] == "-") { dash = i; break; }
    }
    if (dash == 0 || dash + 3 >= f.size() + 1 || f.size() < dash + 3) continue;
    const std::string& type = f[dash + 1];
    if (type != "cgroup" && type != "cgroup2") continue;
    out.push_back({f[4], type, dash + 3 < f.size() ? f[dash + 3] : ""});
  }
  return out;
}

bool HasOpt(const std::string& opts, const std::string& name) {
  std::istringstream in(opts);
  std::string o;
  while (std::getline(in, o, ',')) {
    if (o == name) return true;
  }
  return false;
}

// This process's path in the hierarchy that carries `controller` ("" for v2's "0::").
std::string OwnPath(const std::string& controller) {
  std::istringstream in(ReadSmall("/proc/self/cgroup"));
  std::string line;
  while (std::getline(in, line)) {
    auto a = line.find(':');
    auto b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string ctrls = line.substr(a + 1, b - a - 1);
    if ((controller.empty() && ctrls.empty()) || (!controller.empty() && HasOpt(ctrls, controller))) {
      return line.substr(b + 1);
    }
  }
  return "/";
}

std::atomic<int> g_tree_counter{0};

// Removes "<parent>/k2gym-sandbox-<pid>-<n>" trees left by a process that died without cleaning up
// (SIGKILL, crash): their processes are killed and the empty groups removed. Live owners are left alone.
void RemoveStale(const std::string& parent) {
  for (const auto& name : ListChildren(parent)) {
    if (name.rfind("k2gym-sandbox-", 0) != 0) continue;
    int pid = std::atoi(name.c_str() + 14);
    if (pid <= 0 || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    std::string base = parent + "/" + name;
    for (const auto& run : ListChildren(base)) {
      std::string dir = base + "/" + run;
      for (int attempt = 0; attempt < 100 && ::rmdir(dir.c_str()) != 0 && errno == EBUSY; ++attempt) {
        std::istringstream in(ReadSmall(dir + "/cgroup.procs"));
        int p;
        while (in >> p) ::kill(p, SIGKILL);
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
    ::rmdir(base.c_str());
  }
}

}  // namespace

std::vector<std::string> ListChildren(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_type == DT_DIR && std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      out.push_back(e->d_name);
    }
  }
  ::closedir(d);
  return out;
}

Expected<std::unique_ptr<CgroupTree>> CgroupTree::Create(const std::string& root_override) {
  auto tree = std::unique_ptr<CgroupTree>(new CgroupTree());
  auto mounts = CgroupMounts();
  std::string name = "k2gym-sandbox-" + std::to_string(::getpid()) + "-" + std::to_string(g_tree_counter++);
  const Mount* unified = nullptr;
  for (auto& m : mounts) {
    if (m.fstype == "cgroup2" && Exists(m.point + "/cgroup.subtree_control")) {
      std::string ctl = ReadSmall(m.point + "/cgroup.controllers");
      if (ctl.find("memory") != std::string::npos && ctl.find("pids") != std::string::npos) unified = &m;
    }
  }
  std::vector<std::string> created;
  auto fail = [&](Status s) {
    for (auto it = created.rbegin(); it != created.rend(); ++it) ::rmdir(it->c_str());
    return s;
  };
  if (unified) {
    // v2: the group that holds this process cannot enable controllers for its children while it has
    // processes ("no internal processes"), so the sandbox subtree must live where delegation allows;
    // cgroup_root names that place explicitly when the default does not work.
    tree->v2_ = true;
    std::string parent = unified->point + (root_override.empty() ? OwnPath("") : "/" + root_override);
    RemoveStale(parent);
    std::string base = parent + "/" + name;
    if (::mkdir(base.c_str(), 0755) != 0) {
      return IoError("cgroup v2: mkdir " + base + ": " + std::strerror(errno));
    }
    created.push_back(base);
    Status s = WriteSmall(base + "/cgroup.subtree_control", "+memory +pids +cpu");
    if (!s.ok()) {
      return fail(s.Context("cgroup v2: enabling controllers for the sandbox (set sandbox.cgroup_root to a "
                            "delegated group without processes)"));
    }
    tree->base_ = {base};
    tree->has_swap_max_ = Exists(base + "/memory.swap.max");
    return tree;
  }
  for (const char* ctrl : {"memory", "pids", "cpu", "cpuacct"}) {
    const Mount* mm = nullptr;
    for (auto& m : mounts) {
      if (m.fstype == "cgroup" && HasOpt(m.opts, ctrl)) mm = &m;
    }
    if (!mm) return fail(FailedPrecondition(std::string("cgroup v1: no hierarchy with the ") + ctrl +
                                            " controller is mounted (and no cgroup v2 with memory+pids)"));
    std::string parent = mm->point + (root_override.empty() ? OwnPath(ctrl) : "/" + root_override);
    while (parent.size() > 1 && parent.back() == '/') parent.pop_back();
    RemoveStale(parent);
    std::string base = parent + "/" + name;
    bool dup = false;  // cpu and cpuacct may share one hierarchy
    for (auto& b : tree->base_) dup |= (b == base);
    tree->base_.push_back(base);
    if (dup) continue;
    if (::mkdir(base.c_str(), 0755) != 0) {
      return fail(IoError("cgroup v1: mkdir " + base + ": " + std::strerror(errno)));
    }
    created.push_back(base);
  }
  tree->has_memsw_ = Exists(tree->base_[0] + "/memory.memsw.limit_in_bytes");
  // Run groups inherit swappiness from their parent when created (v1), so it is set here once; with swap
  // accounting the memsw limit below keeps swap from extending a run's memory anyway.
  if (Exists(tree->base_[0] + "/memory.swappiness")) (void)WriteSmall(tree->base_[0] + "/memory.swappiness", "0");
  int64_t period = ReadInt(tree->base_[2] + "/cpu.cfs_period_us");
  if (period > 0) tree->cfs_period_us_ = period;
  return tree;
}

CgroupTree::~CgroupTree() {
  for (auto& g : pool_) {
    std::vector<std::string> dirs = g->dirs;
    g.reset();  // closes its files
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) ::rmdir(it->c_str());
  }
  pool_.clear();
  for (auto it = base_.rbegin(); it != base_.rend(); ++it) ::rmdir(it->c_str());
}

PooledGroups::~PooledGroups() {
  for (int fd : procs_fds) ::close(fd);
  for (int fd : {pids_current_fd, pids_max_fd, quota_fd, usage_fd}) {
    if (fd >= 0) ::close(fd);
  }
}

namespace {

// Removes the (empty) groups of a pooled set that cannot be reused.
void DiscardPooled(std::unique_ptr<PooledGroups> g) {
  if (!g) return;
  std::vector<std::string> dirs = g->dirs;
  g.reset();
  for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) ::rmdir(it->c_str());
}

}  // namespace

// cgroup v1 keeps one group per controller hierarchy, so a run used to cost four mkdirs, four rmdirs (and
// the kernel's deferred destruction of four groups) and a dozen file opens on the host. The pids, cpu and
// cpuacct groups carry nothing of a run once it is over, so they are reused: a set goes back to the pool
// only when its pids group is empty (no process of the run is left), and the next run resets what a run
// changes there before it starts: cpuacct.usage is set to 0, cpu.cfs_quota_us is written again (which
// refills the bandwidth runtime and lifts any throttling left from the last run), pids.max is written when
// it differs. Their remaining counters (throttling statistics, pids.events) are read by nobody, and the
// program cannot see any of them (no cgroupfs inside the sandbox). The memory group is never reused: a
// finished run leaves pages charged to it (cached file pages, kernel objects freed later), which would
// count against the next run's limit and in its reported peak.
Expected<std::unique_ptr<PooledGroups>> CgroupTree::TakePooled() {
  int n;
  {
    std::lock_guard<std::mutex> lk(pool_mu_);
    if (!pool_.empty()) {
      auto g = std::move(pool_.back());
      pool_.pop_back();
      return g;
    }
    n = pool_counter_++;
  }
  auto g = std::make_unique<PooledGroups>();
  const std::string name = "slot-" + std::to_string(n);
  std::vector<std::string> created;
  auto fail = [&](Status st) -> Status {
    g.reset();
    for (auto it = created.rbegin(); it != created.rend(); ++it) ::rmdir(it->c_str());
    return st;
  };
  for (size_t i = 1; i < base_.size(); ++i) {
    std::string d = base_[i] + "/" + name;
    bool dup = false;
    for (auto& x : g->dirs) dup |= (x == d);
    g->dirs.push_back(d);
    if (dup) continue;
    if (::mkdir(d.c_str(), 0755) != 0) return fail(IoError("cgroup: mkdir " + d + ": " + std::strerror(errno)));
    created.push_back(d);
    std::string procs = d + "/cgroup.procs";
    int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fail(IoError("cgroup: open " + procs + ": " + std::strerror(errno)));
    g->procs_fds.push_back(fd);
  }
  auto open_file = [&](const std::string& path, int flags, int& out) -> Status {
    out = ::open(path.c_str(), flags | O_CLOEXEC);
    if (out < 0) return IoError("cgroup: open " + path + ": " + std::strerror(errno));
    return Status::Ok();
  };
  Status st = open_file(g->dirs[0] + "/pids.current", O_RDONLY, g->pids_current_fd);
  if (st.ok()) st = open_file(g->dirs[0] + "/pids.max", O_WRONLY, g->pids_max_fd);
  if (st.ok()) st = open_file(g->dirs[1] + "/cpu.cfs_quota_us", O_WRONLY, g->quota_fd);
  if (st.ok()) st = open_file(g->dirs[2] + "/cpuacct.usage", O_RDWR, g->usage_fd);
  if (!st.ok()) return fail(st);
  return g;
}

void CgroupTree::ReturnPooled(std::unique_ptr<PooledGroups> g) {
  std::lock_guard<std::mutex> lk(pool_mu_);
  pool_.push_back(std::move(g));
}

std::vector<std::string> CgroupTree::idle_pooled_dirs() {
  std::lock_guard<std::mutex> lk(pool_mu_);
  std::vector<std::string> out;
  for (auto& g : pool_) out.insert(out.end(), g->dirs.begin(), g->dirs.end());
  return out;
}

Expected<std::unique_ptr<RunCgroup>> CgroupTree::NewRun(const std::string& name, const CgroupLimits& lim) {
  auto run = std::unique_ptr<RunCgroup>(new RunCgroup());
  run->v2_ = v2_;
  run->tree_ = this;
  const std::string mem = std::to_string(lim.memory_bytes);
  // The run's own group: v2's only one, v1's memory group.
  const std::string d = base_[0] + "/" + name;
  if (::mkdir(d.c_str(), 0755) != 0) return IoError("cgroup: mkdir " + d + ": " + std::strerror(errno));
  run->dirs_ = {d};
  auto add_procs = [&](const std::string& dir) -> Status {
    std::string p = dir + "/cgroup.procs";
    int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return IoError("cgroup: open " + p + ": " + std::strerror(errno));
    run->procs_fds_.push_back(fd);
    run->own_fds_.push_back(fd);
    return Status::Ok();
  };
  if (v2_) {
    K2_RETURN_IF_ERROR(WriteSmall(d + "/memory.max", mem));
    if (has_swap_max_) (void)WriteSmall(d + "/memory.swap.max", "0");
    K2_RETURN_IF_ERROR(WriteSmall(d + "/pids.max", std::to_string(lim.pids)));
    int64_t period = 100000;
    int64_t quota = std::max<int64_t>(1000, static_cast<int64_t>(std::llround(lim.cpus * period)));
    K2_RETURN_IF_ERROR(WriteSmall(d + "/cpu.max", std::to_string(quota) + " " + std::to_string(period)));
    K2_RETURN_IF_ERROR(add_procs(d));
    return run;
  }
  K2_RETURN_IF_ERROR(WriteSmall(d + "/memory.limit_in_bytes", mem));
  // Without swap accounting memsw is absent; with it, swap must not extend the limit.
  if (has_memsw_) (void)WriteSmall(d + "/memory.memsw.limit_in_bytes", mem);
  K2_RETURN_IF_ERROR(add_procs(d));
  // pids, cpu and cpuacct: a pooled set, reset for this run (see TakePooled).
  K2_ASSIGN_OR_RETURN(auto g, TakePooled());
  const int64_t period = cfs_period_us_;
  const int64_t quota = std::max<int64_t>(1000, static_cast<int64_t>(std::llround(lim.cpus * period)));
  bool ok = (g->pids_max == lim.pids || PwriteStr(g->pids_max_fd, std::to_string(lim.pids))) &&
            PwriteStr(g->quota_fd, std::to_string(quota)) && PwriteStr(g->usage_fd, "0");
  if (!ok) {
    int e = errno;
    DiscardPooled(std::move(g));
    return IoError("cgroup: setting up the pooled pids/cpu/cpuacct groups: " + std::string(std::strerror(e)));
  }
  g->pids_max = lim.pids;
  run->dirs_.insert(run->dirs_.end(), g->dirs.begin(), g->dirs.end());
  run->procs_fds_.insert(run->procs_fds_.end(), g->procs_fds.begin(), g->procs_fds.end());
  run->pooled_ = std::move(g);
  return run;
}

RunCgroup::~RunCgroup() {
  if (!removed_) (void)Remove();
  for (int fd : own_fds_) ::close(fd);
  DiscardPooled(std::move(pooled_));  // only when Remove() could not empty it
}

double RunCgroup::CpuSeconds() const {
  if (dirs_.empty()) return 0;
  if (v2_) return ReadKey(dirs_[0] + "/cpu.stat", "usage_usec") / 1e6;
  if (pooled_) return std::max<int64_t>(0, PreadInt(pooled_->usage_fd)) / 1e9;
  if (dirs_.size() < 4) return 0;
  return ReadInt(dirs_[3] + "/cpuacct.usage") / 1e9;
}

int64_t RunCgroup::PidsCurrent() const {
  int64_t n = pooled_ ? PreadInt(pooled_->pids_current_fd) : -1;
  return n >= 0 ? n : static_cast<int64_t>(Pids().size());
}

Expected<CgroupStats> RunCgroup::Stats() const {
  CgroupStats s;
  if (dirs_.empty()) return Internal("cgroup: stats of a group that was never created");
  s.cpu_s = CpuSeconds();
  if (v2_) {
    s.memory_peak = ReadInt(dirs_[0] + "/memory.peak");
    s.oom_kills = ReadKey(dirs_[0] + "/memory.events", "oom_kill");
    s.memory_failed = ReadKey(dirs_[0] + "/memory.events", "max") > 0;
  } else {
    s.memory_peak = ReadInt(dirs_[0] + "/memory.max_usage_in_bytes");
    s.oom_kills = ReadKey(dirs_[0] + "/memory.oom_control", "oom_kill");
    s.memory_failed = ReadInt(dirs_[0] + "/memory.failcnt") > 0;
  }
  return s;
}

std::vector<int> RunCgroup::Pids() const {
  std::vector<int> pids;
  for (size_t i = 0; i < dirs_.size(); ++i) {
    // v1: the pids hierarchy sees every process of the run (all joined every hierarchy).
    if (!v2_ && i != 1) continue;
    std::istringstream in(ReadSmall(dirs_[i] + "/cgroup.procs"));
    int pid;
    while (in >> pid) pids.push_back(pid);
  }
  return pids;
}

void RunCgroup::KillAll() const {
  if (v2_ && !dirs_.empty() && Exists(dirs_[0] + "/cgroup.kill")) {
    (void)WriteSmall(dirs_[0] + "/cgroup.kill", "1");
    return;
  }
  for (int pid : Pids()) ::kill(pid, SIGKILL);
}

Status RunCgroup::Remove() {
  if (removed_) return Status::Ok();
  removed_ = true;
  // A fork bomb can race the kill loop, but pids.max bounds it and every pass removes what it saw; the
  // processes also die with PID 1 of their namespace. This takes a few ms on an idle machine, but a
  // hundred concurrent fork bombs on 2 loaded cores took over 2 s to exit (hostile suite), so the
  // bound is 30 s (10 s was exceeded once with a training job beside the suite), with a growing pause
  // between passes so that waiting does not compete with the exits.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  auto pause = std::chrono::microseconds(200);
  Status result;
  if (pooled_) {
    // v1: the pooled groups go back when no process is left in the run's pids group (usually at once:
    // the run's PID 1 was reaped, and with it its PID namespace), then the memory group is removed.
    while (PidsCurrent() != 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        result = IoError("cgroup: " + dirs_[1] + " still has processes after 30 s");
        break;
      }
      KillAll();
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(20000));
    }
    const std::string& d = dirs_[0];
    while (::rmdir(d.c_str()) != 0 && errno != ENOENT) {
      if (errno != EBUSY || std::chrono::steady_clock::now() > deadline) {
        if (result.ok()) result = IoError("cgroup: rmdir " + d + ": " + std::strerror(errno));
        break;
      }
      KillAll();
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(20000));
    }
    if (result.ok()) tree_->ReturnPooled(std::move(pooled_));
    return result;
  }
  // Usually every process is gone already (the run's PID 1 was reaped, and with it its PID namespace):
  // one rmdir per group, no kill pass.
  bool busy = false;
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
    if (::rmdir(it->c_str()) != 0 && errno != ENOENT) busy = true;
  }
  if (!busy) return result;
  for (auto it = dirs_.rbegin(); it != dirs_.rend(); ++it) {
    const std::string& d = *it;
    if (!Exists(d)) continue;
    for (;;) {
      KillAll();
      if (::rmdir(d.c_str()) == 0 || errno == ENOENT) break;
      if (errno != EBUSY || std::chrono::steady_clock::now() > deadline) {
        result = IoError("cgroup: rmdir " + d + ": " + std::strerror(errno));
        break;
      }
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::microseconds(20000));
    }
  }
  return result;
}

}  // namespace k2::sandbox::detail
