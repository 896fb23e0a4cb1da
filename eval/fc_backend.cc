// The in-tree stateful classes of multi-turn function-calling cases, their docs, argument checking, the
// Python call-string parser and the state comparison (see fc_backend.h).
#include "eval/fc_backend.h"

#include "eval/fc/method.h"
#include "rewards/text_util.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <set>
#include <variant>

namespace k2::eval {
namespace {

using fc::Err;
using fc::Method;
using fc::Param;
using fc::Result;

// ---- GorillaFileSystem -------------------------------------------------------------------------------

}  // namespace

json* fc::FsDir(json& state, const std::vector<std::string>& cwd) {
  json& root = state["GorillaFileSystem"]["root"];
  json* node = &root.begin().value();
  for (auto& part : cwd) node = &(*node)["contents"][part];
  return node;
}

namespace {

json* Dir(json& state, const std::vector<std::string>& cwd) { return fc::FsDir(state, cwd); }

bool ValidName(const std::string& n) { return !n.empty() && n != "." && n != ".." && n.find('/') == std::string::npos; }

// BFCL's _validate_file_or_directory_name: none of |/\?%*:"><.
bool PyValidName(const std::string& n) { return n.find_first_of("|/\\?%*:\"><") == std::string::npos; }

// BFCL's pwd joins the names from the current directory up to the root, the root's own name included.
Result Pwd(json& s, std::vector<std::string>& cwd, const json&) {
  std::string p = "/" + s["GorillaFileSystem"]["root"].begin().key();
  for (auto& c : cwd) p += "/" + c;
  return json{{"current_working_directory", p}};
}

// Names in insertion order (Python dict order), hidden ones (".x") only with a=True.
Result Ls(json& s, std::vector<std::string>& cwd, const json& a) {
  bool all = a.value("a", false);
  json names = json::array();
  for (auto& k : fc::FsNames(*Dir(s, cwd)))
    if (all || k.empty() || k[0] != '.') names.push_back(k);
  return json{{"current_directory_content", names}};
}

// One level at a time: "..", ".", "/" (the root) or the name of a directory here. The result names the
// new directory only (not its path); "cd .." answers {}.
Result Cd(json& s, std::vector<std::string>& cwd, const json& a) {
  std::string folder = a["folder"];
  while (!folder.empty() && folder.back() == '/') folder.pop_back();
  if (folder.empty()) folder = "/";
  if (folder != "." && folder != ".." && folder != "/" && folder.find('/') != std::string::npos)
    return json{{"error", "cd: " + folder + ": Unsupported path. Only one folder level at a time is supported."}};
  if (folder == "..") {
    if (cwd.empty()) return json{{"error", "Current directory is already the root. Cannot go back."}};
    cwd.pop_back();
    return json::object();
  }
  if (folder == "/") {
    cwd.clear();
    return json{{"current_working_directory", s["GorillaFileSystem"]["root"].begin().key()}};
  }
  if (folder == ".") return json{{"current_working_directory", cwd.empty() ? s["GorillaFileSystem"]["root"].begin().key() : cwd.back()}};
  json& contents = (*Dir(s, cwd))["contents"];
  auto it = contents.find(folder);
  if (it == contents.end() || (*it)["type"] != "directory") return json{{"error", "cd: '" + folder + "': No such file or directory"}};
  cwd.push_back(folder);
  return json{{"current_working_directory", folder}};
}

// mkdir / touch / echo-to-file return None in BFCL: JSON null here (its execution result reads "None").
Result Mkdir(json& s, std::vector<std::string>& cwd, const json& a) {
  std::string n = a["dir_name"];
  if (!PyValidName(n)) return json{{"error", "mkdir: cannot create directory '" + n + "': Invalid character"}};
  json& d = *Dir(s, cwd);
  if (d["contents"].contains(n)) return json{{"error", "mkdir: cannot create directory '" + n + "': File exists"}};
  fc::FsAdd(d, n, {{"type", "directory"}, {"contents", json::object()}});
  return json(nullptr);
}

Result Touch(json& s, std::vector<std::string>& cwd, const json& a) {
  std::string n = a["file_name"];
  if (!PyValidName(n)) return json{{"error", "touch: cannot touch '" + n + "': Invalid character"}};
  json& d = *Dir(s, cwd);
  if (d["contents"].contains(n)) return json{{"error", "touch: cannot touch '" + n + "': File exists"}};
  fc::FsAdd(d, n, {{"type", "file"}, {"content", ""}});
  return json(nullptr);
}

// Writes an existing file only; without a file name (or with "") the content goes to the terminal.
Result Echo(json& s, std::vector<std::string>& cwd, const json& a) {
  std::string content = a["content"];
  if (!a.contains("file_name") || a["file_name"].is_null()) return json{{"terminal_output", content}};
  std::string n = a["file_name"];
  if (!PyValidName(n)) return json{{"error", "echo: cannot write to '" + n + "': Invalid character"}};
  if (n.empty()) return json{{"terminal_output", content}};
  json& c = (*Dir(s, cwd))["contents"];
  if (!c.contains(n)) return json{{"error", "echo: cannot write to '" + n + "': No such file"}};
  // Python calls _write on whatever is there: a directory has none (an AttributeError).
  if (c[n]["type"] != "file") return Err("'Directory' object has no attribute '_write'");
  c[n]["content"] = content;
  return json(nullptr);
}

Result Cat(json& s, std::vector<std::string>& cwd, const json& a) {
  std::string n = a["file_name"];
  if (!PyValidName(n)) return json{{"error", "cat: '" + n + "': Invalid character"}};
  json& c = (*Dir(s, cwd))["contents"];
  if (!c.contains(n)) return json{{"error", "cat: '" + n + "': No such file or directory"}};
  if (c[n]["type"] != "file") return json{{"error", "cat: '" + n + "': Is a directory"}};
  return json{{"file_content", c[n]["content"]}};
}

// A moved or renamed entry goes to the end of its new directory (Python pops it and adds it again).
Result Mv(json& s, std::vector<std::string>& cwd, const json& a) {
  std::string src = a["source"], dst = a["destination"];
  json& d = *Dir(s, cwd);
  json& c = d["contents"];
  if (!c.contains(src)) return json{{"error", "mv: cannot move '" + src + "': No such file or directory"}};
  if (dst.find('/') != std::string::npos)
    return json{{"error", "mv: path not allowed in destination. Provide only a file or directory name."}};
  if (c.contains(dst)) {
    if (c[dst]["type"] != "directory") return json{{"error", "mv: cannot move '" + src + "' to '" + dst + "': Not a directory"}};
    if (c[dst]["contents"].contains(src))
      return json{{"error", "mv: cannot move '" + src + "' to '" + dst + "/" + src + "': File exists"}};
    json item = c[src];
    fc::FsRemove(d, src);
    // `mv x x` on a directory: Python moves x into itself, then drops it from here (x/x stays reachable
    // only through x, which is gone).
    if (src == dst) return json{{"result", "'" + src + "' moved to '" + dst + "/" + src + "'"}};
    fc::FsAdd(c[dst], src, std::move(item));
    return json{{"result", "'" + src + "' moved to '" + dst + "/" + src + "'"}};
  }
  json item = c[src];
  fc::FsRemove(d, src);
  fc::FsAdd(d, dst, std::move(item));
  return json{{"result", "'" + src + "' moved to '" + dst + "'"}};
}

Result Rm(json& s, std::vector<std::string>& cwd, const json& a) {
  std::string n = a["file_name"];
  json& d = *Dir(s, cwd);
  if (!d["contents"].contains(n)) return json{{"error", "rm: cannot remove '" + n + "': No such file or directory"}};
  fc::FsRemove(d, n);
  return json{{"result", "'" + n + "' removed"}};
}

std::vector<Method> CoreMethods() {
  return {
      {"GorillaFileSystem", "pwd", "Return the current working directory path.", {}, Pwd},
      {"GorillaFileSystem", "ls", "List the contents of the current directory.",
       {{"a", "boolean", "Show hidden files and directories (names starting with '.').", false}}, Ls},
      {"GorillaFileSystem", "cd", "Change the current directory (relative path; '..' goes up).",
       {{"folder", "string", "Folder to change into.", true}}, Cd},
      {"GorillaFileSystem", "mkdir", "Create a directory in the current directory.",
       {{"dir_name", "string", "Name of the new directory.", true}}, Mkdir},
      {"GorillaFileSystem", "touch", "Create an empty file in the current directory.",
       {{"file_name", "string", "Name of the new file.", true}}, Touch},
      {"GorillaFileSystem", "echo", "Write content to a file in the current directory (or to the terminal without file_name).",
       {{"content", "string", "Content to write.", true}, {"file_name", "string", "File to write (created or overwritten).", false}},
       Echo},
      {"GorillaFileSystem", "cat", "Show the content of a file in the current directory.",
       {{"file_name", "string", "File to show.", true}}, Cat},
      {"GorillaFileSystem", "mv", "Move or rename a file or directory of the current directory.",
       {{"source", "string", "Name of the file or directory to move.", true},
        {"destination", "string", "New name, or an existing directory to move into.", true}},
       Mv},
      {"GorillaFileSystem", "rm", "Remove a file or directory of the current directory.",
       {{"file_name", "string", "Name of the file or directory to remove.", true}}, Rm},
  };
}

const fc::PortedClass* Ported(const std::string& cls) {
  for (auto& c : fc::PortedClasses())
    if (cls == c.name) return &c;
  return nullptr;
}

const fc::AceClass* Ace(const std::string& cls) {
  for (auto& c : fc::AceClasses())
    if (cls == c.name) return &c;
  return nullptr;
}

const std::vector<Method>& Methods() {
  static const std::vector<Method> kMethods = [] {
    std::vector<Method> all = CoreMethods();
    for (auto& m : fc::FileSystemMoreMethods()) all.push_back(std::move(m));
    for (auto& m : fc::MathApiMethods()) all.push_back(std::move(m));
    for (auto& m : fc::MessageApiMethods()) all.push_back(std::move(m));
    for (auto& c : fc::PortedClasses())
      for (auto& m : c.methods()) all.push_back(std::move(m));
    for (auto& c : fc::AceClasses())
      for (auto& m : c.methods()) all.push_back(std::move(m));
    return all;
  }();
  return kMethods;
}

json DefaultState(const std::string& cls) {
  if (cls == "GorillaFileSystem") return {{"root", {{"workspace", {{"type", "directory"}, {"contents", json::object()}}}}}};
  if (cls == "MathAPI") return json::object();
  return fc::MessageApiDefaultState();
}

Status CheckTree(const json& node, const std::string& w) {
  if (!node.is_object() || !node.contains("type") || !node["type"].is_string())
    return InvalidArgument(w + ": expected {\"type\": \"directory\"|\"file\", ...}");
  if (node["type"] == "file") {
    if (!node.contains("content") || !node["content"].is_string()) return InvalidArgument(w + ".content: expected string");
    return Status::Ok();
  }
  if (node["type"] != "directory") return InvalidArgument(w + ".type: expected \"directory\" or \"file\"");
  if (!node.contains("contents") || !node["contents"].is_object()) return InvalidArgument(w + ".contents: expected object");
  if (node.contains("_order")) {
    const json& o = node["_order"];
    bool ok = o.is_array() && o.size() == node["contents"].size();
    for (size_t i = 0; ok && i < o.size(); ++i) ok = o[i].is_string() && node["contents"].contains(o[i].get<std::string>());
    if (!ok) return InvalidArgument(w + "._order: expected the names of contents, each once");
  }
  for (auto& [k, v] : node["contents"].items()) {
    if (!ValidName(k)) return InvalidArgument(w + ".contents: invalid name \"" + k + "\"");
    K2_RETURN_IF_ERROR(CheckTree(v, w + ".contents." + k));
  }
  return Status::Ok();
}

Status CheckConfig(const std::string& cls, const json& c, const std::string& w) {
  if (!c.is_object()) return InvalidArgument(w + ": expected object");
  if (cls == "GorillaFileSystem") {
    if (!c.contains("root") || !c["root"].is_object() || c["root"].size() != 1)
      return InvalidArgument(w + ".root: expected {NAME: {\"type\": \"directory\", \"contents\": {...}}} with one NAME (BFCL keeps "
                             "the first of several in file order, an order the tree's JSON objects do not keep)");
    const json& r = c["root"].begin().value();
    K2_RETURN_IF_ERROR(CheckTree(r, w + ".root." + c["root"].begin().key()));
    if (r["type"] != "directory") return InvalidArgument(w + ".root: expected a directory");
  } else if (cls == "MathAPI") {
    // stateless
  } else {
    if (!c["user_map"].is_object()) return InvalidArgument(w + ".user_map: expected {name: id}");
    if (!c["inbox"].is_array()) return InvalidArgument(w + ".inbox: expected [{receiver_id: message}]");
    for (size_t i = 0; i < c["inbox"].size(); ++i)
      if (!c["inbox"][i].is_object() || c["inbox"][i].empty())
        return InvalidArgument(w + ".inbox[" + std::to_string(i) + "]: expected {receiver_id: message}");
    if (!c["generated_ids"].is_array()) return InvalidArgument(w + ".generated_ids: expected array");
    for (auto& x : c["generated_ids"])
      if (!x.is_number_integer()) return InvalidArgument(w + ".generated_ids: expected integers");
    for (const char* k : {"user_count", "message_count", "random_seed"})
      if (!c[k].is_number_integer()) return InvalidArgument(w + "." + k + ": expected integer");
  }
  for (auto& [k, v] : c.items()) {
    json d = DefaultState(cls);
    if (!d.contains(k)) return InvalidArgument(w + ": unknown key \"" + k + "\"");
  }
  return Status::Ok();
}

void StripOrder(json& node) {
  if (!node.is_object()) return;
  node.erase("_order");
  for (auto& [k, v] : node.items()) StripOrder(v);
}

bool TypeOk(const json& v, const std::string& type) {
  if (type == "string") return v.is_string();
  if (type == "integer") return v.is_number_integer();
  if (type == "float") return v.is_number();
  if (type == "boolean") return v.is_boolean();
  if (type == "array") return v.is_array();
  if (type == "dict") return v.is_object();
  return true;
}

}  // namespace

const std::vector<fc::PortedClass>& fc::PortedClasses() {
  static const std::vector<PortedClass> kClasses = {
      {"TwitterAPI", LoadTwitterApi, TwitterApiMethods},         {"TicketAPI", LoadTicketApi, TicketApiMethods},
      {"TradingBot", LoadTradingBot, TradingBotMethods},         {"TravelAPI", LoadTravelApi, TravelApiMethods},
      {"VehicleControlAPI", LoadVehicleControlApi, VehicleControlApiMethods}};
  return kClasses;
}

std::vector<std::string> FcBackend::KnownClasses() {
  std::vector<std::string> out = {"GorillaFileSystem", "MathAPI", "MessageAPI"};
  for (auto& c : fc::PortedClasses()) out.push_back(c.name);
  for (auto& c : fc::AceClasses()) out.push_back(c.name);
  return out;
}

json FcBackend::State() const {
  // BFCL's state checker compares the attributes whose names do not start with "_".
  json out = json::object();
  for (auto& [cls, st] : state_.items()) {
    json& o = out[cls] = json::object();
    for (auto& [k, v] : st.items())
      if (k.empty() || k[0] != '_') o[k] = v;
    // Entry order is not compared (Python's dict equality ignores it).
    if (cls == "GorillaFileSystem" && o.contains("root")) StripOrder(o["root"]);
    // Tweets posted without mentions show the shared default list as it is now.
    if (cls == "TwitterAPI" && st.contains("_default_mentions_ids")) {
      json t = st;
      t["_default_mentions"] = *py_defaults_;
      fc::SyncDefaultMentions(t);
      o["tweets"] = t["tweets"];
    }
  }
  return out;
}

Expected<FcBackend> FcBackend::Create(const std::vector<std::string>& classes, const json& initial_config, const std::string& where) {
  FcBackend b;
  if (!initial_config.is_object()) return InvalidArgument(where + ": initial_config: expected object {class: config}");
  auto known = KnownClasses();
  for (auto& cls : classes) {
    if (std::find(known.begin(), known.end(), cls) == known.end()) {
      std::string names;
      for (auto& k : known) names += (names.empty() ? "" : ", ") + k;
      return InvalidArgument(where + ": involved class \"" + cls + "\" has no in-tree backend (known: " + names + ")");
    }
    if (b.state_.contains(cls)) return InvalidArgument(where + ": involved class \"" + cls + "\" listed twice");
    if (const fc::AceClass* a = Ace(cls)) {
      const json& own = initial_config.contains(cls) ? initial_config[cls] : json::object();
      const json& base = initial_config.contains("BaseApi") ? initial_config["BaseApi"] : json::object();
      K2_ASSIGN_OR_RETURN(json st, a->load(own, base, where + ": initial_config"));
      b.state_[cls] = std::move(st);
      b.classes_.push_back(cls);
      b.ace_ = true;
      continue;
    }
    if (const fc::PortedClass* p = Ported(cls)) {
      const json& c = initial_config.contains(cls) ? initial_config[cls] : json::object();
      if (!c.is_object()) return InvalidArgument(where + ": initial_config." + cls + ": expected object");
      K2_ASSIGN_OR_RETURN(json st, p->load(c, where + ": initial_config." + cls));
      b.state_[cls] = std::move(st);
      b.classes_.push_back(cls);
      continue;
    }
    json st = DefaultState(cls);
    if (initial_config.contains(cls)) {
      // Partial configs fill in from the defaults; the merged result must be well-formed.
      const json& c = initial_config[cls];
      if (!c.is_object()) return InvalidArgument(where + ": initial_config." + cls + ": expected object");
      // MathAPI keeps no state; BFCL's files give it values its class ignores ("precision", "numbers").
      if (cls != "MathAPI")
        for (auto& [k, v] : c.items()) st[k] = v;
      K2_RETURN_IF_ERROR(CheckConfig(cls, st, where + ": initial_config." + cls));
    }
    b.state_[cls] = std::move(st);
    b.classes_.push_back(cls);
  }
  // A config of a class that is not involved is ignored, as BFCL ignores it (a few scenarios carry one).
  return b;
}

json FcBackend::Functions() const {
  json out = json::array();
  std::set<std::string> seen;  // ACEBench's classes share turn_on_wifi / login_device: one doc each
  for (auto& cls : classes_)
    for (auto& m : Methods()) {
      if (cls != m.cls || !seen.insert(m.name).second) continue;
      json props = json::object(), req = json::array();
      for (auto& p : m.params) {
        props[p.name] = {{"type", p.type}, {"description", p.doc}};
        if (p.required) req.push_back(p.name);
      }
      out.push_back({{"name", m.name}, {"description", std::string(m.doc) + " (" + cls + ")"},
                     {"parameters", {{"type", "dict"}, {"properties", props}, {"required", req}}}});
    }
  return out;
}

std::vector<std::string> FcBackend::ParamOrder(const std::string& name) const {
  for (auto& m : Methods())
    if (name == m.name && std::find(classes_.begin(), classes_.end(), m.cls) != classes_.end()) {
      std::vector<std::string> out;
      for (auto& p : m.params) out.push_back(p.name);
      return out;
    }
  return {};
}

bool FcBackend::HasFunction(const std::string& name) const {
  for (auto& m : Methods())
    if (name == m.name && std::find(classes_.begin(), classes_.end(), m.cls) != classes_.end()) return true;
  return false;
}

json FcBackend::Call(const std::string& name, const json& args) {
  // The involved classes' methods of that name, in involved-class order: ACEBench runs a name that several
  // of its instances have (turn_on_wifi, login_device) on each of them and keeps the last result.
  std::vector<const Method*> found;
  for (auto& cls : classes_)
    for (auto& m : Methods())
      if (name == m.name && cls == m.cls) found.push_back(&m);
  // ACEBench's executor turns any exception (an unknown function, a missing or unexpected argument, a
  // KeyError inside a method) into this text, literally: its format string lacks the f prefix.
  const json ace_error = {{"error", "Error during execution: {str(e)}"}};
  if (found.empty()) return ace_ ? ace_error : json{{"error", "no function named " + name + " in this environment"}};
  json out;
  for (const Method* mp : found) {
    const Method& m = *mp;
    const bool ace = Ace(m.cls) != nullptr;
    if (!args.is_object()) return ace ? ace_error : json{{"error", name + ": arguments: expected a JSON object"}};
    // null for an optional parameter is Python's None, the default of most of them: treated as left out.
    json given = json::object();
    for (auto& [k, v] : args.items()) {
      bool optional = std::any_of(m.params.begin(), m.params.end(), [&](const Param& p) { return k == p.name && !p.required; });
      if (!(v.is_null() && optional)) given[k] = v;
    }
    for (auto& p : m.params) {
      auto it = given.find(p.name);
      if (it == given.end()) {
        if (p.required) return ace ? ace_error : json{{"error", name + ": missing required argument " + p.name}};
        continue;
      }
      // ACEBench's classes take whatever Python would pass and fail where Python would (their methods
      // raise PyError or a JSON type error, which become ace_error).
      if (ace) continue;
      // BFCL's ported classes take any number for an integer parameter and treat it as Python does (ids
      // are compared, 5.0 finds 5, 1.5 finds nothing, the value is echoed as given). For the other classes
      // an integral float works as the int.
      if (std::string(p.type) == "integer" && it->is_number_float()) {
        if (Ported(m.cls)) continue;
        if (std::trunc(it->get<double>()) == it->get<double>() && std::fabs(it->get<double>()) < 9e15)
          *it = static_cast<int64_t>(it->get<double>());
      }
      if (!TypeOk(*it, p.type)) return {{"error", name + ": " + p.name + ": expected " + p.type + ", got " + it->dump()}};
    }
    for (auto& [k, v] : given.items())
      if (std::none_of(m.params.begin(), m.params.end(), [&](const Param& p) { return k == p.name; }))
        return ace ? ace_error : json{{"error", name + ": unexpected argument " + k}};
    // The in-tree classes check their preconditions before mutating, so an error leaves the state as it
    // was; BFCL's and ACEBench's ported classes change and fail where the Python does (an error dict after
    // a change, an exception part way through). A JSON access that cannot work is Python's TypeError /
    // KeyError.
    // TwitterAPI reads and extends the process's default mentions list (SharePythonDefaults).
    const bool twitter = std::string(m.cls) == "TwitterAPI";
    if (twitter) {
      state_[m.cls]["_default_mentions"] = *py_defaults_;
      fc::SyncDefaultMentions(state_[m.cls]);
    }
    Result r = json();
    try {
      r = m.fn(state_, cwd_, given);
    } catch (const std::exception& e) {
      if (ace) return ace_error;
      r = fc::Err(name + ": " + e.what());
    }
    if (twitter) *py_defaults_ = state_[m.cls].value("_default_mentions", json::array());
    if (auto* e = std::get_if<Err>(&r)) return {{"error", e->message()}};
    out = std::get<json>(std::move(r));
  }
  return out;
}

// ---- Python call strings ---------------------------------------------------------------------------------

namespace {

class PyParser {
 public:
  PyParser(const std::string& s, std::string where) : s_(s), w_(std::move(where)) {}

