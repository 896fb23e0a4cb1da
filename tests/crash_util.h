// Crash tests of the training commands: run the k2gym binary with K2GYM_CRASH_AT (core/fault.h) so it
// SIGKILLs itself at a named point, then compare a resumed run with an uninterrupted one: checkpoint
// files byte for byte, metrics.csv and store rows one per (step, key), one run id, status done.
// Header-only; blocking calls. Tests define K2GYM_BINARY_DIR.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "core/json.h"
#include "core/store.h"

extern char** environ;

namespace k2::test {

struct Exit {
  int code = -1;    // exit status when it exited
  int signal = 0;   // the signal that ended it, else 0
  std::string err;  // its stderr
};

// Runs the k2gym binary with `args` (already split) and K2GYM_CRASH_AT=crash_at (none when empty);
// a crash_at of "INT:POINT@N" or "TERM:POINT@N" sends that signal at the point instead of SIGKILL
// (K2GYM_CRASH_SIGNAL). stdout goes to stdout_path (or /dev/null), stderr is returned.
inline Exit RunK2gymCrashing(const std::vector<std::string>& args, const std::string& crash_at,
                             const std::string& err_path, const std::string& stdout_path = "/dev/null") {
  const std::string bin = std::string(K2GYM_BINARY_DIR) + "/apps/k2gym";
  std::vector<std::string> argv_s = {bin};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s;
  for (char** e = environ; *e; ++e)
    if (std::string(*e).rfind("K2GYM_CRASH_", 0) != 0) env_s.push_back(*e);
  std::string at = crash_at;
  for (const char* sig : {"INT:", "TERM:"})
    if (at.rfind(sig, 0) == 0) {
      env_s.push_back("K2GYM_CRASH_SIGNAL=" + std::string(sig, std::string(sig).size() - 1));
      at = at.substr(std::string(sig).size());
    }
  if (!at.empty()) env_s.push_back("K2GYM_CRASH_AT=" + at);
  std::vector<char*> envp;
  for (auto& s : env_s) envp.push_back(s.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, stdout_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  Exit r;
  const int rc = posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    r.err = "posix_spawn failed";
    return r;
  }
  int st = 0;
  waitpid(pid, &st, 0);
  if (WIFEXITED(st)) r.code = WEXITSTATUS(st);
  if (WIFSIGNALED(st)) r.signal = WTERMSIG(st);
  std::ifstream in(err_path);
  r.err.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return r;
}

// The fault-injection points every training command passes (engine/checkpoint.h, core/metrics.h):
// the metrics commit and each step of the checkpoint swap, then the end of a training step.
inline const std::vector<std::string>& SwapCrashPoints() {
  static const std::vector<std::string> p = {"metrics.committed", "ckpt.tmp_files",  "ckpt.tmp_complete",
                                             "ckpt.moved_aside",  "ckpt.published",  "ckpt.retiring",
                                             "ckpt.saved"};
  return p;
}

// A crash plan: each swap point at its `hit`-th occurrence, then `n_random` points drawn with `seed`
// (a point among the swap points, train.step and metrics.csv_flushed, at hit 1..max_hit).
inline std::vector<std::string> CrashPlan(int hit, int n_random, int max_hit, uint64_t seed) {
  std::vector<std::string> plan;
  for (const auto& p : SwapCrashPoints()) plan.push_back(p + "@" + std::to_string(hit));
  std::vector<std::string> pool = SwapCrashPoints();
  pool.push_back("train.step");
  pool.push_back("train.step");
  pool.push_back("train.step");
  std::mt19937_64 rng(seed);
  for (int i = 0; i < n_random; ++i) {
    const std::string& p = pool[rng() % pool.size()];
    plan.push_back(p + "@" + std::to_string(1 + rng() % static_cast<uint64_t>(max_hit)));
  }
  return plan;
}

using MetricRows = std::map<std::pair<int64_t, std::string>, std::vector<double>>;

// Timing metrics differ from run to run by nature.
inline bool TimingKey(const std::string& key) {
  return key.rfind("time_", 0) == 0 || key.find("tokens_per_s") != std::string::npos;
}

inline MetricRows CsvMetricRows(const std::string& path) {
  MetricRows rows;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    const size_t a = line.find(','), b = line.find(',', a + 1), c = line.find(',', b + 1);
    if (c == std::string::npos) {
      ADD_FAILURE() << path << ": torn line \"" << line << "\"";
      continue;
    }
    rows[{std::stoll(line.substr(0, a)), line.substr(a + 1, b - a - 1)}].push_back(
        std::stod(line.substr(b + 1, c - b - 1)));
  }
  return rows;
}

