// Env helpers, the ToolEnv tool-call loop (validation, error messages, step limit, scorer) and the registry.
#include "agents/env.h"

#include "agents/mcp_env.h"
#include "toolgen/schema.h"

namespace k2::agents {

json StepResult::ToJson() const {
  return {{"observation", k2::ToJson(observation)}, {"reward", reward}, {"terminated", terminated},
          {"truncated", truncated}, {"info", info}};
}

json Env::OpenAITools() const {
  json out = json::array();
  for (const auto& t : Tools()) out.push_back(toolgen::ToOpenAITool(t));
  return out;
}

Status ToolEnv::SetTools(std::vector<toolgen::ToolSpec> tools) {
  K2_RETURN_IF_ERROR(toolgen::CheckUniqueNames(tools, "tools"));
  std::vector<toolgen::CompiledTool> compiled;
  std::map<std::string, size_t> by_name;
  for (size_t i = 0; i < tools.size(); ++i) {
    std::string name = tools[i].name;
    K2_ASSIGN_OR_RETURN(auto c, toolgen::CompileTool(std::move(tools[i]), "tools[" + std::to_string(i) + "]"));
    by_name[name] = compiled.size();
    compiled.push_back(std::move(c));
  }
  tools_ = std::move(compiled);
  by_name_ = std::move(by_name);
  return Status::Ok();
}

std::vector<toolgen::ToolSpec> ToolEnv::Tools() const {
  std::vector<toolgen::ToolSpec> out;
  for (const auto& t : tools_) out.push_back(t.spec);
  return out;
}

Expected<std::vector<Message>> ToolEnv::TaskMessages(const json& task, const std::string& default_system) {
  if (!task.is_object() && !task.is_null()) return InvalidArgument(std::string("task: expected an object, got ") + JsonTypeName(task));
  std::vector<Message> out;
  std::string system = default_system;
  if (task.is_object() && task.contains("system")) {
    if (!task["system"].is_string()) return InvalidArgument("task.system: expected a string");
    system = task["system"];
  }
  if (!system.empty()) out.push_back({.role = "system", .content = system});
  if (task.is_object() && task.contains("messages")) {
    K2_ASSIGN_OR_RETURN(auto ms, MessagesFromJson(task["messages"], "task.messages"));
    for (auto& m : ms) out.push_back(std::move(m));
  }
  if (task.is_object() && task.contains("prompt")) {
    if (!task["prompt"].is_string()) return InvalidArgument("task.prompt: expected a string");
    out.push_back({.role = "user", .content = task["prompt"]});
  }
  return out;
}

Expected<std::vector<Message>> ToolEnv::Reset(uint64_t seed, const json& task) {
  K2_ASSIGN_OR_RETURN(auto first, OnReset(seed, task));
  transcript_ = first;
  task_ = task;
  steps_ = 0;
  started_ = true;
  done_ = false;
  broken_.clear();
  return first;
}

Expected<StepResult> ToolEnv::Step(const Message& action) {
  if (!started_) return FailedPrecondition("step() before reset()");
  if (done_) return FailedPrecondition("step() after the episode ended; call reset()");
  if (!broken_.empty()) return FailedPrecondition("environment broken (" + broken_ + "); call reset()");
  if (action.role != "assistant")
    return InvalidArgument("action.role: expected \"assistant\", got " + json(action.role).dump());
  transcript_.push_back(action);
  ++steps_;
  StepResult r;
  r.info["step"] = steps_;
  if (action.tool_calls.empty()) {  // the final answer
    r.terminated = true;
    done_ = true;
    r.reward = OnFinish(action);
    if (scorer_) {
      auto s = scorer_(task_, transcript_);
      if (s.ok()) {
        r.info["task_reward"] = *s;
        r.reward += *s;
      } else {
        r.info["scorer_error"] = s.status().ToString();
      }
    }
    return r;
  }
  int invalid = 0, tool_errors = 0;
  for (const auto& call : action.tool_calls) {
    Message out{.role = "tool", .tool_call_id = call.id, .name = call.name};
    auto it = by_name_.find(call.name);
    if (!broken_.empty()) {
      out.content = "error: not executed: the environment broke on an earlier call in this step";
      ++invalid;
    } else if (it == by_name_.end()) {
      std::string names;
      for (auto& [n, i] : by_name_) names += (names.empty() ? "" : ", ") + n;
      out.content = "error: unknown tool " + json(call.name).dump() + "; available: " + names;
      ++invalid;
    } else if (auto args = call.ParsedArguments(); !args) {
      out.content = "error: arguments of " + call.name + " are not a JSON object: " + call.arguments.substr(0, 200);
      ++invalid;
    } else if (Status v = tools_[it->second].input->Validate(*args); !v.ok()) {
      out.content = "error: invalid arguments for " + call.name + ": " + v.message();
      ++invalid;
    } else {
      auto res = Invoke(call.name, *args);
      if (!res.ok()) {
        broken_ = res.status().ToString();
        out.content = "error: the environment failed: " + res.status().message();
        r.truncated = true;
        r.info["env_error"] = broken_;
      } else {
        out.content = res->text;
        if (res->is_error) ++tool_errors;
        const auto& out_schema = tools_[it->second].output;
        if (out_schema && res->structured && !res->is_error) {
          Status v = out_schema->Validate(*res->structured);
          if (!v.ok()) r.info["output_schema_violations"].push_back(call.name + ": " + v.message());
        }
      }
    }
    r.observation.push_back(out);
    transcript_.push_back(std::move(out));
  }
  r.info["invalid_calls"] = invalid;
  r.info["tool_errors"] = tool_errors;
  if (steps_ >= max_steps_ && !r.truncated) {
    r.truncated = true;
    r.info["truncated_by"] = "max_steps";
    done_ = true;
  }
  return r;
}

EnvRegistry& EnvRegistry::Global() {
  // Never destroyed: factories may run during static teardown. Built-in kinds are added on first use.
  static EnvRegistry* r = [] {
    auto* reg = new EnvRegistry();
    K2_CHECK(RegisterMcpEnv(*reg).ok());
    return reg;
  }();
  return *r;
}

Status EnvRegistry::Register(EnvInfo info, EnvFactory factory) {
  if (info.name.empty()) return InvalidArgument("env registry: empty environment name");
  if (!factory) return InvalidArgument("env registry: null factory for " + info.name);
  std::lock_guard<std::mutex> lock(mu_);
  std::string name = info.name;
  if (envs_.count(name)) return AlreadyExists("env registry: " + json(name).dump() + " is already registered");
  envs_.emplace(name, std::make_pair(std::move(info), std::move(factory)));
  return Status::Ok();
}

Expected<std::unique_ptr<Env>> EnvRegistry::Make(const std::string& name, const json& config) const {
  EnvFactory f;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = envs_.find(name);
    if (it == envs_.end()) {
      std::string names;
      for (auto& [n, e] : envs_) names += (names.empty() ? "" : ", ") + n;
      return NotFound("env registry: no environment " + json(name).dump() + " (registered: " + names + ")");
    }
    f = it->second.second;
  }
  auto env = f(config);
  if (!env.ok()) return env.status().Context("making environment " + name);
  return env;
}

std::vector<EnvInfo> EnvRegistry::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<EnvInfo> out;
  for (auto& [n, e] : envs_) out.push_back(e.first);
  return out;
}

bool EnvRegistry::Has(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  return envs_.count(name) > 0;
}

}  // namespace k2::agents
