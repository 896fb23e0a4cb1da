// τ²-style suites end to end with real components: synthetic world + tasks, the agents episode runner,
// the scripted user, and the tool verifier. Oracle scores 1.0 on every generated task, a random policy
// scores near 0, an oracle that skips one state-changing gold action scores 0 on every DB-basis task.
#include "eval/tau2_suite.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include <gtest/gtest.h>

#include "agents/scripted_policies.h"
#include "agents/scripted_user.h"
#include "core/hash.h"
#include "core/thread_pool.h"
#include "eval/passk.h"

namespace k2::eval {
namespace {

namespace synth = toolgen::synth;

// Wraps the oracle and replaces its first call of a state-changing gold action by a call to a tool that
// does not exist: the environment answers with an error, the oracle carries on with the rest of its plan.
class SkipOneWrite : public agents::Policy {
 public:
  explicit SkipOneWrite(std::shared_ptr<const agents::SyntheticWorld> w) : world_(std::move(w)) {}
  std::string name() const override { return "oracle-skip-one"; }
  Expected<agents::PolicyTurn> Act(const agents::PolicyRequest& r) override {
    K2_ASSIGN_OR_RETURN(agents::PolicyTurn t, inner_.Act(r));
    std::lock_guard<std::mutex> l(mu_);
    if (skipped_.count(r.session) || !r.task || !r.task->synth) return t;
    auto d = world_->Find(r.task->domain);
    for (auto& c : t.message.tool_calls) {
      const synth::Op* op = d ? d->FindOp(c.name) : nullptr;
      // The real gold call (same name and arguments), not the oracle's deliberate invalid attempt.
      auto args = c.ParsedArguments();
      bool gold = args && std::any_of(r.task->synth->actions.begin(), r.task->synth->actions.end(),
                                      [&](const synth::Action& a) { return a.name == c.name && a.arguments == *args; });
      if (op && !op->read_only && gold) {
        c.name = "skipped_" + c.name;
        skipped_.insert(r.session);
        break;
      }
    }
    return t;
  }
  void EndSession(const std::string& s) override { inner_.EndSession(s); }

