// Pins the run report: CSV parsing with line-numbered errors, SVG charts that place points by value,
// and an HTML page that cannot be broken out of by trajectory text.
#include "rl/report.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <cmath>
#include <fstream>

namespace k2::rl {
namespace {

std::string Tmp(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("k2gym_report_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return (d / name).string();
}

TEST(ReadMetricsCsv, ReadsLongFormatAndNamesBadLines) {
  const std::string p = Tmp("m.csv");
  std::ofstream(p) << "step,key,value,t\n1,loss,2.5,0\n0,loss,3.0,0\n0,reward_mean,0.25,0\n";
  auto m = ReadMetricsCsv(p);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->at("loss").size(), 2u);
  EXPECT_EQ(m->at("loss")[0], (std::pair<int64_t, double>{0, 3.0}));  // sorted by step
  EXPECT_DOUBLE_EQ(m->at("reward_mean")[0].second, 0.25);
  std::ofstream(p) << "step,key,value,t\n0,loss,abc,0\n";
  auto bad = ReadMetricsCsv(p);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(p + ":2"), std::string::npos) << bad.status().ToString();
}

TEST(RenderSvg, PlacesTheExtremesAtThePlotEdges) {
  RunMetrics m;
  m["reward"] = {{0, 0.0}, {1, 0.5}, {2, 1.0}};
  std::string svg = RenderSvg(m, {"reward", "missing"}, 2);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  // Plot area: x in [56, 290], y in [22, 146]: the first point sits bottom-left, the last top-right.
  EXPECT_NE(svg.find("points=\"56.0,146.0 173.0,84.0 290.0,22.0 \""), std::string::npos) << svg;
  EXPECT_NE(svg.find("no data"), std::string::npos);
}

TEST(RenderReportHtml, EmbedsTrajectoriesWithoutEndingTheScript) {
  RunMetrics m;
  m["success_rate"] = {{0, 0.1}, {1, 0.4}};
  json t = {{"task_id", "t1"}, {"trial", 0}, {"reward", 1.0}, {"end_reason", "user_stop"}, {"turns", 1},
            {"messages", json::array({{{"role", "user"}, {"content", "</script><script>alert(1)</script>"}}})}};
  std::string html = RenderReportHtml("run <1>", m, {t});
  EXPECT_NE(html.find("<title>run &lt;1&gt;</title>"), std::string::npos);
  EXPECT_EQ(html.find("</script><script>alert"), std::string::npos);  // every '<' of the data is \u003c
  EXPECT_NE(html.find("\\u003c/script>\\u003cscript>alert"), std::string::npos);
  EXPECT_NE(html.find("<td>0.1</td><td>0.4</td>"), std::string::npos);
  // Exactly one script element: the viewer.
  size_t n = 0;
  for (size_t p = html.find("<script>"); p != std::string::npos; p = html.find("<script>", p + 1)) ++n;
  EXPECT_EQ(n, 1u);
}

TEST(MetricPanel, GroupsKeysByWhatTheyMeasure) {
  EXPECT_EQ(MetricPanel("reward_mean"), "reward");
  EXPECT_EQ(MetricPanel("success_rate"), "success");
  EXPECT_EQ(MetricPanel("critic_agreement"), "success");
  EXPECT_EQ(MetricPanel("response_length"), "length");
  EXPECT_EQ(MetricPanel("policy_tokens"), "length");
  EXPECT_EQ(MetricPanel("loss_policy"), "loss");
  EXPECT_EQ(MetricPanel("kl"), "loss");
  EXPECT_EQ(MetricPanel("eval_loss"), "heldout");
  EXPECT_EQ(MetricPanel("grad_norm"), "optimizer");
  EXPECT_EQ(MetricPanel("lr"), "optimizer");
  EXPECT_EQ(MetricPanel("max_logit"), "optimizer");
  EXPECT_EQ(MetricPanel("tokens_per_s"), "throughput");
  EXPECT_EQ(MetricPanel("time_rollout_s"), "throughput");
  EXPECT_EQ(MetricPanel("source.math.reward_mean"), "source");
  EXPECT_EQ(MetricPanel("something_new"), "other");
  for (const auto& [id, title] : ReportPanels()) EXPECT_FALSE(title.empty()) << id;
}

TEST(Smooth, IsADebiasedMovingAverage) {
  Series s = {{0, 1.0}, {1, 3.0}, {2, std::nan("")}, {3, 3.0}};
  Series m = Smooth(s, 0.5);
  ASSERT_EQ(m.size(), 3u) << "non-finite points are skipped";
  EXPECT_DOUBLE_EQ(m[0].second, 1.0) << "debiased: the first point is itself, not pulled to 0";
  EXPECT_DOUBLE_EQ(m[1].second, (0.5 * 0.5 * 1 + 0.5 * 3) / (0.5 * 0.5 + 0.5));
  EXPECT_EQ(m[2].first, 3);
  EXPECT_EQ(Smooth(s, 0).size(), s.size());
}

TEST(RenderReportHtml, OverlaysRunsGroupsPanelsAndListsConstantSeries) {
  ReportRun a, b;
  a.label = "run A";
  b.label = "run B";
  a.kind = b.kind = "rl";
  for (int i = 0; i < 12; ++i) {
    a.metrics["reward_mean"].push_back({i, 0.1 * i});
    b.metrics["reward_mean"].push_back({i, 0.05 * i});
    a.metrics["ptx_coef"].push_back({i, 0.1});
    b.metrics["ptx_coef"].push_back({i, 0.1});
  }
  a.metrics["loss_policy"] = {{0, 1.0}, {1, 0.5}};
  b.summary = {{"suite", "builtin:heldout-small"},
               {"rows", json::array({{{"group", "all"}, {"tasks", 16}, {"trials", 48}, {"avg_reward", 0.5},
                                      {"pass_hat", {{"1", 0.5}, {"2", 0.25}}}}})}};
  std::string html = RenderReportHtml("A vs B", std::vector<ReportRun>{a, b}, std::vector<json>{});
  auto count = [&](const std::string& needle) {
    size_t n = 0;
    for (size_t p = html.find(needle); p != std::string::npos; p = html.find(needle, p + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("<li style=\"color:"), 2u) << "a legend entry per run";
  EXPECT_EQ(count("<section class=\"panel\""), 2u) << "reward and loss panels; the constant one is not drawn";
  EXPECT_NE(html.find("id=\"panel-reward\""), std::string::npos);
  EXPECT_NE(html.find("id=\"panel-loss\""), std::string::npos);
  EXPECT_EQ(html.find("id=\"panel-optimizer\""), std::string::npos);
  EXPECT_NE(html.find("(not drawn): ptx_coef = 0.1"), std::string::npos);
  // reward_mean: 12 points per run, raw (faint) + smoothed per run; loss_policy: one run, 2 points, raw.
  EXPECT_EQ(count("class=\"smooth\""), 2u);
  EXPECT_EQ(count("class=\"raw\""), 3u);
  EXPECT_EQ(count(">iteration</text>"), 2u) << "x axis titled per chart";
  EXPECT_NE(html.find("<table class=\"heldout\">"), std::string::npos);
  EXPECT_NE(html.find("<th>pass^2</th>"), std::string::npos);
  EXPECT_NE(html.find("<th>first (run A)</th>"), std::string::npos);
}

}  // namespace
}  // namespace k2::rl
