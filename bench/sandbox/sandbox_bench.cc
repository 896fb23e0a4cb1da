// Throughput and latency of print(1): the sandbox's warm pool beside a bare `python3 -c` and Debian's
// bubblewrap per run, measured in the same process with the same client threads (STYLE.md habit 13).
//
// Beside the wall-clock rate (noisy when other work shares the machine) it reports the CPU time and page
// faults per run of everything the variant ran: this process (client threads, the host side of a run),
// the children it reaped (bare, bwrap) or the zygotes with every run they reaped (sandbox), read from
// getrusage and /proc/<zygote>/stat; and, separately, the kernel threads' CPU over the same interval
// (machine-wide: e.g. network namespace cleanup runs there, but so does other work on the machine).
// 2 cores / (CPU per run) is the rate an otherwise idle 2-core machine of the same kind would reach.
//
// usage: sandbox_bench [--runs N] [--threads T] [--workers W] [--no-netns] [--preload-default]
//                      [--prefault off|write|all] [--only sandbox] [--show CODE]
//                      (profiling: the sandbox alone / one program's output)
#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "core/json.h"
#include "sandbox/sandbox.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

// CPU time (ms) and minor faults of a set of processes, as a snapshot; deltas give a variant's cost.
struct Usage {
  double cpu_ms = 0, kthread_ms = 0;
  double faults = 0;
};

double TvMs(const timeval& t) { return t.tv_sec * 1e3 + t.tv_usec / 1e3; }

// Fields of /proc/<pid>/stat after the command name: [0] is field 3 (state).
std::vector<std::string> StatFields(const std::string& pid) {
  std::ifstream in("/proc/" + pid + "/stat");
  std::string line;
  std::getline(in, line);
  std::vector<std::string> f;
  auto rp = line.rfind(')');
  if (rp == std::string::npos) return f;
  std::string w;
  for (size_t i = rp + 2; i <= line.size(); ++i) {
    if (i == line.size() || line[i] == ' ') {
      f.push_back(w);
      w.clear();
    } else {
      w += line[i];
    }
  }
  return f;
}

Usage Snapshot(const std::vector<int>& zygotes) {
  static const double tick_ms = 1000.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
  Usage u;
  rusage self{}, kids{};
  getrusage(RUSAGE_SELF, &self);
  getrusage(RUSAGE_CHILDREN, &kids);
  u.cpu_ms = TvMs(self.ru_utime) + TvMs(self.ru_stime) + TvMs(kids.ru_utime) + TvMs(kids.ru_stime);
  u.faults = static_cast<double>(self.ru_minflt + kids.ru_minflt);
  // A zygote's own time and faults, and those of the runs it reaped (cutime, cstime, cminflt).
  for (int pid : zygotes) {
    auto f = StatFields(std::to_string(pid));
    if (f.size() < 15) continue;
    u.faults += std::stod(f[7]) + std::stod(f[8]);
    u.cpu_ms += (std::stod(f[11]) + std::stod(f[12]) + std::stod(f[13]) + std::stod(f[14])) * tick_ms;
  }
  // Kernel threads (children of kthreadd, pid 2), machine-wide.
  if (DIR* d = opendir("/proc")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      auto f = StatFields(e->d_name);
      if (f.size() < 15 || (f[1] != "2" && std::string(e->d_name) != "2")) continue;
      u.kthread_ms += (std::stod(f[11]) + std::stod(f[12])) * tick_ms;
    }
    closedir(d);
  }
  return u;
}

struct Stats {
  double runs_per_s = 0, p50_ms = 0, p99_ms = 0;
  int failures = 0;
  double cpu_ms = 0, faults = 0, kthread_ms = 0;  // per run
};

// Runs `one` `runs` times from `threads` client threads; one() returns false on a wrong result.
// zygotes: host pids whose CPU and faults (with their reaped children's) count towards the variant.
Stats Measure(int runs, int threads, const std::function<bool()>& one, const std::vector<int>& zygotes = {}) {
  Usage u0 = Snapshot(zygotes);
  std::vector<double> lat(static_cast<size_t>(runs));
  std::atomic<int> next{0}, failures{0};
  auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      for (int i; (i = next++) < runs;) {
        auto a = Clock::now();
        if (!one()) ++failures;
        lat[static_cast<size_t>(i)] = std::chrono::duration<double, std::milli>(Clock::now() - a).count();
      }
    });
  }
  for (auto& t : ts) t.join();
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  Usage u1 = Snapshot(zygotes);
  std::sort(lat.begin(), lat.end());
  Stats s;
  s.runs_per_s = runs / secs;
  s.p50_ms = lat[lat.size() / 2];
  s.p99_ms = lat[std::min(lat.size() - 1, lat.size() * 99 / 100)];
  s.failures = failures;
  s.cpu_ms = (u1.cpu_ms - u0.cpu_ms) / runs;
  s.faults = (u1.faults - u0.faults) / runs;
  s.kthread_ms = (u1.kthread_ms - u0.kthread_ms) / runs;
  return s;
}

