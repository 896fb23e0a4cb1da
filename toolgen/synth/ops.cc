// The tools of a sub-domain (see evolve.h BuildOps): naming grammar, MCP input/output schemas and
// descriptions for the 14 operation descriptors that executor.cc interprets.
#include <algorithm>
#include <cctype>
#include <set>

#include "core/rng.h"
#include "toolgen/synth/evolve.h"
#include "toolgen/synth/vocab.h"

namespace k2::toolgen::synth {
namespace {

std::string Words(std::string s) {
  std::replace(s.begin(), s.end(), '_', ' ');
  return s;
}

template <class V>
auto Pick(Rng& r, const V& v) -> decltype(v[0]) {
  return v[r.Below(v.size())];
}

// Lists the names of non-fixed fields of an entity, for descriptions ("loyalty points, meal plan").
std::string FieldList(const Entity& e, size_t from) {
  std::string s;
  for (size_t i = from; i < e.fields.size(); ++i) {
    if (!s.empty()) s += ", ";
    s += Words(e.fields[i].name);
  }
  return s;
}

json Obj(json props, std::vector<std::string> required) {
  json s = {{"type", "object"}, {"properties", std::move(props)}, {"additionalProperties", false}};
  if (!required.empty()) s["required"] = required;
  return s;
}

}  // namespace

void BuildOps(Domain& d, uint64_t seed) {
  Rng rng(seed ^ 0x6f70735f6275696cULL);
  const Entity& A = d.entities[kActor];
  const Entity& I = d.entities[kItem];
  const Entity& R = d.entities[kRecordRole];
  const std::string an = Words(A.name), in = Words(I.name), rn = Words(R.name);
  const std::string ip = Words(I.plural), rp = Words(R.plural);
  const std::string& dn = d.display;

  // Naming grammar: verb synonyms per slot, optionally a theme prefix ("hotel_get_guest").
  std::string prefix;
  if (rng.Bernoulli(0.3)) {
    std::string theme = d.path.substr(d.path.find('/') + 1);
    theme = theme.substr(0, theme.find('/'));
    std::replace(theme.begin(), theme.end(), '-', '_');
    prefix = theme + "_";
  }
  const std::string get = Pick(rng, GetVerbs()), search = Pick(rng, SearchVerbs()), list = Pick(rng, ListVerbs()),
                    update = Pick(rng, UpdateVerbs()), agg = Pick(rng, AggregateVerbs()),
                    transfer = Pick(rng, TransferNames());

  const json actor_id = FieldSchema(d, A.fields[0]), item_id = FieldSchema(d, I.fields[0]),
             record_id = FieldSchema(d, R.fields[0]);
  const json actor_s = EntitySchema(d, kActor), item_s = EntitySchema(d, kItem), record_s = EntitySchema(d, kRecordRole);
  const std::string aid = A.fields[0].name, iid = I.fields[0].name, rid = R.fields[0].name;
  const std::string& s0 = d.life.states[0];
  const std::string& s1 = d.life.states[1];
  const std::string& s2 = d.life.states[2];
  auto policy = [&](PolicyKind k) -> std::string {
    const Policy* p = d.FindPolicy(k);
    return p ? " Policy: " + p->text : "";
  };
  // Writable record fields: the record's own optional fields (after the fixed ones) and notes/contact.
  auto record_optional = [&]() {
    json props = json::object();
    for (auto& f : R.fields) {
      if (f.kind == FieldKind::kId || f.kind == FieldKind::kRef || f.name == "status" || f.name == "date" ||
          f.name == "created_on" || f.name == "quantity" || f.name == "amount")
        continue;
      props[f.name] = FieldSchema(d, f);
    }
    return props;
  };
  const std::string rec_fields = FieldList(R, 3);
  const std::string act_fields = FieldList(A, 1);
  const std::string item_fields = FieldList(I, 1);

  // Evolved fields of each role (those after the fixed ones) make descriptions domain-specific: a
  // sub-domain's extra vocabulary is its own, so sibling sub-domains do not read the same.
  static constexpr size_t kFixed[3] = {7, 9, 10};
  auto extras = [&](int role) {
    const Entity& e = d.entities[role];
    std::string s;
    for (size_t i = kFixed[role]; i < e.fields.size(); ++i) {
      if (!s.empty()) s += i + 1 == e.fields.size() ? " and " : ", ";
      s += Words(e.fields[i].name);
    }
    return s;
  };
  auto flavor = [&](int role) -> std::string {
    const Entity& e = d.entities[role];
    std::string x = extras(role);
    if (x.empty()) return "";
    switch (rng.Below(5)) {
      case 0: return " In " + dn + ", every " + Words(e.name) + " also records " + x + ".";
      case 1: return " Besides the usual fields, " + Words(e.plural) + " here track " + x + ".";
      case 2: return " Each " + Words(e.name) + " of this " + d.category + " service carries " + x + ".";
      case 3: return " " + std::string(1, static_cast<char>(std::toupper(e.plural[0]))) + Words(e.plural.substr(1)) +
                     " returned by it include " + x + ".";
      default: return " Domain-specific " + Words(e.name) + " details: " + x + ".";
    }
  };
  std::vector<Op> ops;
  auto add = [&](OpKind k, int role, int stage, std::string name, std::string title, std::string desc, json in_s,
                 json out_s, bool ro, bool destr, bool idem) {
    Op o;
    o.kind = k;
    o.role = role;
    o.stage = stage;
    o.name = prefix + name;
    o.title = std::move(title);
    o.description = std::move(desc) + flavor(role == kActor && k == OpKind::kTransfer ? kActor : role) +
                    (k == OpKind::kAdvance || k == OpKind::kRefund || k == OpKind::kCancel || k == OpKind::kList ||
                             k == OpKind::kAggregate || k == OpKind::kTransfer
                         ? flavor(k == OpKind::kTransfer ? kRecordRole : kActor)
                         : "");
    o.input_schema = std::move(in_s);
    o.output_schema = std::move(out_s);
    o.read_only = ro;
    o.destructive = destr;
    o.idempotent = idem;
    ops.push_back(std::move(o));
  };

  const char* kGetForms[] = {"Return the full %E record of %D for a given %E id",
                             "Look up one %E in %D by its id and return every stored field",
                             "Fetch a single %E known to %D, identified by its %E id"};
  for (int r = 0; r < 3; ++r) {
    const Entity& e = d.entities[r];
    std::string form = kGetForms[rng.Below(3)];
    for (size_t p; (p = form.find("%E")) != std::string::npos;) form.replace(p, 2, Words(e.name));
    for (size_t p; (p = form.find("%D")) != std::string::npos;) form.replace(p, 2, dn);
    std::string desc = form + " (" + FieldList(e, 1) + "). Fails with not_found when the id is unknown.";
    add(OpKind::kGet, r, 0, get + "_" + e.name, "Get " + Words(e.name), desc,
        Obj({{e.fields[0].name, FieldSchema(d, e.fields[0])}}, {e.fields[0].name}), EntitySchema(d, r), true, false, true);
  }
  {
    json cls = FieldSchema(d, *I.Find("class"));
    json props = {{"class", cls},
                  {"max_price", {{"type", "number"}, {"minimum", 0}, {"description", "highest unit price"}}},
                  {"min_capacity", {{"type", "integer"}, {"minimum", 1}, {"description", "units needed per date"}}},
                  {"city", {{"type", "string"}, {"description", "exact city name"}}},
                  {"include_inactive", {{"type", "boolean"}, {"default", false}}},
                  {"limit", {{"type", "integer"}, {"minimum", 1}, {"maximum", 50}, {"default", 10}}}};
    json out = Obj({{I.plural, {{"type", "array"}, {"items", item_s}}}, {"count", {{"type", "integer"}, {"minimum", 0}}}},
                   {I.plural, "count"});
    std::string desc = rng.Bernoulli(0.5)
                           ? "Search the " + ip + " offered by " + dn + " by class, price ceiling, capacity and city; "
                                 "results are sorted by price then id."
                           : "Find " + ip + " at " + dn + " that match optional filters (class, max price, minimum capacity, city), "
                                 "cheapest first.";
    add(OpKind::kSearch, kItem, 0, search + "_" + I.plural, "Search " + ip, desc + " Only bookable ones unless include_inactive.",
        Obj(props, {}), out, true, false, true);
  }
  {
    json st = FieldSchema(d, *R.Find("status"));
    json props = {{aid, actor_id}, {"status", st}};
    json out = Obj({{R.plural, {{"type", "array"}, {"items", record_s}}}, {"count", {{"type", "integer"}, {"minimum", 0}}}},
                   {R.plural, "count"});
    add(OpKind::kList, kRecordRole, 0, list + "_" + R.plural, "List " + rp,
        "List every " + rn + " a " + an + " of " + dn + " holds, optionally only those in one status, ordered by date.",
        Obj(props, {aid}), out, true, false, true);
  }
  {
    json props = record_optional();
    props[aid] = actor_id;
    props[iid] = item_id;
    props["date"] = {{"type", "string"}, {"format", "date"}, {"description", "date of service, YYYY-MM-DD"}};
    props["quantity"] = {{"type", "integer"}, {"minimum", 1}, {"maximum", 10}};
    std::string desc = "Create a new " + rn + " at " + dn + " for a " + an + ": the amount (unit price x quantity) is "
                       "paid from the " + an + "'s balance and the " + rn + " starts as " + s0 + ". Optional: " +
                       rec_fields + ". Preconditions: the " + in + " is active, has capacity left on that date, the date "
                       "is not in the past, the balance covers the amount." +
                       policy(PolicyKind::kNoDoubleBooking) + policy(PolicyKind::kMaxAmount) +
                       policy(PolicyKind::kMaxActive) + policy(PolicyKind::kPremiumTier);
    add(OpKind::kCreate, kRecordRole, 0, d.life.create_verb + "_" + R.name, Words(d.life.create_verb) + " " + rn, desc,
        Obj(props, {aid, iid, "date", "quantity"}), record_s, false, false, false);
  }
  {
    json props = record_optional();
    props[rid] = record_id;
    props["date"] = {{"type", "string"}, {"format", "date"}};
    props["quantity"] = {{"type", "integer"}, {"minimum", 1}, {"maximum", 10}};
    json s = Obj(props, {rid});
    s["minProperties"] = 2;
    std::string desc = "Change the date, quantity or details (" + rec_fields + ") of a " + rn + " at " + dn +
                       " while it is " + s0 + " or " + s1 + "; a price difference is charged to or credited back to the " +
                       an + "'s balance. Fails with precondition_failed in any other status or when nothing changes." +
                       policy(PolicyKind::kNoDoubleBooking) + policy(PolicyKind::kMaxAmount);
    add(OpKind::kUpdate, kRecordRole, 0, update + "_" + R.name, "Update " + rn, desc, s, record_s, false, false, false);
  }
  for (int stage = 0; stage < 2; ++stage) {
    const std::string& verb = d.life.advance[stage];
    const std::string& from = d.life.states[stage];
    const std::string& to = d.life.states[stage + 1];
    add(OpKind::kAdvance, kRecordRole, stage, verb + "_" + R.name, Words(verb) + " " + rn,
        "Move a " + rn + " of " + dn + " from " + from + " to " + to + " (" + Words(verb) +
            "). Fails with precondition_failed unless it is currently " + from + ".",
        Obj({{rid, record_id}}, {rid}), record_s, false, false, false);
  }
  json money_out = Obj({{R.name, record_s}, {"refunded_amount", {{"type", "number"}, {"minimum", 0}}}},
                       {R.name, "refunded_amount"});
  {
    json reason = {{"type", "string"}, {"enum", {"customer_request", "schedule_change", "duplicate", "other"}}};
    add(OpKind::kCancel, kRecordRole, 0, d.life.cancel_verb + "_" + R.name, Words(d.life.cancel_verb) + " " + rn,
        Words(d.life.cancel_verb) + " a " + s0 + " or " + s1 + " " + rn + " at " + dn + "; the full amount goes back "
        "to the " + an + "'s balance and the status becomes cancelled." + policy(PolicyKind::kCancelNotice),
        Obj({{rid, record_id}, {"reason", reason}}, {rid, "reason"}), money_out, false, true, false);
  }
  add(OpKind::kRefund, kRecordRole, 0, d.life.refund_verb + "_" + R.name, Words(d.life.refund_verb) + " " + rn,
      Words(d.life.refund_verb) + " a " + s2 + " " + rn + " of " + dn + ": its amount is credited to the " + an +
          "'s balance and the status becomes refunded." + policy(PolicyKind::kRefundWindow),
      Obj({{rid, record_id}, {"comment", {{"type", "string"}, {"maxLength", 200}}}}, {rid}), money_out, false, true, false);
  {
    json party = Obj({{aid, actor_id}, {"balance", {{"type", "number"}}}}, {aid, "balance"});
    add(OpKind::kTransfer, kActor, 0, transfer, "Transfer credit",
        "Move prepaid credit from one " + an + "'s balance to another's within " + dn +
            ". Fails with precondition_failed when the sender's balance is too low or both ids are the same." +
            policy(PolicyKind::kTransferLimit),
        Obj({{"from_" + aid, actor_id}, {"to_" + aid, actor_id},
             {"amount", {{"type", "number"}, {"exclusiveMinimum", 0}, {"description", "amount to move"}}}},
            {"from_" + aid, "to_" + aid, "amount"}),
        Obj({{"from", party}, {"to", party}, {"amount", {{"type", "number"}}}}, {"from", "to", "amount"}), false, false,
        false);
  }
  {
    json group = {{"type", "string"}, {"enum", {"status", aid, iid}}};
    json bucket = Obj({{"count", {{"type", "integer"}, {"minimum", 0}}}, {"total_amount", {{"type", "number"}}}},
                      {"count", "total_amount"});
    json out = Obj({{"groups", {{"type", "object"}, {"additionalProperties", bucket}}},
                    {"count", {{"type", "integer"}, {"minimum", 0}}},
                    {"total_amount", {{"type", "number"}}}},
                   {"groups", "count", "total_amount"});
    add(OpKind::kAggregate, kRecordRole, 0, agg + "_" + R.plural, "Summarize " + rp,
        "Count the " + rp + " of " + dn + " and total their amounts, grouped by status, " + an + " or " + in +
            "; optionally only those of one " + an + " or one " + in + ".",
        Obj({{"group_by", group}, {aid, actor_id}, {iid, item_id}}, {"group_by"}), out, true, false, true);
  }
  {
    json props = json::object();
    for (auto& f : A.fields)
      if (f.kind != FieldKind::kId && f.name != "tier" && f.name != "balance" && f.name != "name")
        props[f.name] = FieldSchema(d, f);
    props[aid] = actor_id;
    json s = Obj(props, {aid});
    s["minProperties"] = 2;
    add(OpKind::kUpdateActor, kActor, 0, update + "_" + A.name + "_profile", "Update " + an + " profile",
        "Update the contact details and preferences of a " + an + " at " + dn + " (" + act_fields +
            "); name, tier and balance cannot be changed here.",
        s, actor_s, false, false, true);
  }
  (void)item_fields;
  // Names are unique within a domain by construction; the check guards vocabulary edits.
  std::set<std::string> seen;
  for (auto& o : ops) {
    while (!seen.insert(o.name).second) o.name += "_2";
  }
  d.ops = std::move(ops);
}

}  // namespace k2::toolgen::synth
