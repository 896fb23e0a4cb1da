// Grading helpers on top of Sandbox: stdin/expected-stdout cases and Python assert-based tests with a
// tamper-evident pass signal (a random nonce printed only after the last assert).
#include <random>

#include "core/json.h"

#include "sandbox/sandbox.h"

namespace k2::sandbox {

const char* CaseStatusName(CaseStatus s) {
  switch (s) {
    case CaseStatus::kPassed: return "passed";
    case CaseStatus::kFailed: return "failed";
    case CaseStatus::kTimeout: return "timeout";
    case CaseStatus::kRuntimeError: return "runtime_error";
    case CaseStatus::kMemoryLimit: return "memory_limit";
    case CaseStatus::kOutputLimit: return "output_limit";
    case CaseStatus::kSandboxError: return "sandbox_error";
  }
  return "?";
}

std::string StripTrailing(const std::string& s) {
  size_t n = s.size();
  while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\t' ||
                   s[n - 1] == '\v' || s[n - 1] == '\f')) {
    --n;
  }
  return s.substr(0, n);
}

namespace {

// Maps a run that did not finish normally to its case status; kOk and kRuntimeError are left to the caller.
CaseStatus FromRun(RunStatus s) {
  switch (s) {
    case RunStatus::kOk: return CaseStatus::kPassed;
    case RunStatus::kRuntimeError: return CaseStatus::kRuntimeError;
    case RunStatus::kTimeout: return CaseStatus::kTimeout;
    case RunStatus::kMemoryLimit: return CaseStatus::kMemoryLimit;
    case RunStatus::kOutputLimit: return CaseStatus::kOutputLimit;
    case RunStatus::kSandboxError: return CaseStatus::kSandboxError;
  }
  return CaseStatus::kSandboxError;
}

std::string FirstDiff(const std::string& got, const std::string& want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  auto show = [](const std::string& s, size_t at) {
    std::string part = s.substr(at, 40);
    return "\"" + json(part).get<std::string>() + "\"";
  };
  return "stdout differs at byte " + std::to_string(i) + ": got " + show(got, i) + ", expected " + show(want, i);
}

}  // namespace

std::vector<CaseResult> RunIoCases(Sandbox& sb, const std::string& language, const std::string& code,
                                   const std::vector<IoCase>& cases, const Limits& limits) {
  std::vector<std::future<RunResult>> futs;
  futs.reserve(cases.size());
  for (const auto& c : cases) {
    RunRequest r;
    r.language = language;
    r.code = code;
    r.stdin_data = c.stdin_data;
    r.limits = limits;
    futs.push_back(sb.RunAsync(std::move(r)));
  }
  std::vector<CaseResult> out(cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    CaseResult& cr = out[i];
    cr.run = futs[i].get();
    cr.status = FromRun(cr.run.status);
    if (cr.run.status == RunStatus::kOk) {
      std::string got = StripTrailing(cr.run.stdout_data), want = StripTrailing(cases[i].expected_stdout);
      if (got != want) {
        cr.status = CaseStatus::kFailed;
        cr.detail = FirstDiff(got, want);
      }
    } else {
      cr.detail = cr.run.message;
    }
  }
  return out;
}

CaseResult RunAssertTests(Sandbox& sb, const std::string& language, const std::string& code,
                          const std::string& test_code, const Limits& limits) {
  CaseResult cr;
  if (language != "python") {
    cr.status = CaseStatus::kSandboxError;
    cr.detail = "RunAssertTests: language: expected \"python\", got \"" + language + "\"";
    return cr;
  }
  // The nonce arrives on stdin and the harness takes it before the program runs: fd 0 is then replaced
  // by /dev/null (the stdin memfd has no other descriptor, so it is gone: no fd, /proc/self/fd entry or
  // pread at offset 0 can reach it), and the nonce is kept only XOR-masked, in the closure of the
  // function that prints it after the last assert (it never exists as a plain str/bytes object).
  std::random_device rd;
  std::string nonce;
  const char* hex = "0123456789abcdef";
  for (int i = 0; i < 32; ++i) nonce += hex[rd() & 15];
  static const char* kPrologue =
      "def _k2_harness():\n"
      "    import os\n"
      "    buf = bytearray(64)\n"
      "    n = os.readv(0, [buf])\n"
      "    fd = os.open('/dev/null', os.O_RDONLY)\n"
      "    os.dup2(fd, 0)\n"
      "    os.close(fd)\n"
      "    mask = os.urandom(64)\n"
      "    held = bytes([buf[i] ^ mask[i] for i in range(n)])\n"
      "    for i in range(len(buf)):\n"
      "        buf[i] = 0\n"
      "    write = os.write\n"
      "    def finish():\n"
      "        write(1, b'\\n' + bytes([held[i] ^ mask[i] for i in range(len(held))]).strip() + b'\\n')\n"
      "    return finish\n"
      "_k2_finish = _k2_harness()\n"
      "del _k2_harness\n";
  RunRequest r;
  r.language = "python";
  r.limits = limits;
  r.stdin_data = nonce + "\n";
  r.code = kPrologue + code + "\n\n" + test_code + "\n\n_k2_finish()\n";
  cr.run = sb.Run(r);
  cr.status = FromRun(cr.run.status);
  if (cr.run.status == RunStatus::kOk) {
    std::string out = StripTrailing(cr.run.stdout_data);
    size_t nl = out.rfind('\n');
    std::string last = nl == std::string::npos ? out : out.substr(nl + 1);
    if (last != nonce) {
      cr.status = CaseStatus::kFailed;
      cr.detail = "the program exited with status 0 before the harness confirmed that every assert ran";
    }
  } else if (cr.run.status == RunStatus::kRuntimeError) {
    bool assertion = cr.run.stderr_data.find("AssertionError") != std::string::npos;
    cr.status = assertion ? CaseStatus::kFailed : CaseStatus::kRuntimeError;
    cr.detail = assertion ? "an assert failed" : cr.run.message;
    std::string tail = cr.run.stderr_data.size() > 400 ? cr.run.stderr_data.substr(cr.run.stderr_data.size() - 400)
                                                       : cr.run.stderr_data;
    cr.detail += ": " + tail;
  } else {
    cr.detail = cr.run.message;
  }
  return cr;
}

}  // namespace k2::sandbox