// Spawns argv, returns true when it printed exactly "1\n" and exited 0.
bool SpawnPrint1(const std::vector<std::string>& args) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return false;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, p[1], 1);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  close(p[1]);
  if (rc != 0) {
    close(p[0]);
    return false;
  }
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(p[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 && out == "1\n";
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "?";
}

void Print(const char* name, const Stats& s, const Stats& ref) {
  std::printf("%-34s %7.1f runs/s  p50 %7.2f ms  p99 %7.2f ms  failures %d  throughput x%.2f of bare\n", name,
              s.runs_per_s, s.p50_ms, s.p99_ms, s.failures, s.runs_per_s / ref.runs_per_s);
  std::printf("%-34s CPU %6.2f ms/run (x%.2f of bare)  faults %6.0f/run  -> %6.1f runs/s on 2 idle cores; "
              "kernel threads (machine-wide) %5.2f ms/run\n", "", s.cpu_ms, s.cpu_ms / ref.cpu_ms, s.faults,
              2000.0 / s.cpu_ms, s.kthread_ms);
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 300, threads = 4, workers = 2;
  bool netns = true, preload_default = false;
  std::string prefault = "write";
  std::string only, show;  // show: a program run once through the sandbox, its output printed (profiling)  // "": all three variants; "sandbox": the sandbox alone (for profiling with perf)
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) runs = std::atoi(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--workers" && i + 1 < argc) workers = std::atoi(argv[++i]);
    else if (a == "--no-netns") netns = false;
    else if (a == "--prefault" && i + 1 < argc) prefault = argv[++i];
    else if (a == "--preload-default") preload_default = true;
    else if (a == "--only" && i + 1 < argc) only = argv[++i];
    else if (a == "--show" && i + 1 < argc) show = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--runs N] [--threads T] [--workers W] [--no-netns] [--preload-default] [--prefault off|write|all] [--only sandbox] [--show CODE]\n", argv[0]);
      return 2;
    }
  }
  std::printf("machine: %s, %u hardware threads; load avg at start: ", CpuModel().c_str(),
              std::thread::hardware_concurrency());
  std::ifstream la("/proc/loadavg");
  std::string load;
  std::getline(la, load);
  std::printf("%s\n", load.c_str());
  std::printf("program: print(1); runs per variant: %d; client threads: %d; zygotes: %d; per-run netns: %s; "
              "preload: %s; prefault: %s\n", runs, threads, workers, netns ? "yes" : "no",
              preload_default ? "default list" : "none", prefault.c_str());

  k2::sandbox::SandboxConfig cfg;
  cfg.workers = workers;
  cfg.per_run_netns = netns;
  cfg.prefault = prefault;
  if (!preload_default) cfg.preload = {};
  auto sb = k2::sandbox::Sandbox::Create(cfg);
  if (!sb.ok()) {
    std::fprintf(stderr, "sandbox: %s\n", sb.status().ToString().c_str());
    return 1;
  }
  std::vector<int> zygotes;
  {
    auto info = k2::json::parse((*sb)->pool_info());
    for (auto& z : info) zygotes.push_back(z["pid"].get<int>());
    std::printf("zygotes (learned prefault per zygote): %s\n", info.dump().c_str());
  }
  k2::sandbox::RunRequest req;
  if (!show.empty()) {
    for (int i = 0; i < 3; ++i) {
      req.code = show;
      auto r = (*sb)->Run(req);
      std::printf("[%s] %s%s", k2::sandbox::RunStatusName(r.status), r.stdout_data.c_str(), r.stderr_data.c_str());
    }
    return 0;
  }
  req.code = "print(1)";
  auto sandboxed = [&] {
    auto r = (*sb)->Run(req);
    return r.status == k2::sandbox::RunStatus::kOk && r.stdout_data == "1\n";
  };
  const std::vector<std::string> bare = {cfg.python, "-c", "print(1)"};
  const std::vector<std::string> bwrap = {"/usr/bin/bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/usr",
                                          "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
                                          "--symlink", "usr/bin", "/bin", "--proc", "/proc", "--dev", "/dev",
                                          "--tmpfs", "/tmp", cfg.python, "-c", "print(1)"};
  // Warm-up (first forks fault in the zygotes' pages), then the three variants back to back.
  Measure(std::min(runs, 20), threads, sandboxed);
  if (only == "sandbox") {
    Stats s = Measure(runs, threads, sandboxed, zygotes);
    Print("k2gym sandbox (warm zygotes)", s, s);
    return s.failures > 0 ? 1 : 0;
  }
  Stats s_bare = Measure(runs, threads, [&] { return SpawnPrint1(bare); });
  Stats s_bwrap = Measure(runs, threads, [&] { return SpawnPrint1(bwrap); });
  Stats s_sb = Measure(runs, threads, sandboxed, zygotes);
  Print("bare python3 -c (no isolation)", s_bare, s_bare);
  Print("bwrap + python3 -c per run", s_bwrap, s_bare);
  Print("k2gym sandbox (warm zygotes)", s_sb, s_bare);
  std::printf("ratio sandbox/bwrap throughput: x%.2f; goal >= 150 runs/s: %s\n", s_sb.runs_per_s / s_bwrap.runs_per_s,
              s_sb.runs_per_s >= 150 ? "met" : "NOT met");
  return s_sb.failures + s_bare.failures + s_bwrap.failures > 0 ? 1 : 0;
}