  Expected<rewards::FunctionCall> Call() {
    Ws();
    size_t b = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_' || s_[i_] == '.')) ++i_;
    if (i_ == b) return Fail("expected a function name");
    rewards::FunctionCall c{s_.substr(b, i_ - b), json::object()};
    Ws();
    if (!Eat('(')) return Fail("expected '(' after " + c.name);
    Ws();
    if (!Eat(')')) {
      while (true) {
        Ws();
        size_t kb = i_;
        while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '_')) ++i_;
        std::string key = s_.substr(kb, i_ - kb);
        Ws();
        bool keyword = !key.empty() && i_ < s_.size() && s_[i_] == '=' && (i_ + 1 >= s_.size() || s_[i_ + 1] != '=');
        if (keyword) {
          ++i_;
        } else {
          // A positional argument: "#<index>", mapped to a parameter name by the caller.
          i_ = kb;
          if (!key.empty() && std::isdigit(static_cast<unsigned char>(key[0])) == 0 && key != "True" && key != "False" && key != "None")
            return Fail("expected KEY=VALUE or a literal value");
          key = "#" + std::to_string(positional_++);
        }
        K2_ASSIGN_OR_RETURN(json v, Value());
        if (c.arguments.contains(key)) return Fail("argument " + key + " given twice");
        c.arguments[key] = std::move(v);
        Ws();
        if (Eat(')')) break;
        if (!Eat(',')) return Fail("expected ',' or ')'");
      }
    }
    Ws();
    if (i_ != s_.size()) return Fail("unexpected text after the call");
    return c;
  }

