// Per-run cgroups for the sandbox: detects cgroup v1 (one hierarchy per controller) or v2 (unified)
// at startup, creates one group per run with memory/pids/CPU limits, reads usage, kills and removes it.
//
// Thread safety: CgroupTree's settings are immutable after Create and its pool of v1 groups is guarded by
// a mutex; RunCgroup objects are used by one thread each and must not outlive their tree.
// Failure: every method returns a Status naming the file; Remove() kills and retries until the group
// is empty (bounded), so a RunCgroup never outlives its run on the host.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"

namespace k2::sandbox::detail {

struct CgroupLimits {
  int64_t memory_bytes = 0;
  int pids = 0;
  double cpus = 1.0;
};

struct CgroupStats {
  double cpu_s = 0;
  int64_t memory_peak = 0;
  int64_t oom_kills = 0;      // OOM kills inside the group (v1: memory.oom_control, v2: memory.events)
  bool memory_failed = false; // allocation hit the limit at least once (v1 failcnt / v2 max events)
};

class CgroupTree;

// cgroup v1: a run's pids, cpu and cpuacct groups, reused by later runs (the memory group is always
// fresh). See CgroupTree::NewRun for what is reset between runs.
struct PooledGroups {
  std::vector<std::string> dirs;  // [pids, cpu, cpuacct] (cpu and cpuacct may be one group)
  std::vector<int> procs_fds;     // cgroup.procs of each distinct group, O_WRONLY
  int pids_current_fd = -1;       // pids.current, O_RDONLY (read with pread)
  int pids_max_fd = -1;           // pids.max, O_WRONLY
  int quota_fd = -1;              // cpu.cfs_quota_us, O_WRONLY
  int usage_fd = -1;              // cpuacct.usage, O_RDWR
  int pids_max = -1;              // the value last written to pids.max
  ~PooledGroups();
};

class RunCgroup {
 public:
  ~RunCgroup();  // Remove() if not done
  // Open O_WRONLY fds on each cgroup.procs; a process writing "0" to all of them joins the run's group.
  const std::vector<int>& procs_fds() const { return procs_fds_; }
  Expected<CgroupStats> Stats() const;
  double CpuSeconds() const;          // cheap, for the polling loop; 0 when unreadable
  std::vector<int> Pids() const;      // host pids currently in the group
  // SIGKILLs every process until the group is empty (bounded), then rmdirs it.
  Status Remove();
  // SIGKILLs every process currently in the group (one pass).
  void KillAll() const;

 private:
  friend class CgroupTree;
  int64_t PidsCurrent() const;        // v1 pooled: tasks in the pids group, -1 when unreadable
  bool v2_ = false;
  std::vector<std::string> dirs_;     // v1: memory, pids, cpu, cpuacct groups; v2: one
  std::vector<int> procs_fds_;        // every group's cgroup.procs (the pooled ones are not ours to close)
  std::vector<int> own_fds_;          // those that this run opened
  CgroupTree* tree_ = nullptr;        // v1: where the pooled groups go back
  std::unique_ptr<PooledGroups> pooled_;
  bool removed_ = false;
};

class CgroupTree {
 public:
  // root_override: "" = a subtree under this process's own cgroup(s); else a path relative to each
  // hierarchy's mount point. Creates "<root>/k2gym-sandbox-<pid>-<n>".
  static Expected<std::unique_ptr<CgroupTree>> Create(const std::string& root_override);
  ~CgroupTree();  // removes the subtree (runs must be gone)

  bool v2() const { return v2_; }
  const std::vector<std::string>& base_dirs() const { return base_; }
  // v2: a fresh group per run. v1: a fresh memory group per run and pids/cpu/cpuacct groups from a pool
  // (emptied and reset, see cgroup.cc), named "<name>" and "slot-<n>" under the bases.
  Expected<std::unique_ptr<RunCgroup>> NewRun(const std::string& name, const CgroupLimits& lim);
  // For tests: the pooled groups not in use (each must be empty).
  std::vector<std::string> idle_pooled_dirs();

 private:
  friend class RunCgroup;
  Expected<std::unique_ptr<PooledGroups>> TakePooled();
  void ReturnPooled(std::unique_ptr<PooledGroups> g);
  std::mutex pool_mu_;
  std::vector<std::unique_ptr<PooledGroups>> pool_;  // idle, empty groups (guarded by pool_mu_)
  int pool_counter_ = 0;                            // guarded by pool_mu_
  bool v2_ = false;
  std::vector<std::string> base_;  // v1: [memory, pids, cpu, cpuacct]; v2: [unified]
  // Read once at Create rather than per run (each cgroup file open costs ~10-20 us on the VM).
  int64_t cfs_period_us_ = 100000;  // v1: the cpu hierarchy's period
  bool has_memsw_ = false;         // v1: swap accounting (memory.memsw.*) present
  bool has_swap_max_ = false;      // v2: memory.swap.max present
};

// For tests: the names of all directories under the tree's base (should be empty between runs).
std::vector<std::string> ListChildren(const std::string& dir);

}  // namespace k2::sandbox::detail
