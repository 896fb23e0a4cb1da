// The dual-control telecom domain: tool schemas (agent and user side), their executor over the shared
// state, the system prompt and the seeded task generator whose gold plans mix agent and user actions.
#include "agents/dual_control.h"

#include <cstdio>

#include "core/rng.h"
#include "toolgen/synth/database.h"

namespace k2::agents {

namespace {

json ObjectSchema(json properties, std::vector<std::string> required) {
  return {{"type", "object"}, {"properties", std::move(properties)}, {"required", required},
          {"additionalProperties", false}};
}

toolgen::ToolSpec Spec(const std::string& name, const std::string& description, json schema, bool read_only) {
  toolgen::ToolSpec s;
  s.name = name;
  s.description = description;
  s.input_schema = std::move(schema);
  s.annotations = {{"readOnlyHint", read_only}};
  s.provenance = std::string("synthetic:") + kDualControlDomain;
  return s;
}

std::shared_ptr<const ToolTable> CompileOrDie(std::vector<toolgen::ToolSpec> specs, const char* where) {
  auto t = ToolTable::Compile(std::move(specs), where);
  K2_CHECK(t.ok()) << t.status().ToString();  // fixed, tested schemas: a failure is a bug here
  return *t;
}

ToolOutcome Ok(const json& v) { return {CanonicalJson(v), v, false}; }
ToolOutcome Err(const std::string& m) { return {"error: " + m, std::nullopt, true}; }

}  // namespace

bool DualControlConnected(const json& db) {
  if (!db.is_object() || !db.contains("device") || !db.contains("lines") || !db.contains("customers")) return false;
  const json& d = db["device"];
  if (d.value("airplane_mode", true) || !d.value("mobile_data", false)) return false;
  // The device's line: the only customer's line (one customer per task).
  for (const auto& [id, c] : db["customers"].items()) {
    const std::string line = c.value("line_id", "");
    if (!db["lines"].contains(line)) return false;
    const json& l = db["lines"][line];
    if (l.value("status", "") != "active") return false;
    if (d.value("location", "home") == "abroad" && !(l.value("roaming_enabled", false) && d.value("roaming", false)))
      return false;
    return true;
  }
  return false;
}

std::shared_ptr<const ToolTable> DualControlAgentTools() {
  static const std::shared_ptr<const ToolTable> t = [] {
    const json phone = {{"phone", {{"type", "string"}, {"description", "the customer's phone number"}}}};
    const json line = {{"line_id", {{"type", "string"}, {"description", "line id, e.g. L-2001"}}}};
    return CompileOrDie(
        {Spec("find_customer_by_phone", "Look up a customer by phone number.", ObjectSchema(phone, {"phone"}), true),
         Spec("get_line_details", "Status, balance owed and roaming setting of a line.", ObjectSchema(line, {"line_id"}), true),
         Spec("check_network_status",
              "Whether the customer's device is registered on the network (the network cannot see the phone's "
              "settings; ask the user to check them).",
              ObjectSchema(line, {"line_id"}), true),
         Spec("resume_line", "Resume a suspended line.", ObjectSchema(line, {"line_id"}), false),
         Spec("enable_roaming", "Allow roaming on a line.", ObjectSchema(line, {"line_id"}), false)},
        "dual-control agent tools");
  }();
  return t;
}

std::shared_ptr<const ToolTable> DualControlUserTools() {
  static const std::shared_ptr<const ToolTable> t = [] {
    return CompileOrDie({Spec("check_status_bar", "What the phone's status bar shows.", ObjectSchema(json::object(), {}), true),
                         Spec("toggle_airplane_mode", "Switch airplane mode on/off.", ObjectSchema(json::object(), {}), false),
                         Spec("toggle_mobile_data", "Switch mobile data on/off.", ObjectSchema(json::object(), {}), false),
                         Spec("toggle_roaming", "Switch data roaming on/off.", ObjectSchema(json::object(), {}), false)},
                        "dual-control user tools");
  }();
  return t;
}

ToolOutcome DualControlCall(json& db, bool user, const std::string& tool, const json& args) {
  if (!db.is_object() || !db.contains("device")) return Err("no episode state");
  json& dev = db["device"];
  if (user) {
    if (tool == "check_status_bar") {
      return Ok({{"airplane_mode", dev["airplane_mode"]}, {"mobile_data", dev["mobile_data"]},
                 {"roaming", dev["roaming"]}, {"signal", DualControlConnected(db) ? "4G" : "no service"}});
    }
    for (const char* key : {"airplane_mode", "mobile_data", "roaming"}) {
      if (tool == std::string("toggle_") + key) {
        dev[key] = !dev[key].get<bool>();
        return Ok({{key, dev[key]}});
      }
    }
    return Err("unknown user tool " + tool);
  }
  if (tool == "find_customer_by_phone") {
    const std::string phone = args.value("phone", "");
    for (const auto& [id, c] : db["customers"].items())
      if (c.value("phone", "") == phone) {
        json r = c;
        r["customer_id"] = id;
        return Ok(r);
      }
    return Err("not_found: no customer with phone " + phone);
  }
  const std::string line_id = args.value("line_id", "");
  if (!db["lines"].contains(line_id)) return Err("not_found: no line " + line_id);
  json& line = db["lines"][line_id];
  if (tool == "get_line_details") {
    json r = line;
    r["line_id"] = line_id;
    return Ok(r);
  }
  if (tool == "check_network_status") {
    return Ok({{"line_id", line_id}, {"line_status", line["status"]},
               {"device_registered", DualControlConnected(db)}});
  }
  if (tool == "resume_line") {
    if (line["status"] == "active") return Err("conflict: line " + line_id + " is already active");
    line["status"] = "active";
    return Ok({{"line_id", line_id}, {"status", "active"}});
  }
  if (tool == "enable_roaming") {
    line["roaming_enabled"] = true;
    return Ok({{"line_id", line_id}, {"roaming_enabled", true}});
  }
  return Err("unknown tool " + tool);
}

std::string DualControlSystemPrompt(const json& db) {
  std::string p =
      "You are the technical support agent of Nimbus Mobile (telecom). Help the user get mobile service back. "
      "You can see and change the account (lines, roaming, suspensions) with your tools. You CANNOT see or "
      "change the user's phone: ask the user to check or change its settings (airplane mode, mobile data, "
      "roaming) with the tools on their side.";
  if (db.is_object() && db.contains("today") && db["today"].is_string()) p += "\nToday is " + db["today"].get<std::string>() + ".";
  p += "\n\nRules:\n- Identify the customer by phone number before looking at a line.\n- Never resume a suspended "
       "line while a balance is owed; tell the user the amount owed instead.\n- Enable roaming only for a "
       "customer who is abroad.";
  return p;
}

std::vector<toolgen::synth::Task> GenerateDualControlTasks(uint64_t seed, int count) {
  static const char* kFirst[] = {"Ana", "Bo", "Chen", "Dara", "Eli", "Farah", "Goran", "Hana", "Ivo", "Jun"};
  static const char* kLast[] = {"Silva", "Berg", "Okafor", "Novak", "Haddad", "Kim", "Moreau", "Rossi"};
  std::vector<toolgen::synth::Task> out;
  for (int i = 0; i < count; ++i) {
    Rng rng = Rng(seed).Fork(static_cast<uint64_t>(i));
    toolgen::synth::Task t;
    char id[32];
    std::snprintf(id, sizeof id, "dual-%04d", i);
    t.id = id;
    t.domain = kDualControlDomain;
    const std::string name = std::string(kFirst[rng.Below(10)]) + " " + kLast[rng.Below(8)];
    char phone[32], cust[16], line[16];
    std::snprintf(phone, sizeof phone, "+1-555-%04d", static_cast<int>(rng.Range(100, 9999)));
    std::snprintf(cust, sizeof cust, "C-%04d", static_cast<int>(rng.Range(1000, 9999)));
    std::snprintf(line, sizeof line, "L-%04d", static_cast<int>(rng.Range(1000, 9999)));
    // Faults: at least one; a balance-owed suspension is a refusal and is not combined with others.
    bool airplane = rng.Bernoulli(0.5), data_off = rng.Bernoulli(0.4), abroad = rng.Bernoulli(0.3);
    const int susp = static_cast<int>(rng.Below(4));  // 0,1: none; 2: suspended, nothing owed; 3: balance owed
    const bool owed = susp == 3;
    if (owed) airplane = data_off = abroad = false;
    if (!airplane && !data_off && !abroad && susp < 2) airplane = true;
    const double balance = owed ? static_cast<double>(rng.Range(1000, 9999)) / 100.0 : 0.0;
    t.initial_db = {{"today", "2025-06-0" + std::to_string(1 + rng.Below(9))},
                    {"customers", {{cust, {{"name", name}, {"phone", phone}, {"email", "user" + std::string(cust + 2) + "@example.com"},
                                           {"line_id", line}}}}},
                    {"lines", {{line, {{"status", susp >= 2 ? "suspended" : "active"}, {"balance", balance},
                                       {"roaming_enabled", false}}}}},
                    {"device", {{"airplane_mode", airplane}, {"mobile_data", !data_off}, {"roaming", false},
                                {"location", abroad ? "abroad" : "home"}}}};
    auto act = [&](const std::string& requestor, const std::string& tool, json a) {
      toolgen::synth::Action x;
      x.action_id = t.id + "-" + std::to_string(t.actions.size());
      x.requestor = requestor;
      x.name = tool;
      x.arguments = std::move(a);
      t.actions.push_back(std::move(x));
    };
    act("assistant", "find_customer_by_phone", {{"phone", phone}});
    act("assistant", "get_line_details", {{"line_id", line}});
    if (susp == 2) act("assistant", "resume_line", {{"line_id", line}}), t.scenarios.push_back("resume_line");
    if (abroad) {
      act("assistant", "enable_roaming", {{"line_id", line}});
      act("user", "toggle_roaming", json::object());
      t.scenarios.push_back("roaming");
    }
    if (airplane) act("user", "toggle_airplane_mode", json::object()), t.scenarios.push_back("airplane_mode");
    if (data_off) act("user", "toggle_mobile_data", json::object()), t.scenarios.push_back("mobile_data");
    act("assistant", "check_network_status", {{"line_id", line}});
    if (owed) {
      toolgen::synth::Action f;
      f.action_id = t.id + "-forbidden";
      f.name = "resume_line";
      f.arguments = {{"line_id", line}};
      f.after_actions = 2;
      t.forbidden.push_back(std::move(f));
      char amount[32];
      std::snprintf(amount, sizeof amount, "%.2f", balance);
      t.communicate_info = {amount};
      t.refusal = true;
      t.scenarios.push_back("refuse_resume");
      t.relevant_policies = {"Never resume a suspended line while a balance is owed; tell the user the amount owed instead."};
    } else {
      t.communicate_info = {"service is restored"};
    }
    t.purpose = "Dual control: restore mobile service; the user changes settings on their own phone.";
    t.persona = "You are " + name + ", a customer of Nimbus Mobile; you follow instructions patiently.";
    t.reason_for_call = abroad ? "You are travelling abroad and your phone has no mobile service."
                               : "Your phone has no mobile service.";
    if (owed) t.reason_for_call += " You want your suspended line resumed.";
    t.known_info = std::string("Your phone number is ") + phone + ".";
    t.task_instructions = "When the agent asks you to check or change something on your phone, do it with your "
                          "tools and say what you did.";
    json db = t.initial_db;
    for (const auto& a : t.actions) {
      ToolOutcome o = DualControlCall(db, a.requestor == "user", a.name, a.arguments);
      K2_CHECK(!o.is_error) << "dual-control task " << t.id << ": gold action " << a.name << " failed: " << o.text;
      t.steps += a.name != "find_customer_by_phone" && a.name != "get_line_details" && a.name != "check_network_status";
    }
    t.expected_hash = toolgen::synth::StateHash(db);
    t.difficulty = static_cast<int>(t.actions.size()) - 1 + (owed ? 2 : 0);
    t.nl_assertions = {owed ? "The agent refuses to resume the line and states the amount owed."
                            : "The agent has the user fix the phone's settings and confirms that service is restored."};
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace k2::agents
