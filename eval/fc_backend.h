// In-tree stateful backends of multi-turn function-calling cases (BFCL multi_turn_*, ACEBench agent_*):
// classes written here after the public benchmarks' Python classes (BFCL's file system, math, messaging,
// posting, ticket, trading, travel and vehicle classes; ACEBench's phone, message, reminder, food and
// travel classes), their
// function docs, and the parser of ground-truth call strings ("mkdir(dir_name='temp')").
//
// An FcBackend is one case's world: the involved classes with their initial config. Not thread-safe (one
// case runs on one thread); copyable (the ground-truth replay runs on a copy). Calls never throw and
// never abort: a bad call (unknown function, missing argument, argument of the wrong type) returns
// {"error": "..."} and leaves the state unchanged; a class's own failures are its result (BFCL's error
// dicts, its exceptions as {"error": ...}), with the state changes the Python makes before failing.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "rewards/ast_match.h"

namespace k2::eval {

class FcBackend {
 public:
  // "GorillaFileSystem" (pwd, ls, cd, mkdir, touch, echo, cat, mv, rm; initial config {"root": {NAME:
  // {"type": "directory", "contents": {...}}}}, files {"type": "file", "content": "..."}), BFCL's
  // "MathAPI", "MessageAPI", "TwitterAPI", "TicketAPI", "TradingBot", "TravelAPI", "VehicleControlAPI"
  // (eval/fc/, configs as BFCL's _load_scenario reads them), and ACEBench's "BaseApi", "MessageApi",
  // "ReminderApi", "FoodPlatform", "Travel" (eval/fc/ace_*.cc; ACEBench's data, configs
  // {"BaseApi": {"wifi": bool, "logged_in": bool, "logged_in_users": [names]}}).
  static std::vector<std::string> KnownClasses();

  // `initial_config` is {class: config}; a class without one starts from its defaults. InvalidArgument
  // naming `where` and the class/key for an unknown class or a config of the wrong shape. A config of a
  // class not in `classes` is ignored (as BFCL ignores it).
  static Expected<FcBackend> Create(const std::vector<std::string>& classes, const json& initial_config,
                                    const std::string& where);

  // BFCL-style function docs ({"name", "description", "parameters": {"type": "dict", ...}}) of the
  // involved classes' methods, in class order then method order.
  json Functions() const;
  bool HasFunction(const std::string& name) const;
  // The method's parameters in its signature order (positional arguments of call strings map to them).
  std::vector<std::string> ParamOrder(const std::string& name) const;

  // Executes one call. Result JSON (null where the Python returns None), or {"error": "..."}.
  json Call(const std::string& name, const json& arguments);

  // Python's mutable default arguments are one object per Python process (BFCL's post_tweet `mentions`
  // list, which mention() extends in place, so every tweet posted without mentions shows the names):
  // after this call the two backends share them, as BFCL's model and ground-truth instances of one case
  // do. Copies of a backend share them too; a new backend starts with its own, empty.
  void SharePythonDefaults(const FcBackend& other) { py_defaults_ = other.py_defaults_; }

  // The compared state, {class: state}. Scratch state that the benchmarks do not compare (the file
  // system's current directory) is not part of it.
  // Attributes that BFCL's checker skips (names starting with "_": private forces, random generators)
  // are kept in the classes' state but left out of this.
  json State() const;
  const std::vector<std::string>& classes() const { return classes_; }

 private:
  std::vector<std::string> classes_;
  json state_ = json::object();
  std::vector<std::string> cwd_;  // GorillaFileSystem: path below the root directory
  std::shared_ptr<json> py_defaults_ = std::make_shared<json>(json::array());  // post_tweet's default mentions
  bool ace_ = false;              // an ACEBench class is involved: failures read as ACEBench's executor prints them
};

// Parses one Python-style call as BFCL ground truth writes it: NAME(KEY=VALUE, ...) with string ('...'
// or "..." with backslash escapes), integer, float, True/False/None, list, tuple and dict literals.
// Positional arguments get the keys "#0", "#1", ... (FcBackend::ParamOrder names them). `where`
// prefixes errors.
Expected<rewards::FunctionCall> ParsePythonCall(const std::string& text, const std::string& where);

// The first place where `got` differs from `want`, as "POINTER: got X, want Y" ("" when equal). With
// `subset`, keys absent from `want` objects are not compared (a partial expected state).
std::string FirstDifference(const json& got, const json& want, bool subset, const std::string& pointer = "");

}  // namespace k2::eval
