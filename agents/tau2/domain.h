// τ²-bench domains run natively: a Domain (policy, initial agent/user databases, the agent's and the
// user's tools, the non-tool environment functions that tasks name) and a State (one episode's
// databases) that executes calls with τ²-bench's semantics and error texts ("Error: <message>").
//
// Thread safety: a Domain is immutable and shared by every episode; a State belongs to one thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "toolgen/tool_spec.h"

namespace k2::agents::tau2 {

// What a τ² tool raises (its ValueError): the message is shown to the model as "Error: <message>".
struct ToolFailure {
  std::string message;
};

struct State;
// A tool or environment function: reads/changes the state, returns τ²'s return value as JSON (a JSON
// string is shown verbatim, anything else as compact JSON). Failures throw ToolFailure, which never
// leaves State::Call / State::RunFunction.
using Fn = std::function<json(State& s, const json& args)>;

struct ToolDef {
  std::string name;
  std::string description;
  json parameters;     // JSON Schema of the arguments object
  bool write = false;  // τ²'s mutates_state (ToolType.WRITE): only these are re-run when a trajectory is replayed
  Fn fn;
};

struct Domain {
  std::string name;      // airline, retail, telecom, mock
  std::string data_dir;  // the folder the files were read from
  std::string policy;    // the agent's policy document
  json db;               // initial agent database
  json user_db;          // initial user database (null: the domain has no user side)
  std::vector<ToolDef> tools, user_tools;
  // Environment functions by side ("assistant"/"user") and name: every tool plus the helpers tasks call
  // in initialization_actions and env_assertions (assert_*, set_*, ...).
  std::map<std::string, Fn> agent_functions, user_functions;
  // τ²'s Environment.sync_tools: brings the user's surroundings in line with the agent database after
  // every tool response and environment function (telecom: line status, roaming, data usage, payment
  // requests). Empty for domains without one. Throws ToolFailure as a tool does.
  std::function<void(State& s)> sync;

  const ToolDef* FindTool(const std::string& name, bool user) const;
  std::vector<toolgen::ToolSpec> ToolSpecs(bool user) const;
};

// Loads a domain from τ²-bench's data folder for it (`dir` = <checkout>/data/tau2/domains/<name>):
// airline, retail, mock (db.json [+ user_db.json], policy.md) and telecom (db.toml, user_db.toml,
// main_policy.md + tech_support_manual.md). Errors name the file and what is wrong.
Expected<std::shared_ptr<const Domain>> LoadDomain(const std::string& name, const std::string& dir);
// The domain names this build implements.
std::vector<std::string> DomainNames();

struct CallResult {
  std::string content;  // what the model sees
  bool error = false;
};

// One episode's mutable world.
struct State {
  std::shared_ptr<const Domain> domain;
  json db, user_db;

  explicit State(std::shared_ptr<const Domain> d) : domain(d), db(d->db), user_db(d->user_db) {}
  // A state holding the given databases (an episode's final state read back).
  State(std::shared_ptr<const Domain> d, json agent_db, json user_db_)
      : domain(std::move(d)), db(std::move(agent_db)), user_db(std::move(user_db_)) {}
  // A tool call by `requestor` ("assistant" or "user"): τ²'s Environment.get_response (the domain's
  // sync runs after a call that succeeded). `sync` false is τ²'s make_tool_call, which the evaluator's
  // gold replay uses (no sync). An unknown tool is an error result, not a Status.
  CallResult Call(const std::string& requestor, const std::string& name, const json& args, bool sync = true);
  // τ²'s run_env_function_call: any environment function of that side. Error: unknown function or the
  // function failed (the message is τ²'s).
  Expected<json> RunFunction(const std::string& env_type, const std::string& name, const json& args);
  // τ²'s sync_tools (no-op for domains without one). Error: the sync failed (a broken scenario).
  Status Sync();
  // τ²'s update_db: `update` deep-merged into the agent (or user) database.
  void UpdateDb(const json& update, bool user);
  // SHA-256 of the canonical database JSON; "" when that side has no database (τ²'s None).
  std::string AgentHash() const;
  std::string UserHash() const;
  bool IsWrite(const std::string& name, const std::string& requestor) const;
};

// Helpers the tool files share.
namespace detail {
[[noreturn]] void Fail(const std::string& message);
// Argument accessors (after schema validation these only fail on a schema/tool mismatch).
const json& Arg(const json& args, const char* key);
std::string StrArg(const json& args, const char* key);
// Python's str(round(float(x), 2)) and repr of a float (shortest round-trip, ".0" for integral values).
double Round2(double x);
std::string PyFloatRepr(double x);
// τ²'s `calculate` tool: + - * / ( ) . digits and spaces; Python float semantics.
json Calculate(const std::string& expression);
// Builders for parameter schemas.
json Params(std::initializer_list<std::pair<const char*, json>> props, std::vector<std::string> required);
json StrProp(const std::string& description);
json IntProp(const std::string& description);
json NumProp(const std::string& description);
json StrListProp(const std::string& description);
json EnumProp(const std::string& description, std::vector<std::string> values);

void AddRetail(Domain& d);
void AddAirline(Domain& d);
void AddMock(Domain& d);
// Telecom: the databases read from TOML (`dir`), the agent's tools, the phone the user controls, sync.
Status LoadTelecom(Domain& d, const std::string& dir);
}  // namespace detail

}  // namespace k2::agents::tau2
