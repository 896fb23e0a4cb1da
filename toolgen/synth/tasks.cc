// Task generation, replay, verification and the tau2-bench export/import (see tasks.h).
#include "toolgen/synth/tasks.h"

#include <algorithm>
#include <functional>
#include <tuple>

#include "core/hash.h"
#include "core/rng.h"
#include "core/thread_pool.h"
#include "toolgen/synth/database.h"
#include "toolgen/synth/executor.h"

namespace k2::toolgen::synth {
namespace {

std::string Words(std::string s) {
  std::replace(s.begin(), s.end(), '_', ' ');
  return s;
}

std::string Money(const json& v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", static_cast<double>(MoneyCents(v)) / 100.0);
  return buf;
}

const char* kStyles[] = {
    "Terse and in a hurry; answers only what is asked.",
    "Polite and detail-oriented; double-checks amounts.",
    "Anxious; asks the agent to confirm before anything is changed.",
    "Chatty; mentions unrelated details but cooperates.",
    "Skeptical; wants the relevant rule quoted when told no.",
    "Formal; writes in complete sentences."};

// Builds one task step by step on a working copy of the database.
class Builder {
 public:
  Builder(const Domain& d, json db, Rng rng, std::string id, const TaskOptions& opt)
      : d_(d), opt_(opt), cur_(std::move(db)), r_(rng) {
    t_.id = std::move(id);
    t_.domain = d.path;
    t_.initial_db = cur_;
    CK_ = cur_["today"].get<std::string>();
    ParseDate(CK_, &today_);
  }

  Expected<Task> Run() {
    const Entity& A = d_.entities[kActor];
    std::vector<std::string> actors;
    for (auto& [id, a] : cur_[A.plural].items()) actors.push_back(id);
    actor_ = actors[r_.Below(actors.size())];
    const json a = cur_[A.plural][actor_];  // a copy: Gold() replaces cur_
    Gold(OpKind::kGet, kActor, json::object({{d_.ActorRef(), actor_}}));  // the agent identifies the caller first
    int goals = 1 + static_cast<int>(r_.Below(static_cast<uint64_t>(std::max(1, opt_.max_goals))));
    const std::vector<std::string>& kKinds = opt_.kinds.empty() ? TaskKinds() : opt_.kinds;
    for (int g = 0; g < goals; ++g) {
      for (int attempt = 0; attempt < 12; ++attempt) {
        const std::string& kind = kKinds[r_.Below(kKinds.size())];
        if (std::find(t_.scenarios.begin(), t_.scenarios.end(), kind) != t_.scenarios.end()) continue;
        if (TryGoal(kind)) {
          t_.scenarios.push_back(kind);
          break;
        }
      }
    }
    if (t_.scenarios.empty()) return NotFound(d_.path + ": no feasible sub-goal for " + actor_ + " in task " + t_.id);
    std::string name = a["name"];
    t_.persona = name + ", a " + a["tier"].get<std::string>() + "-tier " + Words(A.name) + " from " +
                 a["home"]["city"].get<std::string>() + ". " + kStyles[r_.Below(6)];
    t_.known_info = "You are " + name + ". Your " + Words(A.name) + " id is " + actor_ + " and your email is " +
                    a["email"].get<std::string>() + "." + known_;
    t_.unknown_info = unknown_;
    t_.reason_for_call = reason_;
    t_.task_instructions = "You contact " + d_.display + " support. " + instr_ +
                           " Do not invent ids or amounts. When everything is handled, end with ###STOP###.";
    t_.purpose = "Synthetic " + d_.display + " task: " + [&] {
      std::string s;
      for (auto& k : t_.scenarios) s += (s.empty() ? "" : ", ") + k;
      return s;
    }();
    for (auto& p : d_.policies) t_.relevant_policies.push_back(p.text);
    t_.expected_hash = StateHash(cur_);
    // Env assertions state the final value of every field a goal changed (a booking made and then
    // cancelled in the same task ends cancelled).
    for (auto& [coll, id, field] : asserts_) t_.env_assertions.push_back(Assert(coll, id, field, cur_[coll][id][field]));
    t_.difficulty = std::min(10, 1 + t_.steps + (t_.clarification ? 1 : 0) + (t_.refusal ? 2 : 0) +
                                     static_cast<int>(t_.actions.size()) / 3);
    if (t_.refusal) t_.reward_basis = {"DB", "COMMUNICATE", "NL_ASSERTION"};
    return t_;
  }

