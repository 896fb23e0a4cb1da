// Executable semantics: every synthetic tool runs against its generated database through success and
// error paths; results conform to the output schemas; errors leave the state untouched; the
// executor's policy decisions agree with the independent reference; faults are seeded.
#include <gtest/gtest.h>

#include <map>

#include "core/thread_pool.h"
#include "toolgen/schema.h"
#include "toolgen/synth/sample.h"
#include "toolgen/synth/synth.h"

namespace k2::toolgen::synth {
namespace {

struct Seen {
  int ok = 0, semantic_error = 0, invalid = 0;
};

// Randomized operation sequences against each domain database, checked after every step (leveldb
// habit): conformance of arguments and results to the schemas, invariants, atomicity of errors, and
// agreement with the policy reference.
TEST(Executor, EveryToolSucceedsAndFailsRealisticallyAgainstItsDatabase) {
  ThreadPool pool(2);
  Catalog cat = Synthesize(21, 1400, &pool);
  std::vector<std::map<std::string, Seen>> seen(cat.domains.size());
  std::vector<std::string> failures(cat.domains.size());
  pool.ParallelFor(static_cast<int64_t>(cat.domains.size()), [&](int64_t di) {
    const Domain& d = *cat.domains[di];
    json db = cat.databases[di];
    Rng rng(1000 + di);
    std::map<std::string, std::pair<std::shared_ptr<const Schema>, std::shared_ptr<const Schema>>> schemas;
    for (auto& op : d.ops)
      schemas[op.name] = {*Schema::Compile(op.input_schema, op.name), *Schema::Compile(op.output_schema, op.name)};
    auto fail = [&](const std::string& m) {
      if (failures[di].empty()) failures[di] = d.path + ": " + m;
    };
    auto run = [&](const Op& op, const json& args) {
      if (Status s = schemas[op.name].first->Validate(args); !s.ok()) fail(op.name + " sampled args: " + s.ToString());
      const Policy* ref = op.read_only ? nullptr : ViolatedPolicy(d, op, db, args);
      json before = db;
      CallResult r = Execute(d, op, db, args);
      Seen& s = seen[di][op.name];
      if (r.ok()) {
        ++s.ok;
        if (Status v = schemas[op.name].second->Validate(r.value); !v.ok()) fail(op.name + " result: " + v.ToString());
        if (ref) fail(op.name + " succeeded although the reference finds a violation of " + ref->text);
        if (op.read_only && db != before) fail(op.name + " is read-only but changed the state");
        if (Status inv = CheckInvariants(d, db); !inv.ok()) fail(op.name + " broke an invariant: " + inv.ToString());
      } else {
        ++s.semantic_error;
        if (db != before) fail(op.name + " failed (" + r.error + ") but changed the state");
        if (r.error == "policy_violation" && !ref) fail(op.name + " policy_violation the reference does not see: " + r.message);
        if (r.error == "invalid_arguments") fail(op.name + " rejected schema-valid arguments: " + r.message);
      }
      return r.ok();
    };
    // Random phase: every tool in turn on the evolving state.
    for (int step = 0; step < 16 * static_cast<int>(d.ops.size()); ++step) {
      const Op& op = d.ops[step % d.ops.size()];
      json args = SampleArguments(d, op, db, rng);
      run(op, args);
      // Invalid arguments: an unknown key is rejected by the schema and by the executor alike.
      if (step < static_cast<int>(d.ops.size())) {
        json bad = args;
        bad["unexpected_key"] = 1;
        if (schemas[op.name].first->Validate(bad).ok()) fail(op.name + " schema accepted an unknown key");
        CallResult e = Execute(d, op, db, bad);
        if (e.error != "invalid_arguments") fail(op.name + " accepted an unknown key");
        ++seen[di][op.name].invalid;
      }
    }
    // Directed phase: a tool that has not succeeded yet is retried while creates and lifecycle moves
    // produce the states it needs (a refund needs a completed record, for instance).
    const Op* prep[] = {d.FindOp(OpKind::kCreate), d.FindOp(OpKind::kAdvance, -1, 0), d.FindOp(OpKind::kAdvance, -1, 1)};
    for (auto& op : d.ops) {
      for (int k = 0; k < 400 && seen[di][op.name].ok == 0; ++k) {
        if (!run(op, SampleArguments(d, op, db, rng))) {
          const Op& p = *prep[k % 3];
          run(p, SampleArguments(d, p, db, rng));
        }
      }
      // Error path: every id argument can name an unknown entity.
      json args = SampleArguments(d, op, db, rng);
      if (op.kind == OpKind::kAggregate) args[d.ActorRef()] = db[d.entities[kActor].plural].begin().key();
      for (auto& [key, v] : args.items()) {
        if (v.is_string() && key.size() > 3 && key.compare(key.size() - 3, 3, "_id") == 0) {
          std::string unknown = v.get<std::string>().substr(0, v.get<std::string>().find('-')) + "-777777";
          args[key] = unknown;
          json before = db;
          CallResult r = Execute(d, op, db, args);
          if (r.error != "not_found") fail(op.name + " with unknown " + key + ": expected not_found, got " + r.error);
          if (db != before) fail(op.name + " changed the state on not_found");
          ++seen[di][op.name].semantic_error;
          break;
        }
      }
    }
  });
  for (auto& f : failures) EXPECT_TRUE(f.empty()) << f;
  for (size_t di = 0; di < cat.domains.size(); ++di) {
    for (auto& op : cat.domains[di]->ops) {
      const Seen& s = seen[di][op.name];
      EXPECT_GT(s.ok, 0) << cat.domains[di]->path << " " << op.name << " never succeeded";
      EXPECT_GT(s.invalid, 0) << op.name;
      if (op.kind != OpKind::kSearch) {
        EXPECT_GT(s.semantic_error, 0) << cat.domains[di]->path << " " << op.name << " never hit an error path";
      }
    }
  }
}

class HotelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    d_ = BuildDomain(*KeyFromPath("hospitality/hotel/boutique-nordic"), 4);
    db_ = GenerateDatabase(d_, 4);
    ParseDate(db_["today"], &today_);
    A_ = d_.entities[kActor].plural;
    I_ = d_.entities[kItem].plural;
    R_ = d_.entities[kRecordRole].plural;
    actor_ = db_[A_].begin().key();
    item_ = db_[I_].begin().key();
    db_[I_][item_]["active"] = true;
    db_[I_][item_]["premium"] = false;
    db_[I_][item_]["capacity"] = 3;
    db_[I_][item_]["price"] = 40.5;
    db_[A_][actor_]["balance"] = 1000.0;
    // A clean slate of records for the actor keeps the expectations below exact.
    for (auto it = db_[R_].begin(); it != db_[R_].end();)
      it = (*it)[d_.ActorRef()] == actor_ || (*it)[d_.ItemRef()] == item_ ? db_[R_].erase(it) : std::next(it);
  }
  CallResult Call(OpKind k, json args, int stage = 0) { return Execute(d_, *d_.FindOp(k, -1, stage), db_, args); }
  json CreateArgs(int64_t in_days, int qty = 1) {
    return {{d_.ActorRef(), actor_}, {d_.ItemRef(), item_}, {"date", DateString(today_ + in_days)}, {"quantity", qty}};
  }
  Domain d_;
  json db_;
  int64_t today_ = 0;
  std::string A_, I_, R_, actor_, item_;
};

