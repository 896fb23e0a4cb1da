// Per-run cgroups for the sandbox: detects cgroup v1 (one hierarchy per controller) or v2 (unified)
// at startup, creates one group per run with memory/pids/CPU limits, reads usage, kills and removes it.
//
// Thread safety: CgroupTree is immutable after Create; RunCgroup objects are used by one thread each.
// Failure: every method returns a Status naming the file; Remove() kills and retries until the group
// is empty (bounded), so a RunCgroup never outlives its run on the host.
#pragma once

#include <cstdint>
#include <memory>
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
  bool v2_ = false;
  std::vector<std::string> dirs_;     // v1: memory, pids, cpu, cpuacct groups; v2: one
  std::vector<int> procs_fds_;
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
  Expected<std::unique_ptr<RunCgroup>> NewRun(const std::string& name, const CgroupLimits& lim);

 private:
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