 private:
  // Executes a gold action on the working state; false (state untouched) if it fails or would violate
  // a policy per the reference checker.
  bool Gold(OpKind k, int role, json args, int stage = 0, CallResult* out = nullptr) {
    const Op* op = d_.FindOp(k, role, stage);
    if (!op) return false;
    if (!op->read_only && ViolatedPolicy(d_, *op, cur_, args)) return false;
    json trial = cur_;
    CallResult res = Execute(d_, *op, trial, args);
    if (!res.ok()) return false;
    cur_ = std::move(trial);
    Action act;
    act.action_id = t_.id + "/" + std::to_string(t_.actions.size());
    act.name = op->name;
    act.arguments = args;
    for (auto& [key, v] : args.items()) act.compare_args.push_back(key);
    t_.actions.push_back(std::move(act));
    if (!op->read_only) t_.steps++;
    if (out) *out = std::move(res);
    return true;
  }

  // A forbidden action: must fail with policy_violation here AND be flagged by the reference.
  bool Forbid(OpKind k, int role, json args) {
    const Op* op = d_.FindOp(k, role, 0);
    if (!op || !ViolatedPolicy(d_, *op, cur_, args)) return false;
    json trial = cur_;
    if (Execute(d_, *op, trial, args).error != "policy_violation") return false;
    Action act;
    act.action_id = t_.id + "/forbidden/" + std::to_string(t_.forbidden.size());
    act.after_actions = static_cast<int>(t_.actions.size());
    act.name = op->name;
    act.arguments = std::move(args);
    for (auto& [key, v] : act.arguments.items()) act.compare_args.push_back(key);
    t_.forbidden.push_back(std::move(act));
    t_.refusal = true;
    return true;
  }

  // Records of the actor matching `pred`, in id order.
  std::vector<std::string> Mine(const std::function<bool(const json&)>& pred) {
    std::vector<std::string> out;
    for (auto& [id, r] : cur_[d_.entities[kRecordRole].plural].items())
      if (r[d_.ActorRef()] == actor_ && pred(r)) out.push_back(id);
    return out;
  }
  int64_t Days(const json& s) {
    int64_t x = 0;
    ParseDate(s.get<std::string>(), &x);
    return x;
  }
  // Refers to a record either by id (known) or by item and date (the agent must list and find it).
  void ReferTo(const std::string& rid, const json& rec) {
    const std::string rn = Words(d_.entities[kRecordRole].name);
    const json& item = cur_[d_.entities[kItem].plural][rec[d_.ItemRef()].get<std::string>()];
    if (!t_.clarification && r_.Bernoulli(0.4)) {
      t_.clarification = true;
      unknown_ += (unknown_.empty() ? "" : " ") + std::string("You do not remember the ") + rn + " id of your " +
                  item["title"].get<std::string>() + " " + rn + " on " + rec["date"].get<std::string>() + ".";
      Gold(OpKind::kList, kRecordRole, json::object({{d_.ActorRef(), actor_}}));
    } else {
      known_ += " Your " + rn + " " + rid + " is for " + item["title"].get<std::string>() + " on " +
                rec["date"].get<std::string>() + ".";
      Gold(OpKind::kGet, kRecordRole, json::object({{d_.RecordRef(), rid}}));
    }
  }
  void Say(const std::string& reason, const std::string& instr) {
    reason_ += (reason_.empty() ? "" : " ") + reason;
    instr_ += (instr_.empty() ? "" : " ") + instr;
  }

