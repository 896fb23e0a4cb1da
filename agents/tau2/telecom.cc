// The telecom domain's agent side: its TOML databases read into JSON (with τ²'s model defaults), the
// agent's tools (customers, lines, bills, roaming, data refuelling, payment requests), the set-up and
// assertion functions tasks name, and τ²'s sync of the user's surroundings with the agent database.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <toml++/toml.h>

#include "agents/tau2/domain.h"
#include "agents/tau2/telecom.h"

namespace k2::agents::tau2::detail {

namespace {

namespace chr = std::chrono;

// τ²'s telecom clock: today is 2025-02-25 (EST).
constexpr chr::year_month_day kToday{chr::year{2025}, chr::month{2}, chr::day{25}};

std::string Iso(chr::year_month_day d) {
  char b[16];
  std::snprintf(b, sizeof b, "%04d-%02u-%02u", static_cast<int>(d.year()), static_cast<unsigned>(d.month()),
                static_cast<unsigned>(d.day()));
  return b;
}
chr::year_month_day FirstOfMonth(chr::year_month_day d) { return d.year() / d.month() / chr::day{1}; }
chr::year_month_day AddDays(chr::year_month_day d, int n) { return chr::year_month_day{chr::sys_days{d} + chr::days{n}}; }

json TomlToJson(const toml::node& n) {
  if (auto t = n.as_table()) {
    json o = json::object();
    for (auto& [k, v] : *t) o[std::string(k.str())] = TomlToJson(v);
    return o;
  }
  if (auto a = n.as_array()) {
    json arr = json::array();
    for (auto& v : *a) arr.push_back(TomlToJson(v));
    return arr;
  }
  if (auto s = n.as_string()) return s->get();
  if (auto i = n.as_integer()) return i->get();
  if (auto f = n.as_floating_point()) return f->get();
  if (auto b = n.as_boolean()) return b->get();
  // Dates: τ²'s files quote them; a bare TOML date becomes its ISO text (times are not used).
  if (auto d = n.as_date()) {
    const toml::date& v = d->get();
    char b[16];
    std::snprintf(b, sizeof b, "%04u-%02u-%02u", static_cast<unsigned>(v.year), static_cast<unsigned>(v.month),
                  static_cast<unsigned>(v.day));
    return std::string(b);
  }
  return nullptr;
}

json& Customer(State& s, const std::string& id) {
  for (auto& c : s.db["customers"])
    if (c["customer_id"] == id) return c;
  Fail("Customer with ID " + id + " not found");
}
json& LineById(State& s, const std::string& id) {
  for (auto& l : s.db["lines"])
    if (l["line_id"] == id) return l;
  Fail("Line with ID " + id + " not found");
}
json& LineByPhone(State& s, const std::string& phone) {
  for (auto& l : s.db["lines"])
    if (l["phone_number"] == phone) return l;
  Fail("Line with phone number " + phone + " not found");
}
json& Plan(State& s, const std::string& id) {
  for (auto& p : s.db["plans"])
    if (p["plan_id"] == id) return p;
  Fail("Plan with ID " + id + " not found");
}
json& Device(State& s, const std::string& id) {
  for (auto& d : s.db["devices"])
    if (d["device_id"] == id) return d;
  Fail("Device with ID " + id + " not found");
}
json& Bill(State& s, const std::string& id) {
  for (auto& b : s.db["bills"])
    if (b["bill_id"] == id) return b;
  Fail("Bill with ID " + id + " not found");
}
json& CustomerByPhone(State& s, const std::string& phone) {
  for (auto& c : s.db["customers"]) {
    if (c["phone_number"] == phone) return c;
    for (auto& lid : c["line_ids"])
      if (LineById(s, lid)["phone_number"] == phone) return c;
  }
  Fail("Customer with phone number " + phone + " not found");
}
json& TargetLine(State& s, const json& a) {
  std::string cid = StrArg(a, "customer_id"), lid = StrArg(a, "line_id");
  json& c = Customer(s, cid);
  bool owns = false;
  for (auto& x : c["line_ids"]) owns = owns || x == lid;
  if (!owns) Fail("Line " + lid + " not found for customer " + cid);
  return LineById(s, lid);
}
std::vector<json*> BillsAwaitingPayment(State& s, const json& customer) {
  std::vector<json*> out;
  for (auto& bid : customer["bill_ids"]) {
    json& b = Bill(s, bid);
    if (b["status"] == "Awaiting Payment") out.push_back(&b);
  }
  return out;
}

double NumArg(const json& a, const char* k) {
  const json& v = Arg(a, k);
  if (!v.is_number()) Fail(std::string("argument ") + k + " must be a number");
  return v.get<double>();
}
// Python's str() of the number as given (an int stays an int).
std::string PyNum(const json& v) { return v.is_number_integer() ? std::to_string(v.get<int64_t>()) : PyFloatRepr(v.get<double>()); }
std::string Money2(double x) {
  char b[64];
  std::snprintf(b, sizeof b, "%.2f", x);
  return b;
}

// τ²'s _apply_one_time_charge: a line item on the customer's draft bill (one is made for next month when
// there is none).
void ApplyOneTimeCharge(State& s, const std::string& customer_id, double amount, const std::string& description) {
  json& c = Customer(s, customer_id);
  json* draft = nullptr;
  for (auto& bid : c["bill_ids"]) {
    json& b = Bill(s, bid);
    if (b["status"] == "Draft") {
      draft = &b;
      break;
    }
  }
  if (!draft) {
    auto next = FirstOfMonth(AddDays(FirstOfMonth(kToday), 32));
    auto after = FirstOfMonth(AddDays(next, 32));
    // τ² names the new bill with random hex digits; a fixed function of the customer and its bill count
    // keeps replays comparable (τ²'s own DB hashes could never match here).
    char id[16];
    std::snprintf(id, sizeof id, "B%08zx", std::hash<std::string>{}(customer_id + "/" + std::to_string(c["bill_ids"].size())) & 0xffffffffu);
    json b = {{"bill_id", id},        {"customer_id", customer_id},    {"period_start", Iso(next)},
              {"period_end", Iso(AddDays(after, -1))}, {"issue_date", Iso(next)}, {"total_due", 0.0},
              {"due_date", Iso(AddDays(next, 14))},    {"line_items", json::array()}, {"status", "Draft"}};
    s.db["bills"].push_back(b);
    c["bill_ids"].push_back(id);
    draft = &s.db["bills"].back();
  }
  (*draft)["line_items"].push_back(
      {{"description", description}, {"amount", amount}, {"date", Iso(kToday)}, {"item_type", amount < 0 ? "Credit" : "Charge"}});
  (*draft)["total_due"] = (*draft)["total_due"].get<double>() + amount;
}

json RefuelData(State& s, const json& a) {
  json& line = TargetLine(s, a);
  const json& gb = Arg(a, "gb_amount");
  double amount = NumArg(a, "gb_amount");
  if (amount <= 0) Fail("Refuel amount must be positive");
  json& plan = Plan(s, line["plan_id"]);
  double price = plan["data_refueling_price_per_gb"].get<double>();
  double charge = amount * price;
  line["data_refueling_gb"] = line["data_refueling_gb"].get<double>() + amount;
  ApplyOneTimeCharge(s, StrArg(a, "customer_id"), charge,
                     "Data refueling: " + PyNum(gb) + " GB at $" + PyFloatRepr(price) + "/GB");
  return {{"message", "Successfully added " + PyNum(gb) + " GB of data for line " + StrArg(a, "line_id") + " for $" + Money2(charge)},
          {"new_data_refueling_gb", line["data_refueling_gb"]},
          {"charge", charge}};
}

json SuspendForOverdueBill(State& s, const json& a) {
  json& line = LineById(s, StrArg(a, "line_id"));
  if (line["status"] != "Active") Fail("Line must be active to suspend for unpaid bill");
  double amount = Plan(s, line["plan_id"])["price_per_month"].get<double>();
  if (amount <= 0) Fail("Amount must be positive for overdue bill");
  std::string cid = StrArg(a, "customer_id"), bid = StrArg(a, "new_bill_id");
  json& c = Customer(s, cid);
  for (auto& b : c["bill_ids"])
    if (Bill(s, b)["status"] == "Overdue") Fail("Customer already has an overdue bill");
  auto last_day = AddDays(FirstOfMonth(kToday), -1);
  auto first_day = FirstOfMonth(last_day);
  json bill = {{"bill_id", bid},
               {"customer_id", cid},
               {"period_start", Iso(first_day)},
               {"period_end", Iso(last_day)},
               {"issue_date", Iso(first_day)},
               {"total_due", amount},
               {"due_date", Iso(AddDays(first_day, 14))},
               {"line_items", json::array({{{"description", "Charge for line " + line["line_id"].get<std::string>()},
                                            {"amount", amount},
                                            {"date", Iso(kToday)},
                                            {"item_type", "Charge"}}})},
               {"status", "Overdue"}};
  // Python's 0 + amount: the total is the charge.
  s.db["bills"].push_back(bill);
  c["bill_ids"].push_back(bid);
  line["status"] = "Suspended";
  line["suspension_start_date"] = Iso(kToday);
  bool ended = Arg(a, "contract_ended").get<bool>();
  if (ended) line["contract_end_date"] = Iso(last_day);
  return "Line " + StrArg(a, "line_id") + " suspended for unpaid bill " + bid + ". Contract ended: " + (ended ? "True" : "False");
}

json CustomerLineParams() {
  return Params({{"customer_id", StrProp("The customer's id.")}, {"line_id", StrProp("The line's id.")}}, {"customer_id", "line_id"});
}

void AddAgentTools(Domain& d) {
  d.tools = {
      {"get_customer_by_phone", "Find the customer whose contact number or one of whose lines has this phone number.",
       Params({{"phone_number", StrProp("The phone number.")}}, {"phone_number"}), false,
       [](State& s, const json& a) -> json { return CustomerByPhone(s, StrArg(a, "phone_number")); }},
      {"get_customer_by_id", "Get a customer by customer id.", Params({{"customer_id", StrProp("The customer's id.")}}, {"customer_id"}),
       false, [](State& s, const json& a) -> json { return Customer(s, StrArg(a, "customer_id")); }},
      {"get_customer_by_name",
       "Search customers by full name and date of birth (several may match; the date of birth disambiguates).",
       Params({{"full_name", StrProp("The customer's full name.")}, {"dob", StrProp("Date of birth, YYYY-MM-DD.")}}, {"full_name", "dob"}),
       false,
       [](State& s, const json& a) -> json {
         std::string name = StrArg(a, "full_name"), dob = StrArg(a, "dob");
         auto lower = [](std::string x) {
           for (auto& ch : x) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
           return x;
         };
         json out = json::array();
         for (auto& c : s.db["customers"])
           if (lower(c["full_name"]) == lower(name) && c["date_of_birth"] == dob) out.push_back(c);
         return out;
       }},
      {"get_details_by_id", "Get the record of a customer (C...), line (L...), device (D...), bill (B...) or plan (P...) by its id.",
       Params({{"id", StrProp("The id.")}}, {"id"}), false,
       [](State& s, const json& a) -> json {
         std::string id = StrArg(a, "id");
         switch (id.empty() ? ' ' : id[0]) {
           case 'L': return LineById(s, id);
           case 'D': return Device(s, id);
           case 'B': return Bill(s, id);
           case 'C': return Customer(s, id);
           case 'P': return Plan(s, id);
           default: Fail("Unknown ID format or type: " + id);
         }
       }},
      {"suspend_line", "Suspend an active line (at most 6 months; a $5/month holding fee applies).",
       Params({{"customer_id", StrProp("The customer's id.")}, {"line_id", StrProp("The line's id.")}, {"reason", StrProp("Why.")}},
              {"customer_id", "line_id", "reason"}),
       true,
       [](State& s, const json& a) -> json {
         json& l = TargetLine(s, a);
         StrArg(a, "reason");
         if (l["status"] != "Active") Fail("Line must be active to suspend");
         l["status"] = "Suspended";
         l["suspension_start_date"] = Iso(kToday);
         return {{"message", "Line suspended successfully. $5/month holding fee will apply."}, {"line", l}};
       }},
      {"resume_line", "Resume a suspended (or pending activation) line.", CustomerLineParams(), true,
       [](State& s, const json& a) -> json {
         json& l = TargetLine(s, a);
         if (l["status"] != "Suspended" && l["status"] != "Pending Activation") Fail("Line must be suspended to resume");
         l["status"] = "Active";
         l["suspension_start_date"] = nullptr;
         return {{"message", "Line resumed successfully"}, {"line", l}};
       }},
      {"get_bills_for_customer", "List a customer's bills, most recent issue date first.",
       Params({{"customer_id", StrProp("The customer's id.")}, {"limit", IntProp("At most this many bills (default 12).")}}, {"customer_id"}),
       false,
       [](State& s, const json& a) -> json {
         json& c = Customer(s, StrArg(a, "customer_id"));
         int64_t limit = a.contains("limit") && a["limit"].is_number() ? a["limit"].get<int64_t>() : 12;
         std::vector<json> bills;
         for (auto& b : c["bill_ids"]) bills.push_back(Bill(s, b));
         std::stable_sort(bills.begin(), bills.end(), [](const json& x, const json& y) {
           return x["issue_date"].get<std::string>() > y["issue_date"].get<std::string>();
         });
         json out = json::array();
         // Python's slice [:limit] (a negative limit counts from the end).
         int64_t n = static_cast<int64_t>(bills.size());
         int64_t end = limit < 0 ? std::max<int64_t>(0, n + limit) : std::min(n, limit);
         for (int64_t i = 0; i < end; ++i) out.push_back(bills[static_cast<size_t>(i)]);
         return out;
       }},
      {"send_payment_request",
       "Send the customer a payment request for one of their bills (the bill becomes Awaiting Payment). Check the bill's "
       "status first: a paid bill is not refused.",
       Params({{"customer_id", StrProp("The customer's id.")}, {"bill_id", StrProp("The bill's id.")}}, {"customer_id", "bill_id"}), true,
       [](State& s, const json& a) -> json {
         std::string cid = StrArg(a, "customer_id"), bid = StrArg(a, "bill_id");
         json& c = Customer(s, cid);
         if (!BillsAwaitingPayment(s, c).empty()) Fail("A bill is already awaiting payment for this customer");
         bool has = false;
         for (auto& x : c["bill_ids"]) has = has || x == bid;
         if (!has) Fail("Bill " + bid + " not found for customer " + cid);
         json& b = Bill(s, bid);
         b["status"] = "Awaiting Payment";
         return "Payment request sent to the customer for bill " + bid;
       }},
      {"get_data_usage", "Current billing cycle data usage of a line: used, plan limit, refuelled data, cycle end date.",
       CustomerLineParams(), false,
       [](State& s, const json& a) -> json {
         json& l = TargetLine(s, a);
         json& p = Plan(s, l["plan_id"]);
         auto cycle_end = AddDays(FirstOfMonth(AddDays(FirstOfMonth(kToday), 32)), -1);
         return {{"line_id", StrArg(a, "line_id")},
                 {"data_used_gb", l["data_used_gb"]},
                 {"data_limit_gb", p["data_limit_gb"]},
                 {"data_refueling_gb", l["data_refueling_gb"]},
                 {"cycle_end_date", Iso(cycle_end)}};
       }},
      {"enable_roaming", "Enable international roaming on a line.", CustomerLineParams(), true,
       [](State& s, const json& a) -> json {
         json& l = TargetLine(s, a);
         if (l["roaming_enabled"].get<bool>()) return "Roaming was already enabled";
         l["roaming_enabled"] = true;
         return "Roaming enabled successfully";
       }},
      {"disable_roaming", "Disable international roaming on a line.", CustomerLineParams(), true,
       [](State& s, const json& a) -> json {
         json& l = TargetLine(s, a);
         if (!l["roaming_enabled"].get<bool>()) return "Roaming was already disabled";
         l["roaming_enabled"] = false;
         return "Roaming disabled successfully";
       }},
      {"transfer_to_human_agents",
       "Transfer the user to a human agent with a summary of the issue: only when the user asks for one, or when the "
       "policy and the tools cannot solve the issue.",
       Params({{"summary", StrProp("A summary of the user's issue.")}}, {"summary"}), false,
       [](State&, const json&) -> json { return "Transfer successful"; }},
      {"refuel_data", "Add data to a line for this billing cycle, charged at the plan's refuelling price on the next bill.",
       Params({{"customer_id", StrProp("The customer's id.")}, {"line_id", StrProp("The line's id.")}, {"gb_amount", NumProp("Gigabytes to add.")}},
              {"customer_id", "line_id", "gb_amount"}),
       true, RefuelData},
  };
  // Set-up functions tasks call in initialization_actions, and assertions.
  d.agent_functions["set_data_usage"] = [](State& s, const json& a) -> json {
    json& l = TargetLine(s, a);
    l["data_used_gb"] = NumArg(a, "data_used_gb");
    return "Data usage set to " + PyNum(Arg(a, "data_used_gb")) + " GB for line " + StrArg(a, "line_id");
  };
  d.agent_functions["suspend_line_for_overdue_bill"] = SuspendForOverdueBill;
  d.agent_functions["assert_data_refueling_amount"] = [](State& s, const json& a) -> json {
    return std::fabs(TargetLine(s, a)["data_refueling_gb"].get<double>() - NumArg(a, "expected_amount")) < 1e-6;
  };
  d.agent_functions["assert_line_status"] = [](State& s, const json& a) -> json {
    return TargetLine(s, a)["status"] == StrArg(a, "expected_status");
  };
  d.agent_functions["assert_overdue_bill_exists"] = [](State& s, const json& a) -> json {
    std::string cid = StrArg(a, "customer_id"), bid = StrArg(a, "overdue_bill_id");
    json& c = Customer(s, cid);
    bool has = false;
    for (auto& x : c["bill_ids"]) has = has || x == bid;
    if (!has) Fail("Overdue bill " + bid + " not found");
    if (Bill(s, bid)["status"] != "Overdue") Fail("Overdue bill " + bid + " is not overdue");
    return true;
  };
  d.agent_functions["assert_no_overdue_bill"] = [](State& s, const json& a) -> json {
    std::string bid = StrArg(a, "overdue_bill_id");
    for (auto& b : s.db["bills"])
      if (b["bill_id"] == bid) return b["status"] == "Paid";
    return true;
  };
}

// τ²'s TelecomEnvironment.sync_tools.
void SyncSurroundings(State& s) {
  json& sur = s.user_db["surroundings"];
  if (sur["phone_number"].is_null()) return;
  std::string phone = sur["phone_number"];
  json& line = LineByPhone(s, phone);
  sur["line_active"] = line["status"] == "Active";
  sur["roaming_allowed"] = line["roaming_enabled"].get<bool>();
  json& plan = Plan(s, line["plan_id"]);
  sur["mobile_data_usage_exceeded"] = line["data_used_gb"].get<double>() >=
                                      plan["data_limit_gb"].get<double>() + line["data_refueling_gb"].get<double>();
  if (sur["payment_request"].is_object() && sur["payment_request"]["paid"].get<bool>()) {
    Bill(s, sur["payment_request"]["bill_id"])["status"] = "Paid";
    sur["payment_request"] = nullptr;
  }
  if (sur["payment_request"].is_null()) {
    auto bills = BillsAwaitingPayment(s, CustomerByPhone(s, phone));
    if (!bills.empty())
      sur["payment_request"] = {{"bill_id", (*bills[0])["bill_id"]}, {"amount_due", (*bills[0])["total_due"]}, {"paid", false}};
  }
}

Expected<json> ReadToml(const std::string& path) {
  try {
    toml::table t = toml::parse_file(path);
    return TomlToJson(t);
  } catch (const toml::parse_error& e) {
    const auto& at = e.source().begin;
    return InvalidArgument(path + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) + ": " + std::string(e.description()));
  }
}

}  // namespace

