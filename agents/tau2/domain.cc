// Domain loading, the per-episode State (calls, environment functions, update_db, hashes) and the
// helpers the domain tool files share (Python float formatting, the `calculate` tool, schemas).
#include "agents/tau2/domain.h"

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/hash.h"

namespace k2::agents::tau2 {

namespace detail {

void Fail(const std::string& message) { throw ToolFailure{message}; }

const json& Arg(const json& args, const char* key) {
  auto it = args.find(key);
  if (it == args.end()) Fail(std::string("missing argument ") + key);
  return *it;
}

std::string StrArg(const json& args, const char* key) {
  const json& v = Arg(args, key);
  if (!v.is_string()) Fail(std::string("argument ") + key + " must be a string");
  return v.get<std::string>();
}

double Round2(double x) {
  // Python's round(x, 2) rounds the exact binary value half-to-even, as printf's %.2f does.
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", x);
  return std::strtod(buf, nullptr);
}

std::string PyFloatRepr(double x) {
  if (std::isnan(x)) return "nan";
  if (std::isinf(x)) return x > 0 ? "inf" : "-inf";
  if (x == 0) return std::signbit(x) ? "-0.0" : "0.0";
  char buf[64];
  int p = 1;
  for (; p <= 17; ++p) {
    std::snprintf(buf, sizeof buf, "%.*e", p - 1, x);
    if (std::strtod(buf, nullptr) == x) break;
  }
  std::string s = buf;  // [-]d.ddde[+-]XX
  bool neg = s[0] == '-';
  if (neg) s = s.substr(1);
  size_t e = s.find('e');
  int exp = std::stoi(s.substr(e + 1));
  std::string digits;
  for (size_t i = 0; i < e; ++i)
    if (s[i] != '.') digits += s[i];
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
  std::string out;
  if (exp >= -5 + 1 && exp < 16) {
    if (exp >= static_cast<int>(digits.size()) - 1) {
      out = digits + std::string(exp - digits.size() + 1, '0') + ".0";
    } else if (exp >= 0) {
      out = digits.substr(0, exp + 1) + "." + digits.substr(exp + 1);
    } else {
      out = "0." + std::string(-exp - 1, '0') + digits;
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += eb;
  }
  return neg ? "-" + out : out;
}

namespace {
// A recursive-descent evaluator of the arithmetic subset `calculate` admits, with Python's operator
// precedence (** binds tighter than unary minus on its left, and is right-associative).
struct Calc {
  const std::string& s;
  size_t i = 0;
  void Skip() {
    while (i < s.size() && s[i] == ' ') ++i;
  }
  [[noreturn]] void Syntax() { Fail("invalid syntax (<string>, line 1)"); }
  double Expr() {
    double v = Term();
    for (;;) {
      Skip();
      if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
        char op = s[i++];
        double r = Term();
        v = op == '+' ? v + r : v - r;
      } else {
        return v;
      }
    }
  }
  double Term() {
    double v = Unary();
    for (;;) {
      Skip();
      if (i + 1 < s.size() && s[i] == '*' && s[i + 1] == '*') return v;  // handled in Power
      if (i < s.size() && s[i] == '*') {
        ++i;
        v *= Unary();
      } else if (i + 1 < s.size() && s[i] == '/' && s[i + 1] == '/') {
        i += 2;
        double r = Unary();
        if (r == 0) Fail("float floor division by zero");
        v = std::floor(v / r);
      } else if (i < s.size() && s[i] == '/') {
        ++i;
        double r = Unary();
        if (r == 0) Fail("division by zero");
        v /= r;
      } else {
        return v;
      }
    }
  }
  double Unary() {
    Skip();
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
      char op = s[i++];
      double v = Unary();
      return op == '-' ? -v : v;
    }
    return Power();
  }
  double Power() {
    double base = Atom();
    Skip();
    if (i + 1 < s.size() && s[i] == '*' && s[i + 1] == '*') {
      i += 2;
      double ex = Unary();
      if (base == 0 && ex < 0) Fail("0.0 cannot be raised to a negative power");
      return std::pow(base, ex);
    }
    return base;
  }
  double Atom() {
    Skip();
    if (i < s.size() && s[i] == '(') {
      ++i;
      double v = Expr();
      Skip();
      if (i >= s.size() || s[i] != ')') Syntax();
      ++i;
      return v;
    }
    size_t start = i;
    bool dot = false, digit = false;
    while (i < s.size() && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.')) {
      if (s[i] == '.') {
        if (dot) Syntax();
        dot = true;
      } else {
        digit = true;
      }
      ++i;
    }
    if (!digit) Syntax();
    return std::strtod(s.substr(start, i - start).c_str(), nullptr);
  }
};
}  // namespace

json Calculate(const std::string& expression) {
  for (char c : expression)
    if (std::string_view("0123456789+-*/(). ").find(c) == std::string_view::npos) Fail("Invalid characters in expression");
  Calc c{expression};
  double v = c.Expr();
  c.Skip();
  if (c.i != expression.size()) c.Syntax();
  return PyFloatRepr(Round2(v));
}

json Params(std::initializer_list<std::pair<const char*, json>> props, std::vector<std::string> required) {
  json p = json::object();
  for (auto& [k, v] : props) p[k] = v;
  return json{{"type", "object"}, {"properties", p}, {"required", required}};
}
json StrProp(const std::string& d) { return {{"type", "string"}, {"description", d}}; }
json IntProp(const std::string& d) { return {{"type", "integer"}, {"description", d}}; }
json NumProp(const std::string& d) { return {{"type", "number"}, {"description", d}}; }
json StrListProp(const std::string& d) { return {{"type", "array"}, {"items", {{"type", "string"}}}, {"description", d}}; }
json EnumProp(const std::string& d, std::vector<std::string> values) {
  return {{"type", "string"}, {"enum", values}, {"description", d}};
}

}  // namespace detail

