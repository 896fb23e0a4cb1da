// Two built-in environment kinds beside `mcp` and `synthetic`: `answer` (one user prompt, one reply, no
// tools: math, instruction following, open-ended prompts) and `code_interpreter` (a `python` tool that
// runs the agent's code in the sandbox). Both are registered in EnvRegistry::Global().
#pragma once

#include "agents/env.h"

namespace k2::agents {

// `answer`: config {"system"?: string, "max_steps"?: int (default 1)}. The task JSON gives the prompt
// ({"prompt"} or {"messages"}, ToolEnv::TaskMessages); the first reply without tool calls ends it.
Status RegisterAnswerEnv(EnvRegistry& registry);

// `code_interpreter`: config {"system"?: string, "max_steps"?: int (default 8), "wall_s"?: number (per
// run, default 5), "memory_mb"?: int (default 256)}. Offers the `python` tool (agents/python_tool.h)
// over one process-wide sandbox, started on first use.
Status RegisterCodeInterpreterEnv(EnvRegistry& registry);

}  // namespace k2::agents
