// The `answer` and `code_interpreter` environment kinds (agents/basic_envs.h): thin ToolEnv subclasses;
// the task reward of their episodes comes from the rewards module through the caller's scorer.
#include "agents/basic_envs.h"

#include <mutex>

#include "agents/python_tool.h"
#include "sandbox/sandbox.h"

namespace k2::agents {
namespace {

// Reads the shared keys {system, max_steps} plus `extra` (number keys) of a kind's config, strictly.
Status ReadConfig(const std::string& kind, const json& config, std::string* system, int* max_steps,
                  std::map<std::string, double>* numbers) {
  if (!config.is_object() && !config.is_null())
    return InvalidArgument(kind + ": config: expected an object, got " + JsonTypeName(config));
  if (config.is_null()) return Status::Ok();
  for (const auto& [k, v] : config.items()) {
    if (k == "system") {
      if (!v.is_string()) return InvalidArgument(kind + ": config.system: expected a string");
      *system = v.get<std::string>();
    } else if (k == "max_steps") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 || v.get<int64_t>() > 100000)
        return InvalidArgument(kind + ": config.max_steps: expected an integer in [1, 100000]");
      *max_steps = v.get<int>();
    } else if (numbers && numbers->count(k)) {
      if (!v.is_number() || v.get<double>() <= 0)
        return InvalidArgument(kind + ": config." + k + ": expected a positive number");
      (*numbers)[k] = v.get<double>();
    } else {
      std::string known = "system, max_steps";
      if (numbers)
        for (auto& [n, x] : *numbers) known += ", " + n;
      return InvalidArgument(kind + ": config: unknown key " + json(k).dump() + " (known: " + known + ")");
    }
  }
  return Status::Ok();
}

class AnswerEnv final : public ToolEnv {
 public:
  AnswerEnv(std::string system, int max_steps) : ToolEnv(max_steps), system_(std::move(system)) {}

 protected:
  Expected<std::vector<Message>> OnReset(uint64_t seed, const json& task) override {
    (void)seed;
    K2_ASSIGN_OR_RETURN(auto first, TaskMessages(task, system_));
    bool has_user = false;
    for (const auto& m : first) has_user |= m.role == "user";
    if (!has_user) return InvalidArgument("answer env: the task has no user prompt (\"prompt\" or \"messages\")");
    return first;
  }
  Expected<ToolOutcome> Invoke(const std::string& tool, const json& arguments) override {
    (void)arguments;
    return NotFound("answer env: no tool " + tool);  // unreachable: the table is empty
  }

 private:
  std::string system_;
};

// One sandbox for every code_interpreter env of the process (zygotes are a process-wide resource).
Expected<sandbox::Sandbox*> InterpreterSandbox() {
  static std::mutex mu;
  static auto* sb = new std::unique_ptr<sandbox::Sandbox>();
  std::lock_guard<std::mutex> lock(mu);
  if (!*sb) {
    auto s = sandbox::Sandbox::Create(sandbox::SandboxConfig{});
    if (!s.ok()) return s.status().Context("code_interpreter env: starting the sandbox");
    *sb = std::move(*s);
  }
  return sb->get();
}

class CodeInterpreterEnv final : public ToolEnv {
 public:
  CodeInterpreterEnv(std::string system, int max_steps, sandbox::Sandbox* sb, double wall_s, int64_t memory_mb)
      : ToolEnv(max_steps), system_(std::move(system)), tool_(sb, wall_s, memory_mb) {}
  Status Init() { return SetTools({PythonToolSpec()}); }

 protected:
  Expected<std::vector<Message>> OnReset(uint64_t seed, const json& task) override {
    (void)seed;
    return TaskMessages(task, system_);
  }
  Expected<ToolOutcome> Invoke(const std::string& tool, const json& arguments) override {
    if (tool != "python") return NotFound("code_interpreter env: no tool " + tool);
    return tool_.Run(arguments);
  }

 private:
  std::string system_;
  PythonTool tool_;
};

}  // namespace

Status RegisterAnswerEnv(EnvRegistry& registry) {
  EnvInfo info{.name = "answer",
               .description = "one prompt, one reply, no tools (math, instruction following, open-ended prompts)",
               .example_config = {{"system", "Answer the question."}}};
  return registry.Register(info, [](const json& config) -> Expected<std::unique_ptr<Env>> {
    std::string system;
    int max_steps = 1;
    K2_RETURN_IF_ERROR(ReadConfig("answer", config, &system, &max_steps, nullptr));
    return std::unique_ptr<Env>(std::make_unique<AnswerEnv>(system, max_steps));
  });
}

Status RegisterCodeInterpreterEnv(EnvRegistry& registry) {
  EnvInfo info{.name = "code_interpreter",
               .description = "a `python` tool running the agent's code in the sandbox; the reply is the answer",
               .example_config = {{"max_steps", 8}, {"wall_s", 5}}};
  return registry.Register(info, [](const json& config) -> Expected<std::unique_ptr<Env>> {
    std::string system =
        "You write Python programs. You may test code with the python tool; give the final program in a "
        "```python block.";
    int max_steps = 8;
    std::map<std::string, double> nums = {{"wall_s", 5.0}, {"memory_mb", 256.0}};
    K2_RETURN_IF_ERROR(ReadConfig("code_interpreter", config, &system, &max_steps, &nums));
    K2_ASSIGN_OR_RETURN(sandbox::Sandbox * sb, InterpreterSandbox());
    auto env = std::make_unique<CodeInterpreterEnv>(system, max_steps, sb, nums["wall_s"],
                                                    static_cast<int64_t>(nums["memory_mb"]));
    K2_RETURN_IF_ERROR(env->Init());
    return std::unique_ptr<Env>(std::move(env));
  });
}

}  // namespace k2::agents
