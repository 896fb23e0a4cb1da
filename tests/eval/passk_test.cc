// pass^k against a hand-computed table (C(c,k)/C(n,k) worked out on paper) and the per-domain table.
#include "eval/passk.h"

#include <gtest/gtest.h>

#include <cmath>

#include "eval/results.h"

namespace k2::eval {
namespace {

TEST(PassHatK, HandComputedTable) {
  struct Row { int64_t n, c, k; double want; };
  const Row rows[] = {
      {4, 4, 1, 1.0},     {4, 4, 2, 1.0},       {4, 4, 4, 1.0},
      {4, 3, 1, 0.75},    {4, 3, 2, 3.0 / 6},   {4, 3, 4, 0.0},
      {4, 2, 1, 0.5},     {4, 2, 2, 1.0 / 6},   {4, 2, 4, 0.0},
      {4, 1, 1, 0.25},    {4, 1, 2, 0.0},       {4, 0, 1, 0.0},
      {8, 5, 3, 10.0 / 56}, {8, 7, 4, 35.0 / 70}, {1, 1, 1, 1.0}, {1, 0, 1, 0.0},
      {10, 9, 9, 9.0 / 10 * 8 / 9 * 7 / 8 * 6 / 7 * 5 / 6 * 4 / 5 * 3 / 4 * 2 / 3 * 1 / 2},  // = C(9,9)/C(10,9) = 1/10
  };
  for (auto& r : rows) {
    auto p = PassHatK(r.n, r.c, r.k);
    ASSERT_TRUE(p.ok()) << r.n << " " << r.c << " " << r.k;
    EXPECT_NEAR(*p, r.want, 1e-15) << "n=" << r.n << " c=" << r.c << " k=" << r.k;
  }
  EXPECT_NEAR(*PassHatK(10, 9, 9), 0.1, 1e-15);
  // Large n never overflows (C(1000, 500) does not fit any integer type).
  EXPECT_NEAR(*PassHatK(1000, 999, 500), 0.5, 1e-12);
  EXPECT_FALSE(PassHatK(4, 5, 1).ok());
  EXPECT_FALSE(PassHatK(4, 2, 5).ok());
  EXPECT_FALSE(PassHatK(4, 2, 0).ok());
  EXPECT_FALSE(PassHatK(0, 0, 1).ok());
}

TEST(PassTable, PerDomainRowsAndOverall) {
  std::vector<TaskTrials> t = {
      {"a1", "airline", 4, 4, 4.0}, {"a2", "airline", 4, 2, 2.0},  // pass^1 .75, pass^2 (1 + 1/6)/2
      {"r1", "retail", 4, 3, 3.5},                                  // pass^1 .75, pass^2 .5
      {"r2", "retail", 1, 1, 1.0},                                  // only 1 trial: excluded from k=2
  };
  auto rows = PassTable(t, {1, 2});
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ASSERT_EQ(rows->size(), 3u);
  const PassRow& air = (*rows)[0];
  EXPECT_EQ(air.domain, "airline");
  EXPECT_EQ(air.tasks, 2);
  EXPECT_EQ(air.trials, 8);
  EXPECT_NEAR(air.pass_hat.at(1), 0.75, 1e-15);
  EXPECT_NEAR(air.pass_hat.at(2), (1 + 1.0 / 6) / 2, 1e-15);
  EXPECT_NEAR(air.avg_reward, 6.0 / 8, 1e-15);
  const PassRow& ret = (*rows)[1];
  EXPECT_NEAR(ret.pass_hat.at(1), (0.75 + 1) / 2, 1e-15);
  EXPECT_NEAR(ret.pass_hat.at(2), 0.5, 1e-15);
  EXPECT_EQ(ret.tasks_at.at(2), 1);
  const PassRow& all = (*rows)[2];
  EXPECT_EQ(all.domain, "all");
  EXPECT_EQ(all.tasks, 4);
  EXPECT_NEAR(all.pass_hat.at(1), (1 + 0.5 + 0.75 + 1) / 4, 1e-15);
  EXPECT_NEAR(all.pass_hat.at(2), (1 + 1.0 / 6 + 0.5) / 3, 1e-15);
  EXPECT_NEAR(all.avg_reward, 10.5 / 13, 1e-15);
  t.push_back({"bad", "x", 2, 3, 0});
  EXPECT_FALSE(PassTable(t, {1}).ok());
}

// A served model's context refusals are scored 0 and named under the table.
TEST(Summary, NamesContextRefusals) {
  std::vector<TrialRecord> rs;
  for (int i = 0; i < 3; ++i) {
    TrialRecord r;
    r.case_id = "t" + std::to_string(i);
    r.group = "d";
    r.end_reason = i < 2 ? "policy_error" : "agent_stop";
    r.detail = i < 2 ? "http_400: prompt of 900 tokens exceeds 64 (context_length_exceeded)" : "ok";
    r.success = i == 2;
    r.reward = i == 2 ? 1 : 0;
    rs.push_back(r);
  }
  auto s = Summarize(rs, {1}, {{"suite", "x"}, {"policy", "p"}, {"trials", 1}});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)["context_exceeded"], 2);
  EXPECT_NEAR((*s)["rows"].back()["pass_hat"]["1"].get<double>(), 1.0 / 3, 1e-12);
  std::string t = FormatSummary(*s);
  EXPECT_NE(t.find("2 trial(s) scored 0 because the dialog exceeded the served model's context"), std::string::npos) << t;
  rs.pop_back();
  rs.pop_back();
  rs[0].detail = "http_500: internal";
  auto s2 = Summarize(rs, {1}, json::object());
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ((*s2)["context_exceeded"], 0);
  EXPECT_EQ(FormatSummary(*s2).find("exceeded"), std::string::npos);
}