const ToolDef* Domain::FindTool(const std::string& n, bool user) const {
  for (auto& t : user ? user_tools : tools)
    if (t.name == n) return &t;
  return nullptr;
}

std::vector<toolgen::ToolSpec> Domain::ToolSpecs(bool user) const {
  std::vector<toolgen::ToolSpec> out;
  for (auto& t : user ? user_tools : tools) {
    toolgen::ToolSpec s;
    s.name = t.name;
    s.description = t.description;
    s.input_schema = t.parameters;
    out.push_back(std::move(s));
  }
  return out;
}

namespace {

std::string Shown(const json& v) { return v.is_string() ? v.get<std::string>() : v.dump(); }

// Deep merge (τ²'s update_pydantic_model_with_dict): objects merge key by key, anything else replaces.
void Merge(json& into, const json& update) {
  if (!into.is_object() || !update.is_object()) {
    into = update;
    return;
  }
  for (auto& [k, v] : update.items()) {
    if (into.contains(k) && into[k].is_object() && v.is_object()) Merge(into[k], v);
    else into[k] = v;
  }
}

}  // namespace

CallResult State::Call(const std::string& requestor, const std::string& name, const json& args, bool sync) {
  const ToolDef* t = domain->FindTool(name, requestor == "user");
  if (!t) return {"Error: Tool '" + name + "' not found.", true};
  try {
    json out = t->fn(*this, args);
    if (sync && domain->sync) domain->sync(*this);
    return {Shown(out), false};
  } catch (const ToolFailure& f) {
    return {"Error: " + f.message, true};
  } catch (const json::exception& e) {
    // A value of the wrong JSON type inside a valid schema (a tool reading a field the DB lacks).
    return {std::string("Error: ") + e.what(), true};
  }
}

Expected<json> State::RunFunction(const std::string& env_type, const std::string& name, const json& args) {
  const auto& fns = env_type == "user" ? domain->user_functions : domain->agent_functions;
  auto it = fns.find(name);
  if (it == fns.end()) return NotFound("function " + name + " not found in " + env_type + " tools of domain " + domain->name);
  try {
    json out = it->second(*this, args);
    if (domain->sync) domain->sync(*this);
    return out;
  } catch (const ToolFailure& f) {
    return InvalidArgument(name + ": " + f.message);
  } catch (const json::exception& e) {
    return InvalidArgument(name + ": " + e.what());
  }
}

Status State::Sync() {
  if (!domain->sync) return Status::Ok();
  try {
    domain->sync(*this);
  } catch (const ToolFailure& f) {
    return InvalidArgument("sync of domain " + domain->name + ": " + f.message);
  } catch (const json::exception& e) {
    return InvalidArgument("sync of domain " + domain->name + ": " + e.what());
  }
  return Status::Ok();
}

void State::UpdateDb(const json& update, bool user) { Merge(user ? user_db : db, update); }

// Canonical JSON (sorted keys). Numbers keep their JSON type: every number a tool stores comes from
// typed code (airline amounts as integers, retail money as doubles) on both the gold and the predicted
// side, as τ²'s typed models make them.
std::string State::AgentHash() const { return Sha256Hex(CanonicalJson(db)); }

std::string State::UserHash() const {
  if (user_db.is_null()) return "";
  return Sha256Hex(CanonicalJson(user_db));
}

bool State::IsWrite(const std::string& name, const std::string& requestor) const {
  const ToolDef* t = domain->FindTool(name, requestor == "user");
  return t && t->write;
}

std::vector<std::string> DomainNames() { return {"airline", "retail", "mock", "telecom"}; }

Expected<std::shared_ptr<const Domain>> LoadDomain(const std::string& name, const std::string& dir) {
  namespace fs = std::filesystem;
  auto d = std::make_shared<Domain>();
  d->name = name;
  d->data_dir = dir;
  auto file = [&](const std::string& f) { return (fs::path(dir) / f).string(); };
  auto load_json_db = [&](const std::string& f) -> Expected<json> {
    K2_ASSIGN_OR_RETURN(json j, ReadJsonFile(file(f)));
    if (!j.is_object()) return InvalidArgument(file(f) + ": expected a JSON object (the domain database)");
    return j;
  };
  if (name == "retail" || name == "airline" || name == "mock") {
    K2_ASSIGN_OR_RETURN(d->db, load_json_db("db.json"));
    K2_ASSIGN_OR_RETURN(d->policy, ReadFile(file("policy.md")));
    if (name == "mock") {
      K2_ASSIGN_OR_RETURN(d->user_db, load_json_db("user_db.json"));
    }
  } else if (name == "telecom") {
    K2_RETURN_IF_ERROR(detail::LoadTelecom(*d, dir));
  } else {
    std::string known;
    for (auto& n : DomainNames()) known += (known.empty() ? "" : ", ") + n;
    return InvalidArgument("unknown τ² domain \"" + name + "\" (this build implements: " + known + ")");
  }
  if (name == "retail") detail::AddRetail(*d);
  if (name == "airline") detail::AddAirline(*d);
  if (name == "mock") detail::AddMock(*d);
  // Every tool is also an environment function of its side (τ²'s getattr on the toolkit).
  for (auto& t : d->tools) d->agent_functions.emplace(t.name, t.fn);
  for (auto& t : d->user_tools) d->user_functions.emplace(t.name, t.fn);
  return std::shared_ptr<const Domain>(std::move(d));
}

}  // namespace k2::agents::tau2
