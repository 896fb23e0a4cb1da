// The generic interpreter of synthetic tools (see executor.h): each OpKind is one function over the
// domain's entity model; the policy reference ViolatedPolicy lives at the end, written independently.
#include "toolgen/synth/executor.h"

#include <algorithm>
#include <map>

#include "toolgen/synth/database.h"

namespace k2::toolgen::synth {
namespace {

CallResult Err(const char* code, std::string msg) { return CallResult{code, std::move(msg), nullptr}; }
CallResult Ok(json v) { return CallResult{"", "", std::move(v)}; }

// Type check of one argument against its field (args are data from a model: never trusted).
bool ArgOk(const Domain& d, const Field& f, const json& v, std::string* why) {
  auto fail = [&](const std::string& w) { *why = f.name + ": expected " + w + ", got " + v.dump(); return false; };
  switch (f.kind) {
    case FieldKind::kId:
    case FieldKind::kRef: {
      if (!v.is_string()) return fail("string");
      const std::string& p = d.entities[f.ref].id_prefix;
      std::string s = v.get<std::string>();
      if (s.size() <= p.size() + 1 || s.rfind(p + "-", 0) != 0 ||
          !std::all_of(s.begin() + p.size() + 1, s.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return fail(p + "-<digits>");
      return true;
    }
    case FieldKind::kString: return v.is_string() && v.get<std::string>().size() <= 200 ? true : fail("string of <= 200 chars");
    case FieldKind::kEmail: {
      if (!v.is_string()) return fail("email");
      std::string s = v.get<std::string>();
      auto at = s.find('@');
      return at != std::string::npos && at > 0 && at + 1 < s.size() ? true : fail("email address");
    }
    case FieldKind::kPhone: {
      if (!v.is_string()) return fail("phone");
      std::string s = v.get<std::string>();
      bool ok = s.size() >= 8 && s.size() <= 16 && s[0] == '+' &&
                std::all_of(s.begin() + 1, s.end(), [](char c) { return c >= '0' && c <= '9'; });
      return ok ? true : fail("+ and 7-15 digits");
    }
    case FieldKind::kEnum:
      if (v.is_string())
        for (auto& c : f.choices)
          if (c == v.get<std::string>()) return true;
      return fail("one of " + json(f.choices).dump());
    case FieldKind::kMoney: return v.is_number() && v.get<double>() >= 0 ? true : fail("non-negative number");
    case FieldKind::kDate: {
      int64_t days;
      return v.is_string() && ParseDate(v.get<std::string>(), &days) ? true : fail("date YYYY-MM-DD");
    }
    case FieldKind::kInt:
      return v.is_number_integer() && v.get<int64_t>() >= f.min && v.get<int64_t>() <= f.max
                 ? true
                 : fail("integer in [" + std::to_string(f.min) + ", " + std::to_string(f.max) + "]");
    case FieldKind::kBool: return v.is_boolean() ? true : fail("boolean");
    case FieldKind::kGeo:
      return v.is_object() && v.size() == 2 && v.contains("lat") && v.contains("lon") && v["lat"].is_number() &&
                     v["lon"].is_number() && std::abs(v["lat"].get<double>()) <= 90 && std::abs(v["lon"].get<double>()) <= 180
                 ? true
                 : fail("{lat, lon}");
    case FieldKind::kRecord: {
      if (!v.is_object() || v.size() != f.sub.size()) return fail("object with " + std::to_string(f.sub.size()) + " fields");
      for (auto& s : f.sub) {
        if (!v.contains(s.name)) return fail("object with field " + s.name);
        if (!ArgOk(d, s, v[s.name], why)) {
          *why = f.name + "." + *why;
          return false;
        }
      }
      return true;
    }
  }
  return false;
}

struct Ctx {
  const Domain& d;
  const Op& op;
  json& db;
  const json& args;
  int64_t today = 0;
  const Entity& A() const { return d.entities[kActor]; }
  const Entity& I() const { return d.entities[kItem]; }
  const Entity& R() const { return d.entities[kRecordRole]; }
};

// Reads a required/optional id argument and resolves it; returns nullptr with *err set when missing.
json* Lookup(Ctx& c, int role, const std::string& arg, CallResult* err, bool required = true) {
  const Entity& e = c.d.entities[role];
  if (!c.args.contains(arg)) {
    if (required) *err = Err("invalid_arguments", "missing required argument " + arg);
    return nullptr;
  }
  std::string why;
  Field f = e.fields[0];
  if (!ArgOk(c.d, f, c.args[arg], &why)) {
    *err = Err("invalid_arguments", arg + ": " + why.substr(why.find(':') + 2));
    return nullptr;
  }
  auto& coll = c.db[e.plural];
  auto it = coll.find(c.args[arg].get<std::string>());
  if (it == coll.end()) {
    *err = Err("not_found", "no " + e.name + " with id " + c.args[arg].get<std::string>());
    return nullptr;
  }
  return &*it;
}

int TierIndex(const Domain& d, const std::string& t) {
  for (size_t i = 0; i < d.tiers.size(); ++i)
    if (d.tiers[i] == t) return static_cast<int>(i);
  return -1;
}

// Quantity of active records on (item, date), skipping record `skip`.
int64_t Used(const Ctx& c, const std::string& item, const std::string& date, const std::string& skip) {
  int64_t q = 0;
  for (auto& [id, r] : c.db[c.R().plural].items())
    if (id != skip && r[c.d.ItemRef()] == item && r["date"] == date && c.d.life.IsActive(r["status"])) q += r["quantity"].get<int64_t>();
  return q;
}

bool Holds(const Ctx& c, const std::string& actor, const std::string& item, const std::string& date, const std::string& skip) {
  for (auto& [id, r] : c.db[c.R().plural].items())
    if (id != skip && r[c.d.ActorRef()] == actor && r[c.d.ItemRef()] == item && r["date"] == date &&
        c.d.life.IsActive(r["status"]))
      return true;
  return false;
}

int ActiveCount(const Ctx& c, const std::string& actor) {
  int n = 0;
  for (auto& [id, r] : c.db[c.R().plural].items())
    if (r[c.d.ActorRef()] == actor && c.d.life.IsActive(r["status"])) ++n;
  return n;
}

// Optional writable fields of `e` present in args (skipping `skip` names), type-checked into *out.
bool TakeFields(Ctx& c, const Entity& e, const std::vector<std::string>& fixed, json* out, CallResult* err) {
  for (auto& f : e.fields) {
    if (std::find(fixed.begin(), fixed.end(), f.name) != fixed.end()) continue;
    if (!c.args.contains(f.name)) continue;
    std::string why;
    if (!ArgOk(c.d, f, c.args[f.name], &why)) {
      *err = Err("invalid_arguments", why);
      return false;
    }
    (*out)[f.name] = c.args[f.name];
  }
  return true;
}

CallResult Get(Ctx& c) {
  CallResult err;
  const Entity& e = c.d.entities[c.op.role];
  json* r = Lookup(c, c.op.role, e.fields[0].name, &err);
  return r ? Ok(*r) : err;
}

CallResult Search(Ctx& c) {
  const Field& cls = *c.I().Find("class");
  std::string why;
  if (c.args.contains("class") && !ArgOk(c.d, cls, c.args["class"], &why)) return Err("invalid_arguments", why);
  auto num = [&](const char* k, bool integer, double min) -> std::optional<double> {
    if (!c.args.contains(k)) return std::nullopt;
    const json& v = c.args[k];
    if (!(integer ? v.is_number_integer() : v.is_number()) || v.get<double>() < min) return std::nullopt;
    return v.get<double>();
  };
  for (auto [k, integer, min] : {std::tuple{"max_price", false, 0.0}, {"min_capacity", true, 1.0}, {"limit", true, 1.0}})
    if (c.args.contains(k) && !num(k, integer, min))
      return Err("invalid_arguments", std::string(k) + ": expected " + (integer ? "integer" : "number") + " >= " +
                                          std::to_string(static_cast<int>(min)));
  if (c.args.contains("limit") && c.args["limit"].get<double>() > 50) return Err("invalid_arguments", "limit: expected <= 50");
  if (c.args.contains("city") && !c.args["city"].is_string()) return Err("invalid_arguments", "city: expected string");
  if (c.args.contains("include_inactive") && !c.args["include_inactive"].is_boolean())
    return Err("invalid_arguments", "include_inactive: expected boolean");
  bool inactive = c.args.value("include_inactive", false);
  size_t limit = c.args.contains("limit") ? c.args["limit"].get<size_t>() : 10;
  std::vector<const json*> hits;
  for (auto& [id, it] : c.db[c.I().plural].items()) {
    if (!inactive && !it["active"].get<bool>()) continue;
    if (c.args.contains("class") && it["class"] != c.args["class"]) continue;
    if (c.args.contains("max_price") && MoneyCents(it["price"]) > MoneyCents(c.args["max_price"])) continue;
    if (c.args.contains("min_capacity") && it["capacity"].get<int64_t>() < c.args["min_capacity"].get<int64_t>()) continue;
    if (c.args.contains("city") && it["city"] != c.args["city"]) continue;
    hits.push_back(&it);
  }
  const std::string& idf = c.I().fields[0].name;
  std::stable_sort(hits.begin(), hits.end(), [&](const json* a, const json* b) {
    int64_t pa = MoneyCents((*a)["price"]), pb = MoneyCents((*b)["price"]);
    return pa != pb ? pa < pb : (*a)[idf].get<std::string>() < (*b)[idf].get<std::string>();
  });
  if (hits.size() > limit) hits.resize(limit);
  json arr = json::array();
  for (auto* h : hits) arr.push_back(*h);
  return Ok({{c.I().plural, arr}, {"count", arr.size()}});
}

CallResult List(Ctx& c) {
  CallResult err;
  const std::string aid = c.A().fields[0].name;
  json* a = Lookup(c, kActor, aid, &err);
  if (!a) return err;
  std::string why;
  if (c.args.contains("status") && !ArgOk(c.d, *c.R().Find("status"), c.args["status"], &why))
    return Err("invalid_arguments", why);
  std::vector<const json*> hits;
  for (auto& [id, r] : c.db[c.R().plural].items()) {
    if (r[c.d.ActorRef()] != c.args[aid]) continue;
    if (c.args.contains("status") && r["status"] != c.args["status"]) continue;
    hits.push_back(&r);
  }
  const std::string& idf = c.R().fields[0].name;
  std::stable_sort(hits.begin(), hits.end(), [&](const json* x, const json* y) {
    return std::pair((*x)["date"].get<std::string>(), (*x)[idf].get<std::string>()) <
           std::pair((*y)["date"].get<std::string>(), (*y)[idf].get<std::string>());
  });
  json arr = json::array();
  for (auto* h : hits) arr.push_back(*h);
  return Ok({{c.R().plural, arr}, {"count", arr.size()}});
}

const std::vector<std::string>& RecordFixed(const Domain& d) {
  // Cached per call site is not possible across domains; built per call (cheap: 8 strings).
  static thread_local std::vector<std::string> v;
  v = {d.RecordRef(), d.ActorRef(), d.ItemRef(), "status", "date", "created_on", "quantity", "amount"};
  return v;
}

CallResult Create(Ctx& c) {
  CallResult err;
  json* a = Lookup(c, kActor, c.d.ActorRef(), &err);
  if (!a) return err;
  json* it = Lookup(c, kItem, c.d.ItemRef(), &err);
  if (!it) return err;
  int64_t date;
  if (!c.args.contains("date") || !c.args["date"].is_string() || !ParseDate(c.args["date"].get<std::string>(), &date))
    return Err("invalid_arguments", "date: expected date YYYY-MM-DD");
  if (!c.args.contains("quantity") || !c.args["quantity"].is_number_integer() || c.args["quantity"].get<int64_t>() < 1 ||
      c.args["quantity"].get<int64_t>() > 10)
    return Err("invalid_arguments", "quantity: expected integer in [1, 10]");
  json rec = json::object();
  if (!TakeFields(c, c.R(), RecordFixed(c.d), &rec, &err)) return err;
  const std::string ds = c.args["date"], aid = c.args[c.d.ActorRef()], iid = c.args[c.d.ItemRef()];
  const int64_t qty = c.args["quantity"];
  if (date < c.today) return Err("precondition_failed", "date " + ds + " is in the past (today is " + DateString(c.today) + ")");
  if (!(*it)["active"].get<bool>()) return Err("precondition_failed", c.I().name + " " + iid + " is not bookable");
  if (Used(c, iid, ds, "") + qty > (*it)["capacity"].get<int64_t>())
    return Err("precondition_failed", "no capacity left on " + ds + " for " + iid);
  const int64_t amount = MoneyCents((*it)["price"]) * qty;
  for (auto& p : c.d.policies) {
    bool bad = (p.kind == PolicyKind::kPremiumTier && (*it)["premium"].get<bool>() && TierIndex(c.d, (*a)["tier"]) < p.n) ||
               (p.kind == PolicyKind::kNoDoubleBooking && Holds(c, aid, iid, ds, "")) ||
               (p.kind == PolicyKind::kMaxAmount && amount > p.n) ||
               (p.kind == PolicyKind::kMaxActive && ActiveCount(c, aid) + 1 > p.n);
    if (bad) return Err("policy_violation", p.text);
  }
  if (MoneyCents((*a)["balance"]) < amount)
    return Err("precondition_failed", "insufficient balance: " + (*a)["balance"].dump() + " < " + MoneyJson(amount).dump());
  // Checks done: write.
  int64_t n = c.db["next_id"][c.R().plural];
  std::string id = c.R().id_prefix + "-" + std::to_string(n);
  rec[c.d.RecordRef()] = id;
  rec[c.d.ActorRef()] = aid;
  rec[c.d.ItemRef()] = iid;
  rec["status"] = c.d.life.states[0];
  rec["date"] = ds;
  rec["created_on"] = DateString(c.today);
  rec["quantity"] = qty;
  rec["amount"] = MoneyJson(amount);
  for (auto& f : c.R().fields)
    if (!rec.contains(f.name)) rec[f.name] = DefaultValue(c.d, f, rec);
  c.db["next_id"][c.R().plural] = n + 1;
  (*a)["balance"] = MoneyJson(MoneyCents((*a)["balance"]) - amount);
  c.db[c.R().plural][id] = rec;
  return Ok(rec);
}

CallResult Update(Ctx& c) {
  CallResult err;
  json* r = Lookup(c, kRecordRole, c.d.RecordRef(), &err);
  if (!r) return err;
  json changes = json::object();
  if (!TakeFields(c, c.R(), RecordFixed(c.d), &changes, &err)) return err;
  int64_t date;
  if (c.args.contains("date") && (!c.args["date"].is_string() || !ParseDate(c.args["date"].get<std::string>(), &date)))
    return Err("invalid_arguments", "date: expected date YYYY-MM-DD");
  if (c.args.contains("quantity") && (!c.args["quantity"].is_number_integer() || c.args["quantity"].get<int64_t>() < 1 ||
                                      c.args["quantity"].get<int64_t>() > 10))
    return Err("invalid_arguments", "quantity: expected integer in [1, 10]");
  const std::string id = c.args[c.d.RecordRef()];
  if (!c.d.life.IsActive((*r)["status"]))
    return Err("precondition_failed", c.R().name + " " + id + " is " + (*r)["status"].get<std::string>() + "; only " +
                                          c.d.life.states[0] + " or " + c.d.life.states[1] + " can be changed");
  const std::string ds = c.args.value("date", (*r)["date"].get<std::string>());
  const int64_t qty = c.args.value("quantity", (*r)["quantity"].get<int64_t>());
  bool changed = ds != (*r)["date"] || qty != (*r)["quantity"];
  for (auto& [k, v] : changes.items()) changed |= (*r)[k] != v;
  if (!changed) return Err("precondition_failed", "nothing to change");
  ParseDate(ds, &date);
  if (ds != (*r)["date"] && date < c.today) return Err("precondition_failed", "date " + ds + " is in the past");
  json& it = c.db[c.I().plural][(*r)[c.d.ItemRef()].get<std::string>()];
  json& a = c.db[c.A().plural][(*r)[c.d.ActorRef()].get<std::string>()];
  if (Used(c, it[c.I().fields[0].name], ds, id) + qty > it["capacity"].get<int64_t>())
    return Err("precondition_failed", "no capacity left on " + ds);
  const int64_t amount = MoneyCents(it["price"]) * qty;
  const int64_t delta = amount - MoneyCents((*r)["amount"]);
  for (auto& p : c.d.policies) {
    bool bad = (p.kind == PolicyKind::kNoDoubleBooking && Holds(c, a[c.A().fields[0].name], it[c.I().fields[0].name], ds, id)) ||
               (p.kind == PolicyKind::kMaxAmount && amount > p.n && delta > 0);
    if (bad) return Err("policy_violation", p.text);
  }
  if (delta > MoneyCents(a["balance"])) return Err("precondition_failed", "insufficient balance for the price difference");
  a["balance"] = MoneyJson(MoneyCents(a["balance"]) - delta);
  (*r)["date"] = ds;
  (*r)["quantity"] = qty;
  (*r)["amount"] = MoneyJson(amount);
  for (auto& [k, v] : changes.items()) (*r)[k] = v;
  return Ok(*r);
}

CallResult Advance(Ctx& c) {
  CallResult err;
  json* r = Lookup(c, kRecordRole, c.d.RecordRef(), &err);
  if (!r) return err;
  const std::string& from = c.d.life.states[c.op.stage];
  if ((*r)["status"] != from)
    return Err("precondition_failed", c.R().name + " " + c.args[c.d.RecordRef()].get<std::string>() + " is " +
                                          (*r)["status"].get<std::string>() + ", expected " + from);
  (*r)["status"] = c.d.life.states[c.op.stage + 1];
  return Ok(*r);
}

CallResult CancelOrRefund(Ctx& c, bool cancel) {
  CallResult err;
  json* r = Lookup(c, kRecordRole, c.d.RecordRef(), &err);
  if (!r) return err;
  if (cancel) {
    static const std::vector<std::string> kReasons = {"customer_request", "schedule_change", "duplicate", "other"};
    if (!c.args.contains("reason") || !c.args["reason"].is_string() ||
        std::find(kReasons.begin(), kReasons.end(), c.args["reason"].get<std::string>()) == kReasons.end())
      return Err("invalid_arguments", "reason: expected one of " + json(kReasons).dump());
  } else if (c.args.contains("comment") && (!c.args["comment"].is_string() || c.args["comment"].get<std::string>().size() > 200)) {
    return Err("invalid_arguments", "comment: expected string of <= 200 chars");
  }
  const std::string st = (*r)["status"];
  const std::string id = c.args[c.d.RecordRef()];
  if (cancel ? !c.d.life.IsActive(st) : st != c.d.life.states[2])
    return Err("precondition_failed", c.R().name + " " + id + " is " + st + "; cannot " +
                                          (cancel ? c.d.life.cancel_verb : c.d.life.refund_verb) + " it");
  int64_t date;
  ParseDate((*r)["date"], &date);
  const Policy* p = c.d.FindPolicy(cancel ? PolicyKind::kCancelNotice : PolicyKind::kRefundWindow);
  if (p && (cancel ? date - c.today < p->n : c.today - date > p->n)) return Err("policy_violation", p->text);
  json& a = c.db[c.A().plural][(*r)[c.d.ActorRef()].get<std::string>()];
  const int64_t amount = MoneyCents((*r)["amount"]);
  a["balance"] = MoneyJson(MoneyCents(a["balance"]) + amount);
  (*r)["status"] = cancel ? Lifecycle::kCancelled : Lifecycle::kRefunded;
  return Ok({{c.R().name, *r}, {"refunded_amount", MoneyJson(amount)}});
}

CallResult Transfer(Ctx& c) {
  CallResult err;
  const std::string aid = c.A().fields[0].name;
  json* from = Lookup(c, kActor, "from_" + aid, &err);
  if (!from) return err;
  json* to = Lookup(c, kActor, "to_" + aid, &err);
  if (!to) return err;
  if (!c.args.contains("amount") || !c.args["amount"].is_number() || c.args["amount"].get<double>() <= 0)
    return Err("invalid_arguments", "amount: expected number > 0");
  const int64_t amount = MoneyCents(c.args["amount"]);
  if (amount <= 0) return Err("invalid_arguments", "amount: expected at least 0.01");
  if (from == to) return Err("precondition_failed", "sender and recipient are the same " + c.A().name);
  if (const Policy* p = c.d.FindPolicy(PolicyKind::kTransferLimit); p && amount > p->n) return Err("policy_violation", p->text);
  if (MoneyCents((*from)["balance"]) < amount)
    return Err("precondition_failed", "insufficient balance: " + (*from)["balance"].dump());
  (*from)["balance"] = MoneyJson(MoneyCents((*from)["balance"]) - amount);
  (*to)["balance"] = MoneyJson(MoneyCents((*to)["balance"]) + amount);
  return Ok({{"from", {{aid, (*from)[aid]}, {"balance", (*from)["balance"]}}},
             {"to", {{aid, (*to)[aid]}, {"balance", (*to)["balance"]}}},
             {"amount", MoneyJson(amount)}});
}

CallResult Aggregate(Ctx& c) {
  CallResult err;
  const std::string aid = c.d.ActorRef(), iid = c.d.ItemRef();
  if (!c.args.contains("group_by") || !c.args["group_by"].is_string())
    return Err("invalid_arguments", "group_by: expected one of status, " + aid + ", " + iid);
  const std::string g = c.args["group_by"];
  if (g != "status" && g != aid && g != iid) return Err("invalid_arguments", "group_by: expected one of status, " + aid + ", " + iid);
  if (c.args.contains(aid) && !Lookup(c, kActor, aid, &err)) return err;
  if (c.args.contains(iid) && !Lookup(c, kItem, iid, &err)) return err;
  std::map<std::string, std::pair<int64_t, int64_t>> groups;
  int64_t count = 0, total = 0;
  for (auto& [id, r] : c.db[c.R().plural].items()) {
    if (c.args.contains(aid) && r[aid] != c.args[aid]) continue;
    if (c.args.contains(iid) && r[iid] != c.args[iid]) continue;
    auto& b = groups[r[g].get<std::string>()];
    b.first++;
    b.second += MoneyCents(r["amount"]);
    count++;
    total += MoneyCents(r["amount"]);
  }
  json gj = json::object();
  for (auto& [k, b] : groups) gj[k] = {{"count", b.first}, {"total_amount", MoneyJson(b.second)}};
  return Ok({{"groups", gj}, {"count", count}, {"total_amount", MoneyJson(total)}});
}

CallResult UpdateActor(Ctx& c) {
  CallResult err;
  json* a = Lookup(c, kActor, c.d.ActorRef(), &err);
  if (!a) return err;
  json changes = json::object();
  if (!TakeFields(c, c.A(), {c.d.ActorRef(), "name", "tier", "balance"}, &changes, &err)) return err;
  bool changed = false;
  for (auto& [k, v] : changes.items()) changed |= (*a)[k] != v;
  if (!changed) return Err("precondition_failed", "nothing to change");
  for (auto& [k, v] : changes.items()) (*a)[k] = v;
  return Ok(*a);
}

}  // namespace

json CallResult::ToMcp() const {
  json j = ok() ? json{{"content", {{{"type", "text"}, {"text", value.dump()}}}}, {"structuredContent", value}, {"isError", false}}
                : json{{"content", {{{"type", "text"}, {"text", error + ": " + message}}}}, {"isError", true}};
  if (simulated) j["_meta"] = {{"k2gym/simulated", true}};
  return j;
}

CallResult Execute(const Domain& d, const Op& op, json& db, const json& args) {
  if (!args.is_object()) return Err("invalid_arguments", "arguments: expected object, got " + std::string(JsonTypeName(args)));
  const json& props = op.input_schema["properties"];
  for (auto& [k, v] : args.items())
    if (!props.contains(k)) return Err("invalid_arguments", "unknown argument " + k);
  for (auto& k : op.input_schema.value("required", json::array()))
    if (!args.contains(k.get<std::string>())) return Err("invalid_arguments", "missing required argument " + k.get<std::string>());
  Ctx c{d, op, db, args};
  if (!db.contains("today") || !ParseDate(db["today"].get<std::string>(), &c.today))
    return Err("precondition_failed", "database has no valid \"today\"");
  switch (op.kind) {
    case OpKind::kGet: return Get(c);
    case OpKind::kSearch: return Search(c);
    case OpKind::kList: return List(c);
    case OpKind::kCreate: return Create(c);
    case OpKind::kUpdate: return Update(c);
    case OpKind::kAdvance: return Advance(c);
    case OpKind::kCancel: return CancelOrRefund(c, true);
    case OpKind::kRefund: return CancelOrRefund(c, false);
    case OpKind::kTransfer: return Transfer(c);
    case OpKind::kAggregate: return Aggregate(c);
    case OpKind::kUpdateActor: return UpdateActor(c);
  }
  return Err("invalid_arguments", "unknown operation");
}

// ---- Reference policy check: direct restatement of each rule over the raw state. ----
// Lookups go through find(): the reference must not trust its inputs more than the executor does.
namespace {
const json* FindIn(const json& db, const std::string& coll, const json& id) {
  if (!id.is_string() || !db.contains(coll)) return nullptr;
  auto it = db[coll].find(id.get<std::string>());
  return it == db[coll].end() ? nullptr : &*it;
}
const json* Arg(const json& args, const std::string& k) {
  auto it = args.find(k);
  return it == args.end() ? nullptr : &*it;
}
}  // namespace

const Policy* ViolatedPolicy(const Domain& d, const Op& op, const json& db, const json& args) {
  if (op.read_only || !args.is_object() || !db.contains("today")) return nullptr;
  int64_t today = 0;
  ParseDate(db["today"].get<std::string>(), &today);
  const Entity& R = d.entities[kRecordRole];
  if (!db.contains(R.plural)) return nullptr;
  const json& recs = db[R.plural];
  auto days = [](const json& s) {
    int64_t x = 0;
    if (s.is_string()) ParseDate(s.get<std::string>(), &x);
    return x;
  };
  auto active = [&](const json& r) {
    std::string s = r["status"];
    return s == d.life.states[0] || s == d.life.states[1];
  };
  const json* rid = Arg(args, d.RecordRef());
  const json* rec = rid ? FindIn(db, R.plural, *rid) : nullptr;
  for (const Policy& p : d.policies) {
    switch (op.kind) {
      case OpKind::kCreate: {
        const json* aid = Arg(args, d.ActorRef());
        const json* iid = Arg(args, d.ItemRef());
        const json* qty = Arg(args, "quantity");
        const json* date = Arg(args, "date");
        const json* a = aid ? FindIn(db, d.entities[kActor].plural, *aid) : nullptr;
        const json* it = iid ? FindIn(db, d.entities[kItem].plural, *iid) : nullptr;
        if (!a || !it || !qty || !qty->is_number() || !date) return nullptr;
        double amount = (*it)["price"].get<double>() * qty->get<double>();
        if (p.kind == PolicyKind::kMaxAmount && amount * 100 > static_cast<double>(p.n) + 0.5) return &p;
        if (p.kind == PolicyKind::kPremiumTier && (*it)["premium"].get<bool>()) {
          auto pos = std::find(d.tiers.begin(), d.tiers.end(), (*a)["tier"].get<std::string>());
          if (pos - d.tiers.begin() < p.n) return &p;
        }
        int mine = 0;
        bool dup = false;
        for (auto& [id, r] : recs.items()) {
          if (!active(r) || r[d.ActorRef()] != *aid) continue;
          ++mine;
          dup |= r[d.ItemRef()] == *iid && r["date"] == *date;
        }
        if (p.kind == PolicyKind::kNoDoubleBooking && dup) return &p;
        if (p.kind == PolicyKind::kMaxActive && mine >= p.n) return &p;
        break;
      }
      case OpKind::kUpdate: {
        if (!rec) return nullptr;
        const json* nd = Arg(args, "date");
        const json* nq = Arg(args, "quantity");
        json date = nd ? *nd : (*rec)["date"];
        if (p.kind == PolicyKind::kNoDoubleBooking) {
          for (auto& [id, o] : recs.items())
            if (id != rid->get<std::string>() && active(o) && o[d.ActorRef()] == (*rec)[d.ActorRef()] &&
                o[d.ItemRef()] == (*rec)[d.ItemRef()] && o["date"] == date)
              return &p;
        }
        if (p.kind == PolicyKind::kMaxAmount) {
          const json* it = FindIn(db, d.entities[kItem].plural, (*rec)[d.ItemRef()]);
          if (!it || (nq && !nq->is_number())) return nullptr;
          double amount = (*it)["price"].get<double>() * (nq ? nq->get<double>() : (*rec)["quantity"].get<double>());
          if (amount * 100 > static_cast<double>(p.n) + 0.5 && amount > (*rec)["amount"].get<double>() + 1e-9) return &p;
        }
        break;
      }
      case OpKind::kCancel:
        if (rec && p.kind == PolicyKind::kCancelNotice && days((*rec)["date"]) - today < p.n) return &p;
        break;
      case OpKind::kRefund:
        if (rec && p.kind == PolicyKind::kRefundWindow && today - days((*rec)["date"]) > p.n) return &p;
        break;
      case OpKind::kTransfer: {
        const json* amount = Arg(args, "amount");
        if (amount && amount->is_number() && p.kind == PolicyKind::kTransferLimit &&
            amount->get<double>() * 100 > static_cast<double>(p.n) + 0.5)
          return &p;
        break;
      }
      default: break;
    }
  }
  return nullptr;
}

ToolSimulator::ToolSimulator(std::shared_ptr<const Domain> d, json db, FaultConfig faults, uint64_t seed)
    : d_(std::move(d)), db_(std::move(db)), faults_(faults), rng_(Rng(seed).Fork("faults/" + d_->path)) {}

CallResult ToolSimulator::Call(const std::string& tool, const json& args) {
  ++calls_;
  const Op* op = d_->FindOp(tool);
  // The fault draw happens for every call so that the fault pattern depends on the call index only.
  double u = rng_.Uniform();
  if (!op) return Err("not_found", "unknown tool " + tool + " in " + d_->path);
  if (u < faults_.timeout_rate) return Err("timeout", tool + " did not answer in time; nothing was changed");
  if (u < faults_.timeout_rate + faults_.transient_rate)
    return Err("transient", "service temporarily unavailable; nothing was changed, retry later");
  return Execute(*d_, *op, db_, args);
}

}  // namespace k2::toolgen::synth