TEST_F(HotelTest, CreateChargesBalanceAndCancelRefundsIt) {
  CallResult c = Call(OpKind::kCreate, CreateArgs(30, 2));
  ASSERT_TRUE(c.ok()) << c.message;
  EXPECT_EQ(c.value["status"], d_.life.states[0]);
  EXPECT_EQ(MoneyCents(c.value["amount"]), 8100);
  EXPECT_EQ(MoneyCents(db_[A_][actor_]["balance"]), 100000 - 8100);
  std::string rid = c.value[d_.RecordRef()];
  CallResult x = Call(OpKind::kCancel, {{d_.RecordRef(), rid}, {"reason", "schedule_change"}});
  ASSERT_TRUE(x.ok()) << x.message;
  EXPECT_EQ(MoneyCents(x.value["refunded_amount"]), 8100);
  EXPECT_EQ(MoneyCents(db_[A_][actor_]["balance"]), 100000);
  EXPECT_EQ(db_[R_][rid]["status"], "cancelled");
  CallResult again = Call(OpKind::kCancel, {{d_.RecordRef(), rid}, {"reason", "other"}});
  EXPECT_EQ(again.error, "precondition_failed");
}

TEST_F(HotelTest, RealisticErrors) {
  CallResult nf = Execute(d_, *d_.FindOp(OpKind::kGet, kRecordRole), db_, json::object({{d_.RecordRef(), d_.entities[kRecordRole].id_prefix + "-1"}}));
  EXPECT_EQ(nf.error, "not_found") << nf.message;
  EXPECT_EQ(Call(OpKind::kCreate, CreateArgs(-1)).error, "precondition_failed") << "date in the past";
  EXPECT_EQ(Call(OpKind::kCreate, CreateArgs(5, 4)).error, "precondition_failed") << "capacity 3";
  db_[A_][actor_]["balance"] = 10.0;
  EXPECT_EQ(Call(OpKind::kCreate, CreateArgs(5)).error, "precondition_failed") << "insufficient balance";
  json bad = CreateArgs(5);
  bad["date"] = "2026-02-30";
  EXPECT_EQ(Call(OpKind::kCreate, bad).error, "invalid_arguments");
  bad = CreateArgs(5);
  bad.erase("quantity");
  EXPECT_EQ(Call(OpKind::kCreate, bad).error, "invalid_arguments");
  EXPECT_EQ(Execute(d_, *d_.FindOp(OpKind::kCreate), db_, json::array()).error, "invalid_arguments");
}

