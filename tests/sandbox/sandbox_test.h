// Shared helpers of the sandbox tests: one Sandbox per test binary and host-side leak probes
// (processes by uid, cgroup subtree, temp root dir, mount table).
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sandbox/sandbox.h"

namespace k2::sandbox::testing {

// Host pids whose real uid is in [lo, hi] (the sandbox's mapped uids).
inline std::vector<int> HostPidsWithUid(int64_t lo, int64_t hi) {
  std::vector<int> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    int pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/status");
    std::string line;
    while (std::getline(in, line)) {
      if (line.rfind("Uid:", 0) == 0) {
        std::istringstream ls(line.substr(4));
        int64_t uid = -1;
        ls >> uid;
        if (uid >= lo && uid <= hi) out.push_back(pid);
        break;
      }
    }
  }
  ::closedir(d);
  return out;
}

inline std::string MountTable() {
  std::ifstream in("/proc/self/mountinfo");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline bool PathExists(const std::string& p) { return ::access(p.c_str(), F_OK) == 0; }

inline std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string part;
  while (std::getline(ss, part, sep)) out.push_back(part);
  return out;
}

// Each test process (ctest runs them in parallel) and each sandbox in it maps to host uids of its own, so
// the leftover checks never see another test's processes. slot: 0..4.
inline SandboxConfig TestConfig(int slot = 0) {
  SandboxConfig cfg;
  cfg.host_uid_base = 1000000 + static_cast<int64_t>(::getpid() % 4000) * 100000 + slot * 10000;
  cfg.workers = 2;
  cfg.preload = {"json", "math"};
  return cfg;
}

// A process-wide Sandbox, created on first use (zygote start takes ~0.1-1 s).
inline Sandbox& Shared() {
  static std::unique_ptr<Sandbox> sb = [] {
    auto s = Sandbox::Create(TestConfig());
    if (!s.ok()) {
      ADD_FAILURE() << s.status().ToString();
      std::abort();
    }
    return std::move(*s);
  }();
  return *sb;
}

inline RunRequest Py(const std::string& code, double wall_s = 10) {
  RunRequest r;
  r.code = code;
  r.limits.wall_s = wall_s;
  return r;
}

inline RunRequest Bash(const std::string& code, double wall_s = 10) {
  RunRequest r = Py(code, wall_s);
  r.language = "bash";
  return r;
}

// Leaves nothing of a run behind: no process with the program's uid, no run cgroup, and (cgroup v1) no
// process in the pooled pids/cpu/cpuacct groups ("slot-N") that later runs reuse.
inline void ExpectNoRunLeftovers(Sandbox& sb) {
  int64_t base = sb.config().host_uid_base;
  EXPECT_TRUE(HostPidsWithUid(base + 1, base + 9999).empty()) << "program processes left on the host";
  for (auto& dir : Split(sb.cgroup_dirs(), ':')) {
    DIR* d = ::opendir(dir.c_str());
    ASSERT_NE(d, nullptr) << dir;
    int children = 0;
    while (dirent* e = ::readdir(d)) {
      if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
      std::string name = e->d_name;
      if (sb.cgroup_version() == "v1" && name.rfind("slot-", 0) == 0) {
        std::ifstream procs(dir + "/" + name + "/cgroup.procs");
        std::string pids((std::istreambuf_iterator<char>(procs)), std::istreambuf_iterator<char>());
        EXPECT_TRUE(procs.good() || procs.eof()) << dir << "/" << name;
        EXPECT_EQ(pids, "") << "processes left in the pooled group " << dir << "/" << name;
        continue;
      }
      ++children;
    }
    ::closedir(d);
    EXPECT_EQ(children, 0) << "run cgroups left under " << dir;
  }
}

}  // namespace k2::sandbox::testing
