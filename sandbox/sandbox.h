// sandbox: isolated, fast execution of untrusted Python and bash code (namespaces, seccomp, cgroups,
// rlimits) through a warm pool of pre-forked zygotes; plus helpers that grade programs against tests.
//
// Ownership: a Sandbox owns its zygote processes, its cgroup subtree and its temporary root directory;
// destroying it kills every RunAsync run still in flight (they end with kSandboxError) and removes all
// three. Synchronous Run() calls made from other threads must have returned before destruction. Thread safety: Run/RunAsync may
// be called from any number of threads at once. Failure behaviour: Run never throws and never leaves a
// process, mount, cgroup or temp dir behind; anything the sandbox itself could not do is reported as
// RunStatus::kSandboxError with a message. See docs/sandbox.md for the threat model.
#pragma once

#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"

namespace k2::sandbox {

// Per-run limits. Units: seconds, MiB, bytes, counts.
struct Limits {
  double wall_s = 10;               // wall clock, from the fork to the last process exiting
  double cpu_s = 10;                // CPU time of the whole process tree (cgroup accounting + RLIMIT_CPU)
  int64_t memory_mb = 512;          // cgroup memory limit (tmpfs pages count too)
  int pids = 64;                    // cgroup pids limit: processes + threads
  int64_t output_bytes = 1 << 20;   // cap on stdout and on stderr, each; exceeding it kills the run
  int64_t tmpfs_mb = 64;            // size of /work and of /tmp (each)
  int open_files = 256;             // RLIMIT_NOFILE
  double cpus = 1.0;                // CPU bandwidth (cgroup quota), in cores

  template <class V> void Visit(V& v) {
    v("wall_s", wall_s, "wall-clock limit per run (s)", {.min = 0.01, .max = 3600});
    v("cpu_s", cpu_s, "CPU-time limit per run, whole process tree (s)", {.min = 0.01, .max = 3600});
    v("memory_mb", memory_mb, "memory limit per run (MiB), tmpfs included", {.min = 16, .max = 1 << 20});
    v("pids", pids, "max processes+threads per run", {.min = 4, .max = 1 << 16});
    v("output_bytes", output_bytes, "cap on stdout and on stderr (bytes each)", {.min = 1, .max = 1LL << 34});
    v("tmpfs_mb", tmpfs_mb, "size of the /work and /tmp tmpfs (MiB each)", {.min = 1, .max = 1 << 20});
    v("open_files", open_files, "RLIMIT_NOFILE per process", {.min = 16, .max = 1 << 20});
    v("cpus", cpus, "CPU bandwidth per run (cores, cgroup quota)", {.min = 0.01, .max = 1024});
  }
};

// Checks ranges (same bounds as Visit); the error names the field.
Status ValidateLimits(const Limits& l);

struct RunRequest {
  std::string language = "python";               // "python" (python3) or "bash"
  std::string code;
  std::string stdin_data;
  Limits limits;
  // Paths relative to /work (the program's cwd) or absolute in the sandbox's root: files are written under
  // /work, /tmp, /mnt or /dev/shm; fetch_files may name any regular file but under /proc, /sys and /dev.
  std::map<std::string, std::string> files;      // path -> bytes, written before the program starts
  std::vector<std::string> fetch_files;          // paths returned after the run (those that exist)
};

enum class RunStatus { kOk, kRuntimeError, kTimeout, kMemoryLimit, kOutputLimit, kSandboxError };
const char* RunStatusName(RunStatus s);  // "ok", "runtime_error", "timeout", ...

struct RunResult {
  RunStatus status = RunStatus::kSandboxError;
  int exit_code = -1;                  // exit status when the program exited, else -1
  int signal = 0;                      // terminating signal of the program's main process, else 0
  std::string stdout_data, stderr_data;
  bool stdout_truncated = false, stderr_truncated = false;
  double wall_s = 0, cpu_s = 0;        // measured wall time and CPU time of the process tree
  int64_t memory_peak_bytes = 0;       // cgroup high-water mark, 0 when unknown
  std::map<std::string, std::string> files;  // fetched files that existed (path -> bytes)
  std::string message;                 // why, for anything but kOk ("wall-clock limit 2s", setup error...)
};

struct SandboxConfig {
  int workers = 2;                     // zygotes kept warm; runs are spread over them
  bool warm = true;                    // false: a fresh zygote (cold interpreter) per run; the reference path
  int max_concurrent = 64;             // runs executing at once; more wait (RunAsync threads too)
  std::string python = "/usr/bin/python3";
  std::string bash = "/bin/bash";
  std::vector<std::string> preload = {"json", "re", "math", "collections", "itertools", "functools", "heapq",
                                      "bisect", "random", "string", "typing", "datetime", "decimal",
                                      "fractions", "statistics", "copy", "io", "traceback", "resource"};
  std::vector<std::string> ro_binds = {"/usr", "/bin", "/lib", "/lib64", "/sbin", "/etc/alternatives",
                                       "/etc/ld.so.cache"};
  bool per_run_netns = true;           // a fresh network namespace per run (loopback only)
  // With per_run_netns: a run may get the namespace of a finished run of the same zygote when nothing of
  // that run is left in it (no socket, TIME_WAIT, orphan or fragment). Off by default: the namespace's
  // packet counters (/proc/net/snmp, /proc/net/dev) cannot be reset and would carry one run's traffic
  // volume to the next (docs/sandbox.md "Threat model").
  bool reuse_netns = false;
  // Learned prefault (docs/sandbox.md "Speed"): "write": each run's child copies, in one call per range
  // right after the fork, the zygote pages that probe runs wrote; "all": also maps the file pages (the
  // interpreter's code) they used; "off".
  std::string prefault = "all";
  // A host uid used by nothing else: it creates (so owns) the zygotes' user namespaces, which charges what
  // runs create to it, not to root (docs/sandbox.md); the sandbox root maps to it, the program's uid 1000
  // to +1000.
  int64_t host_uid_base = 100000;
  std::string cgroup_root;             // "" = auto: a subtree under this process's own cgroup
  std::string tmp_dir = "/tmp";        // where the zygotes' root mountpoints are created
  Limits defaults;                     // limits of RunRequests that the service/CLI build