TEST_F(HotelTest, PoliciesAreEnforced) {
  const Policy* notice = d_.FindPolicy(PolicyKind::kCancelNotice);
  const Policy* window = d_.FindPolicy(PolicyKind::kRefundWindow);
  ASSERT_TRUE(notice && window);
  // Cancel notice: a record dated sooner than the notice period cannot be cancelled.
  CallResult soon = Call(OpKind::kCreate, CreateArgs(notice->n - 1 >= 0 ? notice->n - 1 : 0));
  ASSERT_TRUE(soon.ok()) << soon.message;
  CallResult x = Call(OpKind::kCancel, {{d_.RecordRef(), soon.value[d_.RecordRef()]}, {"reason", "other"}});
  EXPECT_EQ(x.error, "policy_violation");
  EXPECT_EQ(x.message, notice->text);
  // Refund window: a completed record older than the window cannot be refunded; a recent one can.
  json rec = soon.value;
  std::string rid = rec[d_.RecordRef()];
  db_[R_][rid]["status"] = d_.life.states[2];
  db_[R_][rid]["date"] = DateString(today_ - window->n - 1);
  EXPECT_EQ(Call(OpKind::kRefund, json::object({{d_.RecordRef(), rid}})).error, "policy_violation");
  db_[R_][rid]["date"] = DateString(today_ - window->n);
  EXPECT_TRUE(Call(OpKind::kRefund, json::object({{d_.RecordRef(), rid}})).ok());
  // Transfer limit.
  const Policy* limit = d_.FindPolicy(PolicyKind::kTransferLimit);
  ASSERT_TRUE(limit);
  std::string other = std::next(db_[A_].begin()).key();
  db_[A_][actor_]["balance"] = MoneyJson(limit->n * 2);
  const std::string idf = d_.entities[kActor].fields[0].name;
  EXPECT_EQ(Call(OpKind::kTransfer, {{"from_" + idf, actor_}, {"to_" + idf, other}, {"amount", MoneyJson(limit->n + 1)}}).error,
            "policy_violation");
  EXPECT_TRUE(Call(OpKind::kTransfer, {{"from_" + idf, actor_}, {"to_" + idf, other}, {"amount", MoneyJson(limit->n)}}).ok());
  EXPECT_EQ(Call(OpKind::kTransfer, {{"from_" + idf, actor_}, {"to_" + idf, actor_}, {"amount", 1}}).error, "precondition_failed");
}