inline MetricRows StoreMetricRows(Db* db, int64_t run) {
  MetricRows rows;
  auto q = db->Prepare("SELECT step, key, value FROM metrics WHERE run = ?1");
  EXPECT_TRUE(q.ok());
  if (!q.ok()) return rows;
  q->Bind(1, run);
  while (q->Step()) rows[{q->Int(0), q->Text(1)}].push_back(q->Double(2));
  EXPECT_TRUE(q->status().ok()) << q->status().ToString();
  return rows;
}

// `got` holds exactly one row per (step, key) of `want`, with the same value (timing keys excepted;
// `noise` keys compared to `tol`).
inline void ExpectSameMetricRows(const MetricRows& want, const MetricRows& got, const std::string& what,
                                 const std::vector<std::string>& noise = {}, double tol = 0) {
  EXPECT_EQ(want.size(), got.size()) << what << ": (step, key) pairs";
  int reported = 0;
  for (const auto& [sk, vals] : want) {
    auto it = got.find(sk);
    if (it == got.end()) {
      if (reported++ < 10) ADD_FAILURE() << what << ": missing step " << sk.first << " " << sk.second;
      continue;
    }
    if (it->second.size() != 1 && reported++ < 10)
      ADD_FAILURE() << what << ": step " << sk.first << " " << sk.second << " logged " << it->second.size() << " times";
    if (vals.size() != 1 || TimingKey(sk.second)) continue;
    bool noisy = false;
    for (const auto& n : noise) noisy = noisy || n == sk.second;
    if (noisy) {
      EXPECT_NEAR(vals[0], it->second[0], tol) << what << ": step " << sk.first << " " << sk.second;
    } else if (vals[0] != it->second[0] && reported++ < 10) {
      ADD_FAILURE() << what << ": step " << sk.first << " " << sk.second << ": " << it->second[0] << " != " << vals[0];
    }
  }
  for (const auto& [sk, vals] : got)
    if (!want.count(sk) && reported++ < 10) ADD_FAILURE() << what << ": extra step " << sk.first << " " << sk.second;
}

inline std::string FileBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The checkpoint state files of two runs are byte-identical.
inline void ExpectSameCheckpoint(const std::string& a, const std::string& b) {
  for (const char* f : {"config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json"}) {
    const std::string fa = FileBytes(a + "/" + f), fb = FileBytes(b + "/" + f);
    EXPECT_FALSE(fa.empty()) << a << "/" << f;
    EXPECT_TRUE(fa == fb) << a << "/" << f << " and " << b << "/" << f << " differ";
  }
  EXPECT_FALSE(std::filesystem::exists(b + ".tmp")) << b << ".tmp left behind";
  EXPECT_FALSE(std::filesystem::exists(b + ".old")) << b << ".old left behind";
}

// The run directory's store run: exactly one run of that name, `done`, and it is the one
// OUT/store_run.json names; returns its id.
inline int64_t ExpectOneDoneRun(Db* db, const std::string& out_dir) {
  auto q = db->Prepare("SELECT id, status FROM runs WHERE name = ?1");
  EXPECT_TRUE(q.ok());
  if (!q.ok()) return 0;
  q->Bind(1, out_dir);
  std::vector<std::pair<int64_t, std::string>> runs;
  while (q->Step()) runs.emplace_back(q->Int(0), q->Text(1));
  EXPECT_EQ(runs.size(), 1u) << out_dir << ": one store run across every resume";
  if (runs.empty()) return 0;
  EXPECT_EQ(runs[0].second, "done") << out_dir;
  auto rf = ReadJsonFile(out_dir + "/store_run.json");
  EXPECT_TRUE(rf.ok());
  if (rf.ok()) {
    EXPECT_EQ((*rf)["run"].get<int64_t>(), runs[0].first);
  }
  return runs[0].first;
}

}  // namespace k2::test
