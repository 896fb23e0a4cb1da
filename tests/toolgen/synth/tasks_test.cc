// Tasks with rubrics: thousands replay to their expected state hash, gold plans never violate a
// policy (independent reference), forbidden actions always do, tau2 export/import is lossless.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "core/thread_pool.h"
#include "toolgen/synth/synth.h"
#include "toolgen/synth/tasks.h"

namespace k2::toolgen::synth {
namespace {

std::map<std::string, const Domain*> Index(const Catalog& c) {
  std::map<std::string, const Domain*> m;
  for (auto& d : c.domains) m[d->path] = d.get();
  return m;
}

TEST(Tasks, ThousandsReplayToTheirExpectedHashAndNeverViolateAPolicy) {
  ThreadPool pool(2);
  Catalog cat = Synthesize(31, 1400, &pool, /*with_databases=*/false);
  auto tasks = GenerateTasks(
      [&] {
        std::vector<Domain> v;
        for (auto& d : cat.domains) v.push_back(*d);
        return v;
      }(),
      31, 3000, &pool);
  ASSERT_GE(tasks.size(), 2950u) << "most tasks must be feasible";
  auto index = Index(cat);
  std::vector<std::string> errors(tasks.size());
  pool.ParallelFor(static_cast<int64_t>(tasks.size()), [&](int64_t i) {
    const Task& t = tasks[i];
    const Domain& d = *index.at(t.domain);
    auto h = ReplayHash(d, t);
    if (!h.ok()) errors[i] = h.status().ToString();
    else if (*h != t.expected_hash) errors[i] = t.id + ": hash mismatch";
    else if (Status s = VerifyTask(d, t); !s.ok()) errors[i] = s.ToString();
  });
  for (auto& e : errors) ASSERT_TRUE(e.empty()) << e;
  std::map<std::string, int> kinds;
  int refusals = 0, clarifications = 0, multi = 0;
  std::set<std::string> ids;
  for (auto& t : tasks) {
    EXPECT_TRUE(ids.insert(t.id).second) << t.id;
    for (auto& k : t.scenarios) kinds[k]++;
    refusals += t.refusal;
    clarifications += t.clarification;
    multi += t.scenarios.size() > 1;
    EXPECT_EQ(t.refusal, !t.forbidden.empty());
    EXPECT_GE(t.difficulty, 1);
    EXPECT_FALSE(t.persona.empty());
    EXPECT_EQ(t.actions.front().name, index.at(t.domain)->FindOp(OpKind::kGet, kActor)->name) << "identify first";
  }
  // Every scenario kind occurs, including every refusal kind.
  for (const char* k : {"book", "cancel", "modify", "refund", "transfer", "profile", "report", "refuse_refund",
                        "refuse_cancel", "refuse_book"})
    EXPECT_GT(kinds[k], 10) << k;
  EXPECT_GT(refusals, 200);
  EXPECT_GT(clarifications, 200);
  EXPECT_GT(multi, 500);
}

TEST(Tasks, DeterministicPerSeed) {
  std::vector<Domain> ds = {BuildDomain(*KeyFromPath("travel/airline/budget-nordic"), 2),
                            BuildDomain(*KeyFromPath("devops/ci/enterprise-alpine"), 2)};
  ThreadPool pool(2);
  auto a = GenerateTasks(ds, 5, 40, &pool), b = GenerateTasks(ds, 5, 40, nullptr), c = GenerateTasks(ds, 6, 40, nullptr);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(ToTau2(a[i]), ToTau2(b[i]));
  int differ = 0;
  for (size_t i = 0; i < std::min(a.size(), c.size()); ++i) differ += ToTau2(a[i]) != ToTau2(c[i]);
  EXPECT_GT(differ, 30);
}

TEST(Tasks, Tau2ExportImportRoundTripIsLossless) {
  std::vector<Domain> ds = {BuildDomain(*KeyFromPath("healthcare/clinics/senior-baltic"), 3),
                            BuildDomain(*KeyFromPath("retail/electronics/premium-gulf"), 3)};
  auto tasks = GenerateTasks(ds, 3, 200, nullptr);
  ASSERT_GT(tasks.size(), 190u);
  for (auto& t : tasks) {
    json j = ToTau2(t);
    // Through text, as files carry it.
    auto text = ParseJson(j.dump(), "task");
    ASSERT_TRUE(text.ok());
    auto back = TaskFromTau2(*text, "tasks[0]");
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_TRUE(*back == t) << t.id;
    EXPECT_EQ(ToTau2(*back), j);
    // tau2 layout keys.
    for (const char* k : {"id", "description", "user_scenario", "initial_state", "evaluation_criteria"}) EXPECT_TRUE(j.contains(k)) << k;
    for (const char* k : {"actions", "env_assertions", "communicate_info", "nl_assertions", "reward_basis"})
      EXPECT_TRUE(j["evaluation_criteria"].contains(k)) << k;
  }
}

TEST(Tasks, ImportNamesTheOffendingPointer) {
  std::vector<Domain> ds = {BuildDomain(*KeyFromPath("telecom/roaming/digital-pacific"), 1)};
  auto tasks = GenerateTasks(ds, 1, 1, nullptr);
  ASSERT_EQ(tasks.size(), 1u);
  json j = ToTau2(tasks[0]);
  json bad = j;
  bad["evaluation_criteria"]["actions"][0]["name"] = 3;
  auto r = TaskFromTau2(bad, "f.json");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("f.json/evaluation_criteria/actions/0/name: expected string"), std::string::npos)
      << r.status().message();
  bad = j;
  bad["evaluation_criteria"]["reward_basis"] = {"DB", "VIBES"};
  EXPECT_FALSE(TaskFromTau2(bad, "f.json").ok());
  bad = j;
  bad["description"]["notes"] = "hand written";
  EXPECT_NE(TaskFromTau2(bad, "f.json").status().message().find("f.json/description/notes"), std::string::npos);
  bad = j;
  bad.erase("user_scenario");
  EXPECT_NE(TaskFromTau2(bad, "f.json").status().message().find("f.json/user_scenario: missing"), std::string::npos);
}

TEST(Tasks, TamperedTasksFailVerification) {
  Domain d = BuildDomain(*KeyFromPath("logistics/parcels/express-benelux"), 2);
  auto tasks = GenerateTasks({d}, 2, 60, nullptr);
  int checked = 0;
  for (auto& t : tasks) {
    if (t.steps == 0) continue;
    Task bad = t;
    bad.expected_hash[0] = bad.expected_hash[0] == 'a' ? 'b' : 'a';
    EXPECT_FALSE(VerifyTask(d, bad).ok());
    // Dropping the last write changes the final state.
    Task shorter = t;
    for (int i = static_cast<int>(shorter.actions.size()) - 1; i >= 0; --i)
      if (!d.FindOp(shorter.actions[i].name)->read_only) {
        shorter.actions.erase(shorter.actions.begin() + i);
        break;
      }
    auto h = ReplayHash(d, shorter);
    if (h.ok()) {
      EXPECT_NE(*h, t.expected_hash) << t.id;
    }
    ++checked;
  }
  EXPECT_GT(checked, 20);
}

}  // namespace
}  // namespace k2::toolgen::synth