 private:
  Status Fail(const std::string& what) const {
    return InvalidArgument(w_ + ": \"" + s_ + "\" at offset " + std::to_string(i_) + ": " + what);
  }
  void Ws() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool Eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  Expected<json> Seq(char close) {
    json out = json::array();
    Ws();
    if (Eat(close)) return out;
    while (true) {
      K2_ASSIGN_OR_RETURN(json v, Value());
      out.push_back(std::move(v));
      Ws();
      if (Eat(close)) return out;
      if (!Eat(',')) return Fail(std::string("expected ',' or '") + close + "'");
      Ws();
      if (Eat(close)) return out;  // trailing comma
    }
  }
  // One backslash escape of a Python string literal at s_[i_] == '\\' (i_ ends on its last character).
  Status Escape(std::string& out) {
    char e = s_[++i_];
    auto hex = [&](int n) -> Expected<uint32_t> {
      if (i_ + static_cast<size_t>(n) >= s_.size()) return Fail("truncated \\" + std::string(1, e) + " escape");
      uint32_t v = 0;
      for (int k = 1; k <= n; ++k) {
        char h = s_[i_ + static_cast<size_t>(k)];
        if (!std::isxdigit(static_cast<unsigned char>(h))) return Fail("bad \\" + std::string(1, e) + " escape");
        v = v * 16 + static_cast<uint32_t>(std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
      }
      i_ += static_cast<size_t>(n);
      return v;
    };
    uint32_t cp;
    switch (e) {
      case 'n': out += '\n'; return Status::Ok();
      case 't': out += '\t'; return Status::Ok();
      case 'r': out += '\r'; return Status::Ok();
      case 'b': out += '\b'; return Status::Ok();
      case 'f': out += '\f'; return Status::Ok();
      case 'v': out += '\v'; return Status::Ok();
      case 'a': out += '\a'; return Status::Ok();
      case '\\': case '\'': case '"': out += e; return Status::Ok();
      case '\n': return Status::Ok();  // line continuation
      case 'x': { K2_ASSIGN_OR_RETURN(cp, hex(2)); break; }
      case 'u': { K2_ASSIGN_OR_RETURN(cp, hex(4)); break; }
      case 'U': { K2_ASSIGN_OR_RETURN(cp, hex(8)); break; }
      case 'N': return Fail("\\N{...} escapes are not supported");
      default:
        if (e >= '0' && e <= '7') {
          cp = static_cast<uint32_t>(e - '0');
          for (int k = 0; k < 2 && i_ + 1 < s_.size() && s_[i_ + 1] >= '0' && s_[i_ + 1] <= '7'; ++k) cp = cp * 8 + static_cast<uint32_t>(s_[++i_] - '0');
          break;
        }
        out += '\\';  // Python keeps an unknown escape as written
        out += e;
        return Status::Ok();
    }
    if (cp > 0x10FFFF) return Fail("escape out of Unicode range");
    const char32_t c = static_cast<char32_t>(cp);
    out += rewards::EncodeUtf8(std::u32string_view(&c, 1));
    return Status::Ok();
  }

  Expected<json> Value() {
    Ws();
    if (i_ >= s_.size()) return Fail("expected a value");
    char c = s_[i_];
    if (c == '\'' || c == '"') {
      ++i_;
      std::string out;
      while (i_ < s_.size() && s_[i_] != c) {
        if (s_[i_] == '\\' && i_ + 1 < s_.size()) {
          K2_RETURN_IF_ERROR(Escape(out));
        } else {
          out += s_[i_];
        }
        ++i_;
      }
      if (!Eat(c)) return Fail("unterminated string");
      return json(out);
    }
    if (Eat('[')) return Seq(']');
    if (Eat('(')) return Seq(')');
    if (Eat('{')) {
      json out = json::object();
      Ws();
      if (Eat('}')) return out;
      while (true) {
        K2_ASSIGN_OR_RETURN(json k, Value());
        if (!k.is_string()) return Fail("dict keys must be strings");
        Ws();
        if (!Eat(':')) return Fail("expected ':'");
        K2_ASSIGN_OR_RETURN(json v, Value());
        out[k.get<std::string>()] = std::move(v);
        Ws();
        if (Eat('}')) return out;
        if (!Eat(',')) return Fail("expected ',' or '}'");
        Ws();
        if (Eat('}')) return out;
      }
    }
    for (auto [word, val] : {std::pair{"True", json(true)}, std::pair{"False", json(false)}, std::pair{"None", json(nullptr)}}) {
      std::string w = word;
      if (s_.compare(i_, w.size(), w) == 0) {
        i_ += w.size();
        return val;
      }
    }
    size_t b = i_;
    if (s_[i_] == '-' || s_[i_] == '+') ++i_;
    bool flt = false;
    while (i_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E' ||
                              ((s_[i_] == '-' || s_[i_] == '+') && (s_[i_ - 1] == 'e' || s_[i_ - 1] == 'E')))) {
      flt |= !std::isdigit(static_cast<unsigned char>(s_[i_]));
      ++i_;
    }
    std::string num = s_.substr(b, i_ - b);
    if (num.empty() || num == "-" || num == "+") return Fail("expected a value (string, number, True/False/None, list, dict)");
    try {
      size_t used = 0;
      json v = flt ? json(std::stod(num, &used)) : json(static_cast<int64_t>(std::stoll(num, &used)));
      if (used != num.size()) return Fail("bad number " + num);
      return v;
    } catch (const std::exception&) {
      return Fail("bad number " + num);
    }
  }