Status LoadTelecom(Domain& d, const std::string& dir) {
  namespace fs = std::filesystem;
  auto file = [&](const std::string& f) { return (fs::path(dir) / f).string(); };
  K2_ASSIGN_OR_RETURN(json db, ReadToml(file("db.toml")));
  for (const char* table : {"plans", "customers", "lines", "bills", "devices"}) {
    if (!db.contains(table)) db[table] = json::array();
    if (!db[table].is_array()) return InvalidArgument(file("db.toml") + ": " + table + ": expected an array of tables");
    for (auto& r : db[table])
      if (!r.is_object()) return InvalidArgument(file("db.toml") + ": " + table + ": expected an array of tables");
  }
  for (auto& r : db["devices"])
    FillDefaults(r, {{"imei", nullptr}, {"activated", false}, {"activation_date", nullptr}, {"last_esim_transfer_date", nullptr}});
  for (auto& r : db["lines"])
    FillDefaults(r, {{"status", "Pending Activation"}, {"device_id", nullptr}, {"data_used_gb", 0.0}, {"data_refueling_gb", 0.0},
                 {"roaming_enabled", false}, {"contract_end_date", nullptr}, {"last_plan_change_date", nullptr},
                 {"last_sim_replacement_date", nullptr}, {"suspension_start_date", nullptr}});
  for (auto& r : db["bills"]) FillDefaults(r, {{"line_items", json::array()}, {"status", "Draft"}});
  for (auto& r : db["customers"])
    FillDefaults(r, {{"account_status", "Pending Verification"}, {"payment_methods", json::array()}, {"line_ids", json::array()},
                 {"bill_ids", json::array()}, {"created_at", "2025-01-01"}, {"last_extension_date", nullptr},
                 {"goodwill_credit_used_this_year", 0.0}});
  // Numbers τ²'s models type as float are floats whatever the file wrote (a TOML 5 is 5.0 there).
  auto as_float = [](json& r, const char* k) {
    if (r.contains(k) && r[k].is_number()) r[k] = r[k].get<double>();
  };
  for (auto& r : db["plans"])
    for (const char* k : {"data_limit_gb", "price_per_month", "data_refueling_price_per_gb"}) as_float(r, k);
  for (auto& r : db["lines"])
    for (const char* k : {"data_used_gb", "data_refueling_gb"}) as_float(r, k);
  for (auto& r : db["bills"]) {
    as_float(r, "total_due");
    for (auto& li : r["line_items"]) as_float(li, "amount");
  }
  for (auto& r : db["customers"]) as_float(r, "goodwill_credit_used_this_year");
  d.db = std::move(db);

  K2_ASSIGN_OR_RETURN(json udb, ReadToml(file("user_db.toml")));
  K2_ASSIGN_OR_RETURN(d.user_db, TelecomUserDb(udb, file("user_db.toml")));
  K2_ASSIGN_OR_RETURN(std::string main_policy, ReadFile(file("main_policy.md")));
  K2_ASSIGN_OR_RETURN(std::string manual, ReadFile(file("tech_support_manual.md")));
  d.policy = "<main_policy>\n" + main_policy + "\n</main_policy>\n<tech_support_policy>\n" + manual + "\n</tech_support_policy>";
  AddAgentTools(d);
  AddTelecomUserTools(d);
  d.sync = SyncSurroundings;
  return Status::Ok();
}

}  // namespace k2::agents::tau2::detail