  bool TryGoal(const std::string& kind) {
    const Entity& I = d_.entities[kItem];
    const std::string rn = Words(d_.entities[kRecordRole].name);
    const Lifecycle& L = d_.life;
    auto pick = [&](const std::vector<std::string>& v) { return v[r_.Below(v.size())]; };
    if (kind == "book" || kind == "refuse_book") {
      std::vector<std::string> items;
      for (auto& [id, it] : cur_[I.plural].items())
        if (it["active"].get<bool>()) items.push_back(id);
      if (items.empty()) return false;
      for (int tries = 0; tries < 6; ++tries) {
        std::string iid = pick(items);
        const json& it = cur_[I.plural][iid];
        std::string date = DateString(today_ + 3 + static_cast<int64_t>(r_.Below(40)));
        json args = {{d_.ActorRef(), actor_}, {d_.ItemRef(), iid}, {"date", date}, {"quantity", 1 + static_cast<int64_t>(r_.Below(2))}};
        json search = json::object({{"class", it["class"]}});
        std::string what = std::string("the ") + it["title"].get<std::string>() + " (" + Words(it["class"]) + ") for " +
                           date + ", quantity " + std::to_string(args["quantity"].get<int64_t>());
        if (kind == "book") {
          json trial = cur_;
          const Op* op = d_.FindOp(OpKind::kCreate, kRecordRole);
          if (ViolatedPolicy(d_, *op, cur_, args) || !Execute(d_, *op, trial, args).ok()) continue;
          Gold(OpKind::kSearch, kItem, search);
          CallResult res;
          if (!Gold(OpKind::kCreate, kRecordRole, args, 0, &res)) return false;
          t_.communicate_info.push_back(Money(res.value["amount"]));
          Say("You want to " + Words(L.create_verb) + " a " + rn + " for " + what + ".",
              "Ask to " + Words(L.create_verb) + " " + what + ", paid from your balance. You know the title and class, not the id.");
          asserts_.push_back({d_.entities[kRecordRole].plural, res.value[d_.RecordRef()], "status"});
          return true;
        }
        if (Forbid(OpKind::kCreate, kRecordRole, args)) {
          Gold(OpKind::kSearch, kItem, search);
          Say("You want to " + Words(L.create_verb) + " a " + rn + " for " + what + ".",
              "Ask to " + Words(L.create_verb) + " " + what + ". If the agent explains that a rule forbids it, accept and do not insist.");
          t_.nl_assertions.push_back("The agent declines to " + Words(L.create_verb) + " the " + rn + " and cites the rule: " +
                                     ViolatedPolicy(d_, *d_.FindOp(OpKind::kCreate, kRecordRole), cur_, args)->text);
          return true;
        }
      }
      return false;
    }
    if (kind == "cancel" || kind == "refuse_cancel") {
      const Policy* p = d_.FindPolicy(PolicyKind::kCancelNotice);
      int64_t n = p ? p->n : 0;
      auto ids = Mine([&](const json& r) {
        return L.IsActive(r["status"]) && ((Days(r["date"]) - today_ >= n) == (kind == "cancel"));
      });
      if (ids.empty()) return false;
      std::string rid = pick(ids);
      json rec = cur_[d_.entities[kRecordRole].plural][rid];
      static const std::vector<std::string> kReasons = {"customer_request", "schedule_change", "duplicate", "other"};
      std::string reason = kReasons[r_.Below(kReasons.size())];
      json args = {{d_.RecordRef(), rid}, {"reason", reason}};
      if (kind == "refuse_cancel") {
        if (!Forbid(OpKind::kCancel, kRecordRole, args)) return false;
        ReferTo(rid, rec);
        Say("You want to " + Words(L.cancel_verb) + " your " + rn + " on " + rec["date"].get<std::string>() + ".",
            "Ask to " + Words(L.cancel_verb) + " it. If told a rule forbids it, accept.");
        t_.nl_assertions.push_back("The agent does not " + Words(L.cancel_verb) + " " + rid + " and explains the notice rule.");
        return true;
      }
      ReferTo(rid, rec);
      CallResult res;
      if (!Gold(OpKind::kCancel, kRecordRole, args, 0, &res)) return false;
      t_.communicate_info.push_back(Money(res.value["refunded_amount"]));
      // The reason is a compared argument, so the user states it with the details (else only a guess
      // could match it).
      known_ += " The reason is " + Words(reason) + ".";
      Say("You want to " + Words(L.cancel_verb) + " your " + rn + " on " + rec["date"].get<std::string>() + ".",
          "Ask to " + Words(L.cancel_verb) + " it. Give the reason when the agent asks for your details: " + Words(reason) + ".");
      asserts_.push_back({d_.entities[kRecordRole].plural, rid, "status"});
      return true;
    }
    if (kind == "refund" || kind == "refuse_refund") {
      const Policy* p = d_.FindPolicy(PolicyKind::kRefundWindow);
      int64_t n = p ? p->n : 1 << 20;
      auto ids = Mine([&](const json& r) {
        return r["status"] == L.states[2] && ((today_ - Days(r["date"]) <= n) == (kind == "refund"));
      });
      if (ids.empty()) return false;
      std::string rid = pick(ids);
      json rec = cur_[d_.entities[kRecordRole].plural][rid];
      json args = json::object({{d_.RecordRef(), rid}});
      if (kind == "refuse_refund") {
        if (!Forbid(OpKind::kRefund, kRecordRole, args)) return false;
        ReferTo(rid, rec);
        Say("You want your " + rn + " on " + rec["date"].get<std::string>() + " " + Words(L.refund_verb) + "ed.",
            "Ask for a " + Words(L.refund_verb) + ". If told it is too late under the rules, accept.");
        t_.nl_assertions.push_back("The agent refuses to " + Words(L.refund_verb) + " " + rid + " and cites the " +
                                   std::to_string(n) + "-day window.");
        return true;
      }
      ReferTo(rid, rec);
      CallResult res;
      if (!Gold(OpKind::kRefund, kRecordRole, args, 0, &res)) return false;
      t_.communicate_info.push_back(Money(res.value["refunded_amount"]));
      Say("You want your " + rn + " on " + rec["date"].get<std::string>() + " " + Words(L.refund_verb) + "ed.",
          "Ask for a " + Words(L.refund_verb) + " and for the amount credited.");
      asserts_.push_back({d_.entities[kRecordRole].plural, rid, "status"});
      return true;
    }
    if (kind == "modify") {
      auto ids = Mine([&](const json& r) { return L.IsActive(r["status"]); });
      if (ids.empty()) return false;
      std::string rid = pick(ids);
      json rec = cur_[d_.entities[kRecordRole].plural][rid];
      std::string date = DateString(Days(rec["date"]) + 1 + static_cast<int64_t>(r_.Below(7)));
      json args = {{d_.RecordRef(), rid}, {"date", date}};
      json trial = cur_;
      const Op* op = d_.FindOp(OpKind::kUpdate, kRecordRole);
      if (ViolatedPolicy(d_, *op, cur_, args) || !Execute(d_, *op, trial, args).ok()) return false;
      ReferTo(rid, rec);
      if (!Gold(OpKind::kUpdate, kRecordRole, args)) return false;
      Say("You need to move your " + rn + " from " + rec["date"].get<std::string>() + " to " + date + ".",
          "Ask to move it to " + date + ".");
      asserts_.push_back({d_.entities[kRecordRole].plural, rid, "date"});
      return true;
    }
    if (kind == "transfer") {
      const Entity& A = d_.entities[kActor];
      std::vector<std::string> others;
      for (auto& [id, a] : cur_[A.plural].items())
        if (id != actor_) others.push_back(id);
      if (others.empty()) return false;
      std::string to = pick(others);
      int64_t bal = MoneyCents(cur_[A.plural][actor_]["balance"]);
      int64_t amount = 100 * (5 + static_cast<int64_t>(r_.Below(50)));
      if (const Policy* p = d_.FindPolicy(PolicyKind::kTransferLimit)) amount = std::min(amount, p->n);
      if (amount > bal || amount <= 0) return false;
      json args = {{"from_" + A.fields[0].name, actor_}, {"to_" + A.fields[0].name, to}, {"amount", MoneyJson(amount)}};
      CallResult res;
      if (!Gold(OpKind::kTransfer, kActor, args, 0, &res)) return false;
      t_.communicate_info.push_back(Money(res.value["from"]["balance"]));
      known_ += " The recipient's " + Words(A.name) + " id is " + to + ".";
      Say("You want to send " + Money(MoneyJson(amount)) + " of your credit to " +
              cur_[A.plural][to]["name"].get<std::string>() + ".",
          "Ask to transfer " + Money(MoneyJson(amount)) + " and ask for your remaining balance.");
      return true;
    }
    if (kind == "profile") {
      std::string email = "contact" + std::to_string(r_.Below(100000)) + "@example.org";
      if (!Gold(OpKind::kUpdateActor, kActor, {{d_.ActorRef(), actor_}, {"email", email}})) return false;
      // The new address is in the request itself: a policy cannot know it otherwise (the oracle reads it
      // from the gold plan, so dialogs that never said it taught SFT models to invent one).
      Say("You want to change your email address to " + email + ".", "Ask to change your email to " + email + ".");
      asserts_.push_back({d_.entities[kActor].plural, actor_, "email"});
      return true;
    }
    if (kind == "report") {
      json args = {{"group_by", "status"}, {d_.ActorRef(), actor_}}, trial = cur_;
      const Op* op = d_.FindOp(OpKind::kAggregate, kRecordRole);
      CallResult probe = Execute(d_, *op, trial, args);
      if (!probe.ok() || probe.value["count"].get<int64_t>() == 0) return false;  // nothing to report
      CallResult res;
      if (!Gold(OpKind::kAggregate, kRecordRole, args, 0, &res)) return false;
      t_.communicate_info.push_back(Money(res.value["total_amount"]));
      Say("You want to know how much you have spent on " + Words(d_.entities[kRecordRole].plural) + " in total.",
          "Ask for the total amount of all your " + Words(d_.entities[kRecordRole].plural) + ".");
      return true;
    }
    return false;
  }