  const std::string& s_;
  std::string w_;
  size_t i_ = 0;
  int positional_ = 0;
};

std::string Short(const json& j) {
  std::string s = j.dump();
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

std::string Escape(const std::string& key) {
  std::string out;
  for (char c : key) out += c == '~' ? std::string("~0") : c == '/' ? std::string("~1") : std::string(1, c);
  return out;
}

}  // namespace

Expected<rewards::FunctionCall> ParsePythonCall(const std::string& text, const std::string& where) {
  return PyParser(text, where).Call();
}

std::string FirstDifference(const json& got, const json& want, bool subset, const std::string& pointer) {
  const std::string at = pointer.empty() ? "/" : pointer;
  if (want.is_object() && got.is_object()) {
    for (auto& [k, v] : want.items()) {
      auto it = got.find(k);
      if (it == got.end()) return pointer + "/" + Escape(k) + ": missing, want " + Short(v);
      std::string d = FirstDifference(*it, v, subset, pointer + "/" + Escape(k));
      if (!d.empty()) return d;
    }
    if (!subset)
      for (auto& [k, v] : got.items())
        if (!want.contains(k)) return pointer + "/" + Escape(k) + ": got " + Short(v) + ", want nothing";
    return "";
  }
  if (want.is_array() && got.is_array()) {
    if (want.size() != got.size())
      return at + ": got " + std::to_string(got.size()) + " items, want " + std::to_string(want.size()) + " (got " + Short(got) + ")";
    for (size_t i = 0; i < want.size(); ++i) {
      std::string d = FirstDifference(got[i], want[i], subset, pointer + "/" + std::to_string(i));
      if (!d.empty()) return d;
    }
    return "";
  }
  if (got == want) return "";
  return at + ": got " + Short(got) + ", want " + Short(want);
}

}  // namespace k2::eval
