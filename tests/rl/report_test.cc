// Pins the run report: CSV parsing with line-numbered errors, SVG charts that place points by value,
// and an HTML page that cannot be broken out of by trajectory text.
#include "rl/report.h"

#include <gtest/gtest.h>

#include <filesystem>
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
  // Plot area: x in [48, 290], y in [22, 146]: the first point sits bottom-left, the last top-right.
  EXPECT_NE(svg.find("points=\"48.0,146.0 169.0,84.0 290.0,22.0 \""), std::string::npos) << svg;
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

}  // namespace
}  // namespace k2::rl
