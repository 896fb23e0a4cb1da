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
//                      [--prefault off|write|all] [--ablation] [--only sandbox] [--show CODE]
//   --ablation: also the sandbox with the opt-in network namespace reuse, and without the learned prefault
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

// One variant under test, measured in batches interleaved with the others so that every variant sees
// the same background load.
struct Variant {
  std::string name;
  std::function<bool()> one;  // one run; false on a wrong result
  std::vector<int> zygotes;   // host pids whose CPU and faults (with their reaped runs') count
  std::vector<double> lat_ms;
  double secs = 0, cpu_ms = 0, faults = 0, kthread_ms = 0;
  int runs = 0, failures = 0;
};

// Runs `n` runs of `v` from `threads` client threads and adds their time, CPU and faults to it.
void Batch(Variant& v, int n, int threads) {
  Usage u0 = Snapshot(v.zygotes);
  std::vector<double> lat(static_cast<size_t>(n));
  std::atomic<int> next{0}, failures{0};
  auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      for (int i; (i = next++) < n;) {
        auto a = Clock::now();
        if (!v.one()) ++failures;
        lat[static_cast<size_t>(i)] = std::chrono::duration<double, std::milli>(Clock::now() - a).count();
      }
    });
  }
  for (auto& t : ts) t.join();
  v.secs += std::chrono::duration<double>(Clock::now() - t0).count();
  Usage u1 = Snapshot(v.zygotes);
  v.cpu_ms += u1.cpu_ms - u0.cpu_ms;
  v.faults += u1.faults - u0.faults;
  v.kthread_ms += u1.kthread_ms - u0.kthread_ms;
  v.runs += n;
  v.failures += failures;
  v.lat_ms.insert(v.lat_ms.end(), lat.begin(), lat.end());
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

double Pct(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(static_cast<double>(v.size()) * q))];
}

