// Code verifier (RLVR): runs the response's program in the sandbox against stdin/stdout cases and/or
// Python assert tests; score = pass fraction. A case that times out, crashes or hits a limit scores 0
// and its reason is in the explanation; a sandbox failure (the infrastructure, not the program) is an
// error Status, never a score, so the trainer does not learn from it.
//
// Reward "code", task spec: {"language"?: "python"|"bash", "io_cases"?: [{"input", "output"}],
//   "test_code"?: "assert f(1) == 2\n...", "limits"?: {sandbox Limits keys}} (at least one of io_cases,
//   test_code). Config: {"type": "code", "language": "python", "limits": {...}, "sandbox": {SandboxConfig}}.
// Thread safety: Score may be called from many threads (Sandbox::Run is thread-safe).
#pragma once

#include <memory>
#include <string>

#include "rewards/reward.h"
#include "sandbox/sandbox.h"

namespace k2::rewards {

// The program in a response: the last fenced block tagged for `language` (```python, ```py, ```bash,
// ```sh) or untagged; else the last fenced block of any tag; with no fence at all, the whole response.
std::string ExtractCode(const std::string& response, const std::string& language);

struct CodeConfig {
  std::string language = "python";
  sandbox::Limits limits;  // per run; a task's "limits" override individual keys
};

// Shares an existing sandbox (one warm pool for all rewards of a process).
std::unique_ptr<Reward> MakeCodeReward(std::shared_ptr<sandbox::Sandbox> sb, CodeConfig cfg);
// Creates its own sandbox from config["sandbox"] (SandboxConfig keys; defaults otherwise).
Expected<std::unique_ptr<Reward>> MakeCodeReward(const json& config, const std::string& where);

}  // namespace k2::rewards