TEST_F(HotelTest, NoDoubleBookingWhenThePolicyExists) {
  bool has = d_.FindPolicy(PolicyKind::kNoDoubleBooking) != nullptr;
  ASSERT_TRUE(Call(OpKind::kCreate, CreateArgs(20)).ok());
  CallResult second = Call(OpKind::kCreate, CreateArgs(20));
  const Policy* max_active = d_.FindPolicy(PolicyKind::kMaxActive);
  if (has) {
    EXPECT_EQ(second.error, "policy_violation");
  } else if (!max_active || max_active->n > 1) {
    EXPECT_TRUE(second.ok()) << second.message;
  }
}

TEST_F(HotelTest, LifecycleAdvancesInOrder) {
  CallResult c = Call(OpKind::kCreate, CreateArgs(30));
  ASSERT_TRUE(c.ok());
  json id = json::object({{d_.RecordRef(), c.value[d_.RecordRef()]}});
  EXPECT_EQ(Call(OpKind::kAdvance, id, 1).error, "precondition_failed");
  EXPECT_EQ(Call(OpKind::kAdvance, id, 0).value["status"], d_.life.states[1]);
  EXPECT_EQ(Call(OpKind::kAdvance, id, 1).value["status"], d_.life.states[2]);
  EXPECT_EQ(Call(OpKind::kCancel, {{d_.RecordRef(), c.value[d_.RecordRef()]}, {"reason", "other"}}).error, "precondition_failed");
}

TEST(ToolSimulator, FaultsAreSeededAtTheConfiguredRatesAndChangeNothing) {
  auto d = std::make_shared<Domain>(BuildDomain(*KeyFromPath("retail/books/budget-nordic"), 9));
  json db = GenerateDatabase(*d, 9);
  const Op& get = *d->FindOp(OpKind::kGet, kActor);
  json args = json::object({{d->ActorRef(), db[d->entities[kActor].plural].begin().key()}});
  ToolSimulator a(d, db, {.transient_rate = 0.2, .timeout_rate = 0.1}, 77), b(d, db, {.transient_rate = 0.2, .timeout_rate = 0.1}, 77);
  std::map<std::string, int> counts;
  std::string pattern_a, pattern_b;
  const int n = 5000;
  for (int i = 0; i < n; ++i) {
    CallResult ra = a.Call(get.name, args), rb = b.Call(get.name, args);
    counts[ra.error]++;
    pattern_a += ra.error.empty() ? '.' : ra.error[0];
    pattern_b += rb.error.empty() ? '.' : rb.error[0];
  }
  EXPECT_EQ(pattern_a, pattern_b);
  EXPECT_NEAR(counts["transient"] / double(n), 0.2, 0.03);
  EXPECT_NEAR(counts["timeout"] / double(n), 0.1, 0.03);
  EXPECT_EQ(counts[""] + counts["transient"] + counts["timeout"], n);
  EXPECT_EQ(a.db(), db);
  ToolSimulator none(d, db, {}, 1);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(none.Call(get.name, args).ok());
  EXPECT_EQ(none.Call("no_such_tool", args).error, "not_found");
}

}  // namespace
}  // namespace k2::toolgen::synth
