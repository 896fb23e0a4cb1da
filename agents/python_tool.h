// The `python` code-execution tool environments may offer: runs the agent's code in the sandbox
// (sandbox/sandbox.h: namespaces, cgroups, seccomp, limits) and returns stdout/stderr as the observation.
#pragma once

#include "agents/env.h"
#include "toolgen/tool_spec.h"

namespace k2::sandbox {
class Sandbox;
}

namespace k2::agents {

// Input schema {"code": string (required), "stdin": string}; annotations: not read-only, open world.
toolgen::ToolSpec PythonToolSpec();

// Thread-safe (Sandbox::Run is). The sandbox is not owned and must outlive the tool.
class PythonTool {
 public:
  PythonTool(sandbox::Sandbox* sb, double wall_s, int64_t memory_mb);
  // Runs `arguments.code`. Text: stdout, then "[stderr]\n..." when there is any; a non-zero exit, a
  // timeout or a limit is an error outcome naming the status ("error: timeout: wall-clock limit 2s").
  ToolOutcome Run(const json& arguments) const;

 private:
  sandbox::Sandbox* sb_;
  double wall_s_;
  int64_t memory_mb_;
};

}  // namespace k2::agents