// eval compare's paired statistics on hand-made runs: the interval brackets the mean, identical runs give
// a zero-width difference and no flips, a consistent gain excludes 0, flips are listed with their rates.
TEST(PairedCompare, IntervalsAndFlippedCases) {
  auto run = [](const std::vector<std::pair<std::string, std::vector<int>>>& cases) {
    std::vector<TrialRecord> out;
    for (const auto& [id, wins] : cases)
      for (size_t t = 0; t < wins.size(); ++t) {
        TrialRecord r;
        r.case_id = id;
        r.group = "g";
        r.trial = static_cast<int>(t);
        r.success = wins[t] != 0;
        r.reward = wins[t];
        out.push_back(r);
      }
    return out;
  };
  std::vector<std::pair<std::string, std::vector<int>>> a_cases, b_cases;
  for (int i = 0; i < 40; ++i) {
    const std::string id = "t" + std::to_string(100 + i);
    a_cases.push_back({id, {i % 2, i % 4 == 1}});              // 30% of trials solved
    b_cases.push_back({id, {i % 5 != 0, i % 2 || i % 3 == 0}});  // most solved
  }
  b_cases.push_back({"only_in_b", {1, 1}});
  const auto a = run(a_cases), b = run(b_cases);
  auto same = PairedCompare(a, a, 7);
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_EQ((*same)["diff"]["lo"], 0.0);
  EXPECT_EQ((*same)["diff"]["hi"], 0.0);
  EXPECT_TRUE((*same)["flipped"].empty());
  auto p = PairedCompare(a, b, 7);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)["cases"], 40);
  EXPECT_EQ((*p)["only_b"], 1);
  for (const char* k : {"a", "b", "diff"}) {
    EXPECT_LE((*p)[k]["lo"].get<double>(), (*p)[k]["mean"].get<double>()) << k;
    EXPECT_GE((*p)[k]["hi"].get<double>(), (*p)[k]["mean"].get<double>()) << k;
  }
  double ma = 0, mb = 0;
  for (int i = 0; i < 40; ++i) {
    ma += ((i % 2) + (i % 4 == 1)) / 2.0;
    mb += ((i % 5 != 0) + (i % 2 || i % 3 == 0)) / 2.0;
  }
  EXPECT_NEAR((*p)["a"]["mean"].get<double>(), ma / 40, 1e-12);
  EXPECT_NEAR((*p)["diff"]["mean"].get<double>(), (mb - ma) / 40, 1e-12);
  EXPECT_GT((*p)["diff"]["lo"].get<double>(), 0.0) << "a consistent gain: the interval excludes 0";
  int flips = 0;
  for (int i = 0; i < 40; ++i) {
    const double ra = ((i % 2) + (i % 4 == 1)) / 2.0, rb = ((i % 5 != 0) + (i % 2 || i % 3 == 0)) / 2.0;
    flips += std::abs(rb - ra) >= 0.5 ? 1 : 0;
  }
  EXPECT_EQ(static_cast<int>((*p)["flipped"].size()), flips);
  EXPECT_EQ(*PairedCompare(a, b, 7), *p) << "seeded: the same intervals every time";
  EXPECT_NE(FormatPaired(*p).find("flipped (pass^1 moved by >= 0.5): "), std::string::npos);
  EXPECT_FALSE(PairedCompare(a, run({{"x", {1}}}), 7).ok());
}

}  // namespace
}  // namespace k2::eval
