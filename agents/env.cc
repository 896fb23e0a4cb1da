// Env helpers, the ToolEnv tool-call loop (validation, error messages, step limit, scorer) and the registry.
#include "agents/env.h"

#include "agents/basic_envs.h"
#include "agents/episode.h"
#include "agents/mcp_env.h"
#include "agents/synthetic_env.h"
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

Expected<std::vector<Message>> Env::ResetTask(uint64_t seed, const std::shared_ptr<const EpisodeTask>& task) {
  if (!task) return InvalidArgument("reset: null episode task");
  return Reset(seed, task->env_task);
}

Expected<std::shared_ptr<const ToolTable>> ToolTable::Compile(std::vector<toolgen::ToolSpec> tools,
                                                              const std::string& where) {
  K2_RETURN_IF_ERROR(toolgen::CheckUniqueNames(tools, where));
  auto t = std::make_shared<ToolTable>();
  for (size_t i = 0; i < tools.size(); ++i) {
    std::string name = tools[i].name;
    K2_ASSIGN_OR_RETURN(auto c, toolgen::CompileTool(std::move(tools[i]), where + "[" + std::to_string(i) + "]"));
    t->by_name[name] = t->tools.size();
    t->openai.push_back(toolgen::ToOpenAITool(c.spec));
    t->tools.push_back(std::move(c));
  }
  return std::shared_ptr<const ToolTable>(std::move(t));
}

Status ToolEnv::SetTools(std::vector<toolgen::ToolSpec> tools) {
  K2_ASSIGN_OR_RETURN(table_, ToolTable::Compile(std::move(tools), "tools"));
  return Status::Ok();
}

std::vector<toolgen::ToolSpec> ToolEnv::Tools() const {
  std::vector<toolgen::ToolSpec> out;
  for (const auto& t : table_->tools) out.push_back(t.spec);
  return out;
}

json ToolEnv::OpenAITools() const { return table_->openai; }

std::vector<toolgen::ToolSpec> ToolEnv::UserTools() const {
  std::vector<toolgen::ToolSpec> out;
  if (user_table_)
    for (const auto& t : user_table_->tools) out.push_back(t.spec);
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

void ToolEnv::Begin(const std::vector<Message>& first) {
  transcript_ = first;
  steps_ = 0;
  started_ = true;
  done_ = false;
  broken_.clear();
}

const json& ToolEnv::ScorerTask() const { return episode_task_ ? episode_task_->env_task : task_; }

Expected<std::vector<Message>> ToolEnv::OnResetTask(uint64_t seed, const std::shared_ptr<const EpisodeTask>& task) {
  return OnReset(seed, task->env_task);
}

Expected<std::vector<Message>> ToolEnv::Reset(uint64_t seed, const json& task) {
  K2_ASSIGN_OR_RETURN(auto first, OnReset(seed, task));
  Begin(first);
  task_ = task;
  episode_task_.reset();
  return first;
}

Expected<std::vector<Message>> ToolEnv::ResetTask(uint64_t seed, const std::shared_ptr<const EpisodeTask>& task) {
  if (!task) return InvalidArgument("reset: null episode task");
  K2_ASSIGN_OR_RETURN(auto first, OnResetTask(seed, task));
  Begin(first);
  task_ = nullptr;
  episode_task_ = task;
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
      auto s = scorer_(ScorerTask(), transcript_);
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
  for (const auto& call : action.tool_calls) RunCall(*table_, call, false, r, invalid, tool_errors);
  r.info["invalid_calls"] = invalid;
  r.info["tool_errors"] = tool_errors;
  if (steps_ >= max_steps_ && !r.truncated) {
    r.truncated = true;
    r.info["truncated_by"] = "max_steps";
    done_ = true;
  }
  return r;
}

void ToolEnv::RunCall(const ToolTable& table, const ToolCall& call, bool user, StepResult& r, int& invalid,
                      int& tool_errors) {
  Message out{.role = "tool", .tool_call_id = call.id, .name = call.name};
  const int invalid_before = invalid, errors_before = tool_errors;
  auto it = table.by_name.find(call.name);
  if (!broken_.empty()) {
    out.content = "error: not executed: the environment broke on an earlier call in this step";
    ++invalid;
  } else if (it == table.by_name.end()) {
    std::string names;
    for (auto& [n, i] : table.by_name) names += (names.empty() ? "" : ", ") + n;
    out.content = "error: unknown tool " + json(call.name).dump() + "; available: " + names;
    ++invalid;
  } else if (auto args = call.ParsedArguments(); !args) {
    out.content = "error: arguments of " + call.name + " are not a JSON object: " + call.arguments.substr(0, 200);
    ++invalid;
  } else if (Status v = table.tools[it->second].input->Validate(*args); !v.ok()) {
    out.content = "error: invalid arguments for " + call.name + ": " + v.message();
    ++invalid;
  } else {
    auto res = user ? InvokeUser(call.name, *args) : Invoke(call.name, *args);
    if (!res.ok()) {
      broken_ = res.status().ToString();
      out.content = "error: the environment failed: " + res.status().message();
      r.truncated = true;
      r.info["env_error"] = broken_;
    } else {
      out.content = res->text;
      if (res->is_error) ++tool_errors;
      const auto& out_schema = table.tools[it->second].output;
      if (out_schema && res->structured && !res->is_error) {
        Status v = out_schema->Validate(*res->structured);
        if (!v.ok()) r.info["output_schema_violations"].push_back(call.name + ": " + v.message());
      }
    }
  }
  // Per call: was it a valid call, and is its observation an error (episode records and judges use it).
  r.info["calls"].push_back({{"valid", invalid == invalid_before},
                             {"is_error", invalid != invalid_before || tool_errors != errors_before || r.info.contains("env_error")}});
  r.observation.push_back(out);
  transcript_.push_back(std::move(out));
}

Expected<StepResult> ToolEnv::StepUser(const std::vector<ToolCall>& calls) {
  if (!started_) return FailedPrecondition("step_user() before reset()");
  if (done_) return FailedPrecondition("step_user() after the episode ended; call reset()");
  if (!broken_.empty()) return FailedPrecondition("environment broken (" + broken_ + "); call reset()");
  if (!user_table_ || user_table_->tools.empty()) return FailedPrecondition("this environment has no user-owned tools");
  StepResult r;
  int invalid = 0, tool_errors = 0;
  for (const auto& call : calls) RunCall(*user_table_, call, true, r, invalid, tool_errors);
  r.info["invalid_calls"] = invalid;
  r.info["tool_errors"] = tool_errors;
  return r;
}

EnvRegistry& EnvRegistry::Global() {
  // Never destroyed: factories may run during static teardown. Built-in kinds are added on first use.
  static EnvRegistry* r = [] {
    auto* reg = new EnvRegistry();
    K2_CHECK(RegisterMcpEnv(*reg).ok());
    K2_CHECK(RegisterSyntheticEnv(*reg).ok());
    K2_CHECK(RegisterAnswerEnv(*reg).ok());
    K2_CHECK(RegisterCodeInterpreterEnv(*reg).ok());
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