  template <class V> void Visit(V& v) {
    v("workers", workers, "warm zygotes (pre-forked interpreters)", {.min = 1, .max = 256});
    v("warm", warm, "use the warm pool; false starts a fresh interpreter per run (slow reference)");
    v("max_concurrent", max_concurrent, "runs executing at once; more wait", {.min = 1, .max = 4096});
    v("python", python, "python3 interpreter used inside the sandbox");
    v("bash", bash, "bash used inside the sandbox");
    v("preload", preload, "modules imported once by each zygote");
    v("ro_binds", ro_binds, "host paths visible read-only inside (symlinks are recreated)");
    v("per_run_netns", per_run_netns, "fresh network namespace per run (else one per zygote)");
    v("reuse_netns", reuse_netns, "reuse a finished run's network namespace when nothing of it is left (leaks packet counters between runs)");
    v("prefault", prefault, "pages a run's child populates right after the fork, learned by probe runs",
      {.choices = {"off", "write", "all"}});
    v("host_uid_base", host_uid_base, "dedicated host uid: owns the zygotes' namespaces, is their root (program runs as base+1000)",
      {.min = 1000, .max = 4000000000.0});
    v("cgroup_root", cgroup_root, "cgroup path for the runs (\"\" = under this process's cgroup)");
    v("tmp_dir", tmp_dir, "directory for the zygotes' temporary root mountpoints");
    v("defaults", defaults, "default limits for requests that give none");
  }
};

namespace detail { class SandboxImpl; }

class Sandbox {
 public:
  // Detects the cgroup version, builds the seccomp filter and starts the zygotes. Fails with a clear
  // message when namespaces, cgroups or the interpreter are unavailable.
  static Expected<std::unique_ptr<Sandbox>> Create(const SandboxConfig& cfg);
  ~Sandbox();
  Sandbox(const Sandbox&) = delete;
  Sandbox& operator=(const Sandbox&) = delete;

  // Runs one program in a fresh child that is never reused. Blocks until it and every process it
  // started are gone. Invalid requests give kSandboxError with a message naming the field.
  RunResult Run(const RunRequest& req);
  // Same, on a thread of the sandbox's own (the result arrives when the run ends).
  std::future<RunResult> RunAsync(RunRequest req);

  const SandboxConfig& config() const;
  std::string cgroup_version() const;    // "v1" or "v2"
  std::string cgroup_dirs() const;       // the subtree(s) this sandbox owns, for diagnostics/tests
  std::string root_dir() const;          // host directory the zygotes mount their roots on
  // The warm zygotes, for diagnostics and benchmarks: JSON array of {"pid" (host pid), "prefault",
  // "ranges", "write_pages", "read_pages", "pinned_pages", "inherited_pages" [, "error"]} (the learned
  // prefault set of each: written pages, of them pinned in the zygote; file pages, of them mapped by fork).
  std::string pool_info() const;

 private:
  explicit Sandbox(std::unique_ptr<detail::SandboxImpl> impl);
  std::unique_ptr<detail::SandboxImpl> impl_;
};

// ---- grading helpers -------------------------------------------------------------------------------
enum class CaseStatus { kPassed, kFailed, kTimeout, kRuntimeError, kMemoryLimit, kOutputLimit, kSandboxError };
const char* CaseStatusName(CaseStatus s);  // "passed", "failed", ...

struct IoCase { std::string stdin_data, expected_stdout; };
struct CaseResult { CaseStatus status = CaseStatus::kSandboxError; std::string detail; RunResult run; };

// Strips trailing whitespace (the SandboxFusion/verl comparison convention).
std::string StripTrailing(const std::string& s);

// Runs `code` once per case (concurrently), comparing stdout after StripTrailing on both sides.
std::vector<CaseResult> RunIoCases(Sandbox& sb, const std::string& language, const std::string& code,
                                   const std::vector<IoCase>& cases, const Limits& limits);

// Runs Python assert tests against `code` with a verdict the code cannot produce: the tests run in a
// harness process and `code` in a child process of its own that the harness calls through a pipe (calls,
// attribute reads, iteration), every returned value arriving as plain data (docs/sandbox.md, "Assert
// tests cannot be faked"). Passing requires the harness to print a random per-run nonce after the last
// assert, once every process of the program is gone. module_name: the program's __name__ ("solution"
// keeps an `if __name__ == "__main__":` block off); tests can also `from <module_name> import f`.
// Statuses: passed; failed (an assert failed, or the program ended before the tests did); runtime_error
// (an exception other than AssertionError); timeout (the run's limits, or the program killed by its CPU-time
// limit); memory_limit / output_limit. Python only.
CaseResult RunAssertTests(Sandbox& sb, const std::string& language, const std::string& code,
                          const std::string& test_code, const Limits& limits,
                          const std::string& module_name = "__main__");

}  // namespace k2::sandbox
