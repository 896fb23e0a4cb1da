// Running shell commands and the k2gym binary from CLI tests: one helper for every test file that
// drives the built binary (exit code + captured stdout).
// Header-only; each call blocks until the command exits. Not for commands that never end.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace k2::test {

// The k2gym binary of this build tree (tests define K2GYM_BINARY_DIR).
inline std::string K2gymBin() { return std::string(K2GYM_BINARY_DIR) + "/apps/k2gym"; }

struct ShellResult {
  int rc = -1;      // exit status; -1 when the command did not exit normally
  std::string out;  // its stdout (plus stderr where the command redirects it)
};

// Runs `cmd` with /bin/sh, collecting stdout.
inline ShellResult RunShell(const std::string& cmd) {
  ShellResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// `k2gym ARGS` with stderr merged into the output (or, with stderr_to_null, discarded).
inline ShellResult RunK2gym(const std::string& args, bool stderr_to_null = false) {
  return RunShell(K2gymBin() + " " + args + (stderr_to_null ? " 2>/dev/null" : " 2>&1"));
}

}  // namespace k2::test