 private:
  std::shared_ptr<const agents::SyntheticWorld> world_;
  agents::OracleTaskPolicy inner_;
  std::mutex mu_;
  std::set<std::string> skipped_;
};

Tau2Suite SmallSuite(ThreadPool* pool, int64_t tasks) {
  Tau2Suite s;
  s.name = "small";
  s.world = agents::SyntheticWorld::Generate(11, 300, pool);
  std::vector<synth::Domain> ds;
  for (auto& d : s.world->domains()) ds.push_back(*d);
  s.tasks = synth::GenerateTasks(ds, 5, tasks, pool);
  return s;
}

bool HasBasis(const synth::Task& t, const std::string& b) {
  return std::find(t.reward_basis.begin(), t.reward_basis.end(), b) != t.reward_basis.end();
}

TEST(Tau2Suite, OracleScoresOneOnEveryTaskAndRandomNearZero) {
  ThreadPool pool(2);
  Tau2Suite s = SmallSuite(&pool, 20);
  ASSERT_EQ(s.tasks.size(), 20u);
  agents::OracleTaskPolicy oracle;  // default imperfections: clarifying questions, a fixed error, distractors
  agents::ScriptedUser user;
  Tau2Options o;
  o.trials = 3;
  o.seed = 9;
  o.threads = 2;
  auto r = RunTau2Suite(s, oracle, user, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 60u);
  int nl = 0;
  for (auto& t : *r) {
    EXPECT_EQ(t.reward, 1.0) << t.task_id << " trial " << t.trial << " (" << t.end_reason << "):\n" << t.explanation;
    nl += t.components.count("nl_assertion_unjudged") ? 1 : 0;
  }
  // Per task: all 3 trials succeed -> pass^k = 1 for every k.
  std::map<std::string, TaskTrials> per;
  for (auto& t : *r) {
    auto& p = per[t.task_id];
    p.task_id = t.task_id;
    p.domain = t.domain;
    ++p.n;
    p.c += t.success;
    p.reward_sum += t.reward;
  }
  std::vector<TaskTrials> v;
  for (auto& [k, p] : per) v.push_back(p);
  auto rows = PassTable(v, {1, 2, 3});
  ASSERT_TRUE(rows.ok());
  EXPECT_EQ(rows->back().pass_hat.at(3), 1.0);

  agents::RandomPolicy random;
  auto rr = RunTau2Suite(s, random, user, o);
  ASSERT_TRUE(rr.ok()) << rr.status().ToString();
  double sum = 0;
  for (auto& t : *rr) sum += t.reward;
  EXPECT_LE(sum / static_cast<double>(rr->size()), 0.05) << "random policy mean reward";
  (void)nl;
}

TEST(Tau2Suite, SkippingOneGoldWriteScoresZeroOnDbTasks) {
  ThreadPool pool(2);
  Tau2Suite s = SmallSuite(&pool, 20);
  SkipOneWrite skipper(s.world);
  agents::ScriptedUser user;
  Tau2Options o;
  o.trials = 1;
  o.threads = 2;
  auto r = RunTau2Suite(s, skipper, user, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  int checked = 0;
  for (size_t i = 0; i < r->size(); ++i) {
    const synth::Task& t = s.tasks[i];
    if (!HasBasis(t, "DB") || t.steps == 0) continue;
    ++checked;
    EXPECT_EQ((*r)[i].reward, 0) << t.id << ": " << (*r)[i].explanation;
    EXPECT_EQ((*r)[i].components.at("db"), 0) << t.id;
  }
  EXPECT_GE(checked, 10) << "the suite should have enough state-changing DB tasks";
}

TEST(Tau2Suite, EpisodesThatRunOutScoreZero) {
  ThreadPool pool(2);
  Tau2Suite s = SmallSuite(&pool, 6);
  agents::OracleTaskPolicy oracle;
  agents::ScriptedUser user;
  Tau2Options o;
  o.trials = 1;
  o.limits.max_turns = 1;  // no task fits in one assistant turn
  auto r = RunTau2Suite(s, oracle, user, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (auto& t : *r) {
    EXPECT_EQ(t.end_reason, "max_turns");
    EXPECT_EQ(t.reward, 0);
    EXPECT_EQ(t.components.at("terminated_ok"), 0);
  }
}

// Training data never touches held-out domains: the generators' filters drop exactly the domains the
// split rule (written out again here with SHA-256) holds out, and eval's predicate is the same one.
TEST(HeldOut, TrainingGeneratorsExcludeHeldOutDomains) {
  ThreadPool pool(2);
  auto world = agents::SyntheticWorld::Generate(3, 400, &pool);
  std::vector<synth::Domain> ds;
  for (auto& d : world->domains()) ds.push_back(*d);
  auto reference = [](const std::string& p) { return std::stoull(Sha256Hex("k2gym/heldout/" + p).substr(0, 8), nullptr, 16) % 8 == 0; };
  int64_t held = 0;
  for (auto& d : ds) {
    EXPECT_EQ(synth::IsHeldOutDomain(d.path), reference(d.path)) << d.path;
    EXPECT_EQ(IsHeldOutDomain(d.path), reference(d.path)) << d.path;
    held += reference(d.path);
  }
  ASSERT_GT(held, 0) << "the catalog must have held-out domains for this test to mean anything";
  int64_t excluded = -1;
  auto train = synth::TrainingDomains(ds, &excluded);
  EXPECT_EQ(excluded, held);
  EXPECT_EQ(static_cast<int64_t>(train.size()), static_cast<int64_t>(ds.size()) - held);
  auto tasks = synth::GenerateTasks(train, 7, 200, &pool);
  ASSERT_EQ(tasks.size(), 200u);
  for (auto& t : tasks) EXPECT_FALSE(reference(t.domain)) << t.id << " on held-out " << t.domain;
  // Tasks generated on every domain: TrainingTasks drops exactly those on held-out domains.
  auto mixed = synth::GenerateTasks(ds, 7, 400, &pool);
  int64_t mixed_held = 0;
  for (auto& t : mixed) mixed_held += reference(t.domain);
  ASSERT_GT(mixed_held, 0);
  auto kept = synth::TrainingTasks(mixed, &excluded);
  EXPECT_EQ(excluded, mixed_held);
  EXPECT_EQ(kept.size() + static_cast<size_t>(mixed_held), mixed.size());
  for (auto& t : kept) EXPECT_FALSE(reference(t.domain)) << t.domain;
}

TEST(Tau2Suite, BuiltinHeldOutSuiteUsesOnlyHeldOutDomains) {
  ThreadPool pool(2);
  auto s = BuiltinTau2Suite("heldout-small", &pool);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->tasks.size(), 16u);
  std::set<std::string> domains;
  for (auto& t : s->tasks) {
    EXPECT_TRUE(IsHeldOutDomain(t.domain)) << t.domain;
    domains.insert(t.domain);
  }
  EXPECT_GE(domains.size(), 3u);
  int held = 0;
  for (auto& d : s->world->domains()) held += IsHeldOutDomain(d->path);
  // About 1 in 8 of the catalog's domains, never all of them.
  EXPECT_GT(held, 0);
  EXPECT_LT(held, static_cast<int>(s->world->domains().size()) / 3);
  agents::OracleTaskPolicy oracle;
  agents::ScriptedUser user;
  Tau2Options o;
  o.trials = 2;
  o.threads = 2;
  auto r = RunTau2Suite(*s, oracle, user, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  for (auto& t : *r) EXPECT_EQ(t.reward, 1.0) << t.task_id << ":\n" << t.explanation;
  EXPECT_FALSE(BuiltinTau2Suite("nope", &pool).ok());
}

TEST(Tau2Suite, SuiteFilesLoadAndBadOnesNameTheProblem) {
  ThreadPool pool(2);
  Tau2Suite small = SmallSuite(&pool, 4);
  std::string dir = std::string(K2GYM_BINARY_DIR) + "/tau2_suite_test";
  std::filesystem::create_directories(dir);
  json arr = json::array();
  for (auto& t : small.tasks) arr.push_back(synth::ToTau2(t));
  ASSERT_TRUE(WriteFileAtomic(dir + "/tasks.json", arr.dump()).ok());
  json spec = {{"name", "mine"}, {"kind", "tau2"}, {"tasks", "tasks.json"}, {"world", {{"seed", 11}, {"count", 300}}}};
  auto s = LoadTau2Suite(spec, dir + "/suite.json", &pool);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->name, "mine");
  EXPECT_EQ(s->tasks, small.tasks);
  // task_tools_only: each domain of the world offers exactly the tools its tasks' gold plans call, and
  // the oracle still solves every task.
  spec["task_tools_only"] = true;
  auto cut = LoadTau2Suite(spec, dir + "/suite.json", &pool);
  ASSERT_TRUE(cut.ok()) << cut.status().ToString();
  for (const auto& t : cut->tasks) {
    std::set<std::string> gold, offered;
    for (const auto& u : cut->tasks)
      if (u.domain == t.domain)
        for (const auto& a : u.actions) gold.insert(a.name);
    for (const auto& op : cut->world->Find(t.domain)->ops) offered.insert(op.name);
    EXPECT_EQ(offered, gold) << t.domain;
    EXPECT_LT(offered.size(), s->world->Find(t.domain)->ops.size()) << t.domain;
  }
  {
    agents::OracleTaskPolicy oracle;
    agents::ScriptedUser user;
    auto r = RunTau2Suite(*cut, oracle, user, {});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    for (auto& t : *r) EXPECT_EQ(t.reward, 1.0) << t.task_id << ":\n" << t.explanation;
  }
  spec["task_tools_only"] = "yes";
  auto bad = LoadTau2Suite(spec, dir + "/suite.json", &pool);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("task_tools_only: expected true or false"), std::string::npos)
      << bad.status().message();
  spec.erase("task_tools_only");
  spec["world"]["seed"] = 12;  // another catalog: the tasks' domains are not there
  auto e = LoadTau2Suite(spec, dir + "/suite.json", &pool);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("is not in the suite's world"), std::string::npos) << e.status().message();
  spec["world"] = {{"seed", 11}};
  e = LoadTau2Suite(spec, dir + "/suite.json", &pool);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("world"), std::string::npos);
  spec["wrold"] = 1;
  e = LoadTau2Suite(spec, dir + "/suite.json", &pool);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("unknown key \"wrold\""), std::string::npos);
  // A task whose gold plan no longer replays is a broken task, reported before any episode runs.
  small.tasks[0].actions[0].name = "no_such_tool";
  agents::OracleTaskPolicy oracle;
  agents::ScriptedUser user;
  auto r = RunTau2Suite(small, oracle, user, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unknown tool no_such_tool"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace k2::eval