// bg_kthread_ms_per_s: the kernel threads' CPU rate measured before the variants ran, subtracted.
void Print(const Variant& v, const Variant& ref, double bg_kthread_ms_per_s) {
  const double rate = v.runs / v.secs, ref_rate = ref.runs / ref.secs;
  const double cpu = v.cpu_ms / v.runs, ref_cpu = ref.cpu_ms / ref.runs;
  const double kth = (v.kthread_ms - bg_kthread_ms_per_s * v.secs) / v.runs;
  std::printf("%-44s %7.1f runs/s  p50 %7.2f ms  p99 %7.2f ms  failures %d  throughput x%.2f of bare\n",
              v.name.c_str(), rate, Pct(v.lat_ms, 0.5), Pct(v.lat_ms, 0.99), v.failures, rate / ref_rate);
  std::printf("%-44s CPU %6.2f ms/run (x%.2f of bare), faults %4.0f/run, kernel threads %+5.2f ms/run "
              "-> %6.1f runs/s on 2 idle cores\n", "", cpu, cpu / ref_cpu, v.faults / v.runs, kth,
              2000.0 / (cpu + std::max(0.0, kth)));
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 300, threads = 4, workers = 2;
  bool netns = true, preload_default = false, ablation = false;
  std::string prefault = "all";
  // only: "" (bare, bwrap and the sandbox) or "sandbox" (the sandbox variants alone, for profiling);
  // show: a program run three times through the sandbox, its output printed.
  std::string only, show;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--runs" && i + 1 < argc) runs = std::atoi(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--workers" && i + 1 < argc) workers = std::atoi(argv[++i]);
    else if (a == "--no-netns") netns = false;
    else if (a == "--ablation") ablation = true;
    else if (a == "--prefault" && i + 1 < argc) prefault = argv[++i];
    else if (a == "--preload-default") preload_default = true;
    else if (a == "--only" && i + 1 < argc) only = argv[++i];
    else if (a == "--show" && i + 1 < argc) show = argv[++i];
    else {
      std::fprintf(stderr, "usage: %s [--runs N] [--threads T] [--workers W] [--no-netns] [--preload-default] [--prefault off|write|all] [--ablation] [--only sandbox] [--show CODE]\n", argv[0]);
      return 2;
    }
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // line by line, also when redirected
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
  k2::sandbox::RunRequest req;
  req.code = "print(1)";
  // The sandbox variants: the configured one, and with --ablation the same with one setting changed
  std::vector<std::pair<std::string, k2::sandbox::SandboxConfig>> configs = {{"k2gym sandbox (warm zygotes)", cfg}};
  if (ablation) {
    auto c = cfg;
    c.prefault = "write";
    configs.push_back({"  ... with prefault \"write\" (no file pages)", c});
    c = cfg;
    c.reuse_netns = true;
    configs.push_back({"  ... with netns reuse (opt-in: leaks counters)", c});
    c = cfg;
    c.prefault = "off";
    configs.push_back({"  ... without learned prefault", c});
  }
  std::vector<std::unique_ptr<k2::sandbox::Sandbox>> boxes;
  std::vector<Variant> vs;
  const std::vector<std::string> bare = {cfg.python, "-c", "print(1)"};
  // --as-pid-1: python3 is bwrap's direct child, so its CPU and faults reach getrusage(RUSAGE_CHILDREN);
  // with bwrap's own init in between they were lost (CPU per run read as ~10 ms).
  const std::vector<std::string> bwrap = {"/usr/bin/bwrap", "--unshare-all", "--as-pid-1", "--die-with-parent", "--ro-bind", "/usr",
                                          "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
                                          "--symlink", "usr/bin", "/bin", "--proc", "/proc", "--dev", "/dev",
                                          "--tmpfs", "/tmp", cfg.python, "-c", "print(1)"};
  if (only.empty()) {
    vs.push_back({"bare python3 -c (no isolation)", [&] { return SpawnPrint1(bare); }});
    vs.push_back({"bwrap + python3 -c per run", [&] { return SpawnPrint1(bwrap); }});
  }
  for (auto& [name, c] : configs) {
    auto sb = k2::sandbox::Sandbox::Create(c);
    if (!sb.ok()) {
      std::fprintf(stderr, "sandbox: %s\n", sb.status().ToString().c_str());
      return 1;
    }
    auto* box = sb->get();
    boxes.push_back(std::move(*sb));
    if (!show.empty()) {
      for (int i = 0; i < 3; ++i) {
        req.code = show;
        auto r = box->Run(req);
        std::printf("[%s] %s%s", k2::sandbox::RunStatusName(r.status), r.stdout_data.c_str(), r.stderr_data.c_str());
      }
      return 0;
    }
    Variant v{name, [box, &req] {
                auto r = box->Run(req);
                return r.status == k2::sandbox::RunStatus::kOk && r.stdout_data == "1\n";
              }};
    auto info = k2::json::parse(box->pool_info());
    for (auto& z : info) v.zygotes.push_back(z["pid"].get<int>());
    std::printf("%s: zygotes (learned prefault per zygote): %s\n", name.c_str(), info.dump().c_str());
    vs.push_back(std::move(v));
  }
  // Warm-up (the first forks fault in the zygotes' pages), then the background rate of the kernel
  // threads, then the variants in interleaved batches.
  for (auto& v : vs) {
    Variant w{v.name, v.one, {}};
    Batch(w, std::min(runs, 20), threads);
  }
  double bg = 0;
  {
    Usage a = Snapshot({});
    std::this_thread::sleep_for(std::chrono::seconds(2));
    bg = (Snapshot({}).kthread_ms - a.kthread_ms) / 2.0;
  }
  const int batch = std::max(1, std::min(runs, 25));
  for (int done = 0; done < runs; done += batch) {
    for (auto& v : vs) Batch(v, std::min(batch, runs - done), threads);
  }
  std::printf("kernel threads' background CPU before the runs: %.1f ms/s (subtracted below)\n", bg);
  int failures = 0;
  for (auto& v : vs) {
    Print(v, vs.front(), bg);
    failures += v.failures;
  }
  if (only.empty()) {
    const Variant& sbv = vs[2];
    const double kth = std::max(0.0, (sbv.kthread_ms - bg * sbv.secs) / sbv.runs);
    std::printf("ratio sandbox/bwrap throughput: x%.2f, CPU per run x%.2f; goal >= 150 runs/s: %s here; %.1f runs/s "
                "from CPU per run (kernel threads included) on 2 idle cores\n",
                (sbv.runs / sbv.secs) / (vs[1].runs / vs[1].secs), (sbv.cpu_ms / sbv.runs) / (vs[1].cpu_ms / vs[1].runs),
                sbv.runs / sbv.secs >= 150 ? "met" : "NOT met", 2000.0 / (sbv.cpu_ms / sbv.runs + kth));
  }
  return failures > 0 ? 1 : 0;
}