  static json Assert(const std::string& coll, const json& id, const std::string& field, const json& value) {
    return {{"env_type", "assistant"},
            {"func_name", "field_equals"},
            {"arguments", {{"collection", coll}, {"id", id}, {"field", field}, {"value", value}}},
            {"assert_value", true}};
  }

  const Domain& d_;
  const TaskOptions& opt_;
  json cur_;
  Rng r_;
  Task t_;
  std::string CK_;
  int64_t today_ = 0;
  std::string actor_, known_, unknown_, reason_, instr_;
  std::vector<std::tuple<std::string, std::string, std::string>> asserts_;
};

}  // namespace

const std::vector<std::string>& TaskKinds() {
  static const std::vector<std::string> kKinds = {"book",     "cancel",  "modify", "refund",        "transfer",
                                                  "profile",  "report",  "refuse_refund", "refuse_cancel",
                                                  "refuse_book"};
  return kKinds;
}

Expected<Task> GenerateTask(const Domain& d, uint64_t seed, const std::string& id, const TaskOptions& opt) {
  for (const auto& k : opt.kinds)
    if (std::find(TaskKinds().begin(), TaskKinds().end(), k) == TaskKinds().end())
      return InvalidArgument("task kind '" + k + "' is not one of the sub-goal kinds (see toolgen_synth.task_kinds)");
  Rng r(seed);
  json db = GenerateDatabase(d, r.Next());
  return Builder(d, std::move(db), r.Fork("task"), id, opt).Run();
}

std::vector<Task> GenerateTasks(const std::vector<Domain>& domains, uint64_t seed, int64_t count, ThreadPool* pool,
                                const TaskOptions& opt) {
  std::vector<std::optional<Task>> slots(count);
  auto one = [&](int64_t i) {
    const Domain& d = domains[i % domains.size()];
    for (int attempt = 0; attempt < 8; ++attempt) {
      uint64_t s = Rng(seed).Fork(d.path + "/task/" + std::to_string(i) + "/" + std::to_string(attempt)).Next();
      auto t = GenerateTask(d, s, d.path + "/task-" + std::to_string(i), opt);
      if (t.ok()) {
        slots[i] = std::move(*t);
        return;
      }
    }
  };
  if (pool) pool->ParallelFor(count, one, 16);
  else
    for (int64_t i = 0; i < count; ++i) one(i);
  std::vector<Task> out;
  for (auto& s : slots)
    if (s) out.push_back(std::move(*s));
  return out;
}

Expected<std::string> ReplayHash(const Domain& d, const Task& t) {
  json db = t.initial_db;
  for (size_t i = 0; i < t.actions.size(); ++i) {
    const Op* op = d.FindOp(t.actions[i].name);
    if (!op) return NotFound(t.id + ": actions[" + std::to_string(i) + "]: unknown tool " + t.actions[i].name);
    CallResult r = Execute(d, *op, db, t.actions[i].arguments);
    if (!r.ok())
      return FailedPrecondition(t.id + ": actions[" + std::to_string(i) + "] " + op->name + ": " + r.error + ": " + r.message);
  }
  return StateHash(db);
}

Expected<bool> CheckEnvAssertion(const json& db, const json& a) {
  if (!a.is_object() || a.value("func_name", "") != "field_equals" || !a.contains("arguments"))
    return InvalidArgument("env assertion: expected func_name \"field_equals\" with arguments");
  const json& args = a["arguments"];
  for (const char* k : {"collection", "id", "field", "value"})
    if (!args.is_object() || !args.contains(k) || (std::string(k) != "value" && !args[k].is_string()))
      return InvalidArgument(std::string("env assertion: arguments.") + k + ": expected string");
  if (a.contains("assert_value") && !a["assert_value"].is_boolean())
    return InvalidArgument("env assertion: assert_value: expected boolean");
  auto c = db.find(args["collection"].get<std::string>());
  if (c == db.end()) return NotFound("env assertion: no collection " + args["collection"].dump());
  auto r = c->find(args["id"].get<std::string>());
  bool holds = r != c->end() && r->contains(args["field"].get<std::string>()) &&
               (*r)[args["field"].get<std::string>()] == args["value"];
  return holds == a.value("assert_value", true);
}

Status VerifyTask(const Domain& d, const Task& t) {
  K2_RETURN_IF_ERROR(CheckInvariants(d, t.initial_db).Context(t.id + ": initial state"));
  for (auto& f : t.forbidden) {
    if (!d.FindOp(f.name)) return NotFound(t.id + ": unknown forbidden tool " + f.name);
    if (f.after_actions < 0 || f.after_actions > static_cast<int>(t.actions.size()))
      return InvalidArgument(t.id + ": forbidden action " + f.action_id + ": after_actions out of range");
  }
  json db = t.initial_db;
  for (size_t i = 0; i <= t.actions.size(); ++i) {
    // Each forbidden action violates a policy on the state where the user asks for it.
    for (auto& f : t.forbidden)
      if (f.after_actions == static_cast<int>(i) && !ViolatedPolicy(d, *d.FindOp(f.name), db, f.arguments))
        return FailedPrecondition(t.id + ": forbidden action " + f.name + " violates no policy");
    if (i == t.actions.size()) break;
    const Op* op = d.FindOp(t.actions[i].name);
    if (!op) return NotFound(t.id + ": unknown tool " + t.actions[i].name);
    if (const Policy* p = ViolatedPolicy(d, *op, db, t.actions[i].arguments))
      return FailedPrecondition(t.id + ": gold actions[" + std::to_string(i) + "] violates policy: " + p->text);
    CallResult r = Execute(d, *op, db, t.actions[i].arguments);
    if (!r.ok()) return FailedPrecondition(t.id + ": gold actions[" + std::to_string(i) + "]: " + r.message);
  }
  if (StateHash(db) != t.expected_hash) return FailedPrecondition(t.id + ": replayed state hash differs from expected_hash");
  K2_RETURN_IF_ERROR(CheckInvariants(d, db).Context(t.id + ": final state"));
  for (auto& a : t.env_assertions) {
    K2_ASSIGN_OR_RETURN(bool ok, CheckEnvAssertion(db, a));
    if (!ok) return FailedPrecondition(t.id + ": env assertion fails: " + a.dump());
  }
  return Status::Ok();
}

namespace {

json ActionJson(const Action& a) {
  json j = {{"action_id", a.action_id}, {"requestor", a.requestor}, {"name", a.name},
            {"arguments", a.arguments}, {"compare_args", a.compare_args}};
  if (a.after_actions >= 0) j["after_actions"] = a.after_actions;
  return j;
}

Status Need(const json& j, const char* key, const std::string& where, json::value_t type) {
  if (!j.is_object() || !j.contains(key)) return InvalidArgument(where + "/" + key + ": missing");
  if (j[key].type() != type &&
      !(type == json::value_t::number_integer && j[key].type() == json::value_t::number_unsigned))
    return InvalidArgument(where + "/" + key + ": expected " + (type == json::value_t::string ? "string"
                                                                 : type == json::value_t::array ? "array"
                                                                 : type == json::value_t::object ? "object"
                                                                 : type == json::value_t::boolean ? "boolean"
                                                                                                   : "integer") +
                           ", got " + JsonTypeName(j[key]));
  return Status::Ok();
}

Expected<std::vector<std::string>> Strings(const json& j, const char* key, const std::string& where) {
  K2_RETURN_IF_ERROR(Need(j, key, where, json::value_t::array));
  std::vector<std::string> out;
  for (size_t i = 0; i < j[key].size(); ++i) {
    if (!j[key][i].is_string()) return InvalidArgument(where + "/" + key + "/" + std::to_string(i) + ": expected string");
    out.push_back(j[key][i]);
  }
  return out;
}

Expected<std::vector<Action>> Actions(const json& arr, const std::string& where) {
  if (!arr.is_array()) return InvalidArgument(where + ": expected array");
  std::vector<Action> out;
  for (size_t i = 0; i < arr.size(); ++i) {
    std::string w = where + "/" + std::to_string(i);
    const json& a = arr[i];
    for (const char* k : {"action_id", "requestor", "name"}) K2_RETURN_IF_ERROR(Need(a, k, w, json::value_t::string));
    K2_RETURN_IF_ERROR(Need(a, "arguments", w, json::value_t::object));
    Action x;
    x.action_id = a["action_id"];
    x.requestor = a["requestor"];
    x.name = a["name"];
    x.arguments = a["arguments"];
    if (a.contains("compare_args") && !a["compare_args"].is_null()) {
      K2_ASSIGN_OR_RETURN(x.compare_args, Strings(a, "compare_args", w));
    }
    if (a.contains("after_actions")) {
      K2_RETURN_IF_ERROR(Need(a, "after_actions", w, json::value_t::number_integer));
      x.after_actions = a["after_actions"].get<int>();
    }
    out.push_back(std::move(x));
  }
  return out;
}

constexpr const char* kMarker = "k2gym:";

}  // namespace

json ToTau2(const Task& t) {
  json actions = json::array(), forbidden = json::array();
  for (auto& a : t.actions) actions.push_back(ActionJson(a));
  for (auto& a : t.forbidden) forbidden.push_back(ActionJson(a));
  json meta = {{"domain", t.domain},       {"expected_hash", t.expected_hash}, {"forbidden_actions", forbidden},
               {"difficulty", t.difficulty}, {"steps", t.steps},             {"clarification", t.clarification},
               {"refusal", t.refusal},     {"scenarios", t.scenarios}};
  std::string policies;
  for (auto& p : t.relevant_policies) policies += (policies.empty() ? "" : "\n") + p;
  return {
      {"id", t.id},
      {"description", {{"purpose", t.purpose}, {"relevant_policies", policies}, {"notes", kMarker + CanonicalJson(meta)}}},
      {"user_scenario",
       {{"persona", t.persona},
        {"instructions",
         {{"domain", t.domain},
          {"reason_for_call", t.reason_for_call},
          {"known_info", t.known_info},
          {"unknown_info", t.unknown_info.empty() ? json(nullptr) : json(t.unknown_info)},
          {"task_instructions", t.task_instructions}}}}},
      {"initial_state",
       {{"initialization_data", {{"agent_data", t.initial_db}, {"user_data", nullptr}}},
        {"initialization_actions", json::array()},
        {"message_history", json::array()}}},
      {"evaluation_criteria",
       {{"actions", actions},
        {"env_assertions", t.env_assertions},
        {"communicate_info", t.communicate_info},
        {"nl_assertions", t.nl_assertions},
        {"reward_basis", t.reward_basis}}}};
}

Expected<Task> TaskFromTau2(const json& j, const std::string& where) {
  using V = json::value_t;
  Task t;
  K2_RETURN_IF_ERROR(Need(j, "id", where, V::string));
  t.id = j["id"];
  K2_RETURN_IF_ERROR(Need(j, "description", where, V::object));
  const json& desc = j["description"];
  std::string w = where + "/description";
  for (const char* k : {"purpose", "relevant_policies", "notes"}) K2_RETURN_IF_ERROR(Need(desc, k, w, V::string));
  t.purpose = desc["purpose"];
  std::string pol = desc["relevant_policies"];
  for (size_t a = 0; !pol.empty() && a <= pol.size();) {
    size_t b = pol.find('\n', a);
    if (b == std::string::npos) b = pol.size();
    t.relevant_policies.push_back(pol.substr(a, b - a));
    a = b + 1;
  }
  std::string notes = desc["notes"];
  if (notes.rfind(kMarker, 0) != 0) return InvalidArgument(w + "/notes: expected \"" + kMarker + "{...}\" (k2gym metadata)");
  K2_ASSIGN_OR_RETURN(json meta, ParseJson(notes.substr(std::string(kMarker).size()), w + "/notes"));
  w += "/notes";
  for (const char* k : {"domain", "expected_hash"}) K2_RETURN_IF_ERROR(Need(meta, k, w, V::string));
  for (const char* k : {"difficulty", "steps"}) K2_RETURN_IF_ERROR(Need(meta, k, w, V::number_integer));
  for (const char* k : {"clarification", "refusal"}) K2_RETURN_IF_ERROR(Need(meta, k, w, V::boolean));
  t.domain = meta["domain"];
  t.expected_hash = meta["expected_hash"];
  t.difficulty = meta["difficulty"];
  t.steps = meta["steps"];
  t.clarification = meta["clarification"];
  t.refusal = meta["refusal"];
  K2_ASSIGN_OR_RETURN(t.scenarios, Strings(meta, "scenarios", w));
  K2_RETURN_IF_ERROR(Need(meta, "forbidden_actions", w, V::array));
  K2_ASSIGN_OR_RETURN(t.forbidden, Actions(meta["forbidden_actions"], w + "/forbidden_actions"));

  K2_RETURN_IF_ERROR(Need(j, "user_scenario", where, V::object));
  w = where + "/user_scenario";
  const json& us = j["user_scenario"];
  K2_RETURN_IF_ERROR(Need(us, "persona", w, V::string));
  t.persona = us["persona"];
  K2_RETURN_IF_ERROR(Need(us, "instructions", w, V::object));
  const json& in = us["instructions"];
  w += "/instructions";
  for (const char* k : {"domain", "reason_for_call", "known_info", "task_instructions"}) K2_RETURN_IF_ERROR(Need(in, k, w, V::string));
  if (in["domain"] != t.domain) return InvalidArgument(w + "/domain: differs from the k2gym metadata domain " + t.domain);
  t.reason_for_call = in["reason_for_call"];
  t.known_info = in["known_info"];
  t.task_instructions = in["task_instructions"];
  if (in.contains("unknown_info") && !in["unknown_info"].is_null()) {
    K2_RETURN_IF_ERROR(Need(in, "unknown_info", w, V::string));
    t.unknown_info = in["unknown_info"];
  }
  K2_RETURN_IF_ERROR(Need(j, "initial_state", where, V::object));
  w = where + "/initial_state";
  K2_RETURN_IF_ERROR(Need(j["initial_state"], "initialization_data", w, V::object));
  K2_RETURN_IF_ERROR(Need(j["initial_state"]["initialization_data"], "agent_data", w + "/initialization_data", V::object));
  t.initial_db = j["initial_state"]["initialization_data"]["agent_data"];
  K2_RETURN_IF_ERROR(Need(j, "evaluation_criteria", where, V::object));
  const json& ec = j["evaluation_criteria"];
  w = where + "/evaluation_criteria";
  K2_RETURN_IF_ERROR(Need(ec, "actions", w, V::array));
  K2_ASSIGN_OR_RETURN(t.actions, Actions(ec["actions"], w + "/actions"));
  K2_RETURN_IF_ERROR(Need(ec, "env_assertions", w, V::array));
  t.env_assertions = ec["env_assertions"];
  K2_ASSIGN_OR_RETURN(t.communicate_info, Strings(ec, "communicate_info", w));
  K2_ASSIGN_OR_RETURN(t.nl_assertions, Strings(ec, "nl_assertions", w));
  K2_ASSIGN_OR_RETURN(t.reward_basis, Strings(ec, "reward_basis", w));
  static const std::vector<std::string> kBasis = {"DB", "ENV_ASSERTION", "NL_ASSERTION", "ACTION", "COMMUNICATE"};
  for (size_t i = 0; i < t.reward_basis.size(); ++i)
    if (std::find(kBasis.begin(), kBasis.end(), t.reward_basis[i]) == kBasis.end())
      return InvalidArgument(w + "/reward_basis/" + std::to_string(i) + ": expected one of DB, ENV_ASSERTION, NL_ASSERTION, ACTION, COMMUNICATE");
  return t;
}

bool IsHeldOutDomain(const std::string& path) {
  std::string h = Sha256Hex("k2gym/heldout/" + path);
  return std::stoull(h.substr(0, 8), nullptr, 16) % 8 == 0;
}

std::vector<Domain> TrainingDomains(const std::vector<Domain>& domains, int64_t* excluded) {
  std::vector<Domain> out;
  for (auto& d : domains)
    if (!IsHeldOutDomain(d.path)) out.push_back(d);
  if (excluded) *excluded = static_cast<int64_t>(domains.size() - out.size());
  return out;
}

std::vector<Task> TrainingTasks(std::vector<Task> tasks, int64_t* excluded) {
  const size_t before = tasks.size();
  std::erase_if(tasks, [](const Task& t) { return IsHeldOutDomain(t.domain); });
  if (excluded) *excluded = static_cast<int64_t>(before - tasks.size());
  return tasks;
}

}  // namespace k2::toolgen::synth
