// The `python` tool over sandbox::Sandbox: request building, output shaping (capped, both streams) and
// the mapping of run statuses to error observations the agent can read.
#include "agents/python_tool.h"

#include "sandbox/sandbox.h"

namespace k2::agents {

toolgen::ToolSpec PythonToolSpec() {
  toolgen::ToolSpec s;
  s.name = "python";
  s.title = "Run Python";
  s.description =
      "Run a Python 3 program in an isolated sandbox (no network, limited time and memory) and return what it "
      "printed. Use print() for results. Each call starts a fresh interpreter: no state is kept between calls.";
  s.input_schema = {{"type", "object"},
                    {"properties",
                     {{"code", {{"type", "string"}, {"description", "the program"}, {"minLength", 1}}},
                      {"stdin", {{"type", "string"}, {"description", "standard input"}}}}},
                    {"required", {"code"}},
                    {"additionalProperties", false}};
  s.annotations = {{"readOnlyHint", false}, {"openWorldHint", false}};
  return s;
}

PythonTool::PythonTool(sandbox::Sandbox* sb, double wall_s, int64_t memory_mb)
    : sb_(sb), wall_s_(wall_s), memory_mb_(memory_mb) {}

ToolOutcome PythonTool::Run(const json& arguments) const {
  sandbox::RunRequest req;
  req.language = "python";
  req.code = arguments.value("code", "");
  req.stdin_data = arguments.value("stdin", "");
  req.limits.wall_s = wall_s_;
  req.limits.cpu_s = wall_s_;
  req.limits.memory_mb = memory_mb_;
  req.limits.output_bytes = 64 << 10;  // an observation, not a data channel
  sandbox::RunResult r = sb_->Run(req);
  std::string text = r.stdout_data;
  if (!r.stderr_data.empty()) text += (text.empty() ? "" : "\n") + std::string("[stderr]\n") + r.stderr_data;
  if (r.stdout_truncated || r.stderr_truncated) text += "\n[output truncated]";
  if (r.status == sandbox::RunStatus::kOk && r.exit_code == 0) return ToolOutcome{text, std::nullopt, false};
  std::string why = std::string(sandbox::RunStatusName(r.status));
  if (r.status == sandbox::RunStatus::kRuntimeError || (r.status == sandbox::RunStatus::kOk && r.exit_code != 0))
    why = "runtime_error: exit code " + std::to_string(r.exit_code);
  else if (!r.message.empty())
    why += ": " + r.message;
  return ToolOutcome{"error: " + why + (text.empty() ? "" : "\n" + text), std::nullopt, true};
}

}  // namespace k2::agents
