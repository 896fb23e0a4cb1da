// MetricsLogger: rows reach the store and the CSV, in order.
#include "core/metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/json.h"

namespace k2 {
namespace {

TEST(Metrics, WritesStoreAndCsv) {
  auto dir = std::filesystem::temp_directory_path() / ("k2gym_metrics_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto db = Db::Open((dir / "m.db").string());
  ASSERT_TRUE(db.ok());
  auto run = CreateRun(db->get(), "test", "m", "{}");
  ASSERT_TRUE(run.ok());
  std::string csv = (dir / "m.csv").string();
  {
    MetricsLogger log(db->get(), *run, csv);
    for (int s = 0; s < 3; ++s) {
      log.Log(s, "loss", 3.0 - s);
      log.Log(s, "lr", 0.1);
    }
    ASSERT_TRUE(log.Flush().ok());
  }
  auto loss = ReadMetric(db->get(), *run, "loss");
  ASSERT_TRUE(loss.ok());
  ASSERT_EQ(loss->size(), 3u);
  EXPECT_EQ((*loss)[2], (std::pair<int64_t, double>(2, 1.0)));
  auto text = ReadFile(csv);
  ASSERT_TRUE(text.ok());
  EXPECT_EQ(text->rfind("step,key,value,t\n0,loss,3,", 0), 0u) << *text;
  EXPECT_EQ(std::count(text->begin(), text->end(), '\n'), 7);
  std::filesystem::remove_all(dir);
}

// A commit's mark cuts both sinks back exactly: rows logged (and flushed) after it disappear from the
// CSV and the store; re-logging them gives each (step, key) once. Values round-trip through the CSV.
TEST(Metrics, TruncateToACommitMarkDropsOnlyTheLaterRows) {
  auto dir = std::filesystem::temp_directory_path() / ("k2gym_metrics_mark_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto db = Db::Open((dir / "m.db").string());
  ASSERT_TRUE(db.ok());
  auto run = CreateRun(db->get(), "test", "m", "{}");
  auto other = CreateRun(db->get(), "test", "other", "{}");
  ASSERT_TRUE(run.ok() && other.ok());
  const std::string csv = (dir / "m.csv").string();
  const double third = 1.0 / 3.0;
  MetricsMark mark;
  {
    MetricsLogger log(db->get(), *run, csv);
    MetricsLogger noise(db->get(), *other, "");
    for (int s = 0; s < 4; ++s) log.Log(s, "loss", third * s);
    auto m = log.Commit();
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    mark = *m;
    for (int s = 4; s < 6; ++s) {
      log.Log(s, "loss", third * s);
      noise.Log(s, "x", 1);  // another run's rows interleave in the store
    }
    ASSERT_TRUE(noise.Flush().ok());
    ASSERT_TRUE(log.Flush().ok());
  }
  auto j = MetricsMark::FromJson(mark.ToJson(), "mark");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->csv_bytes, mark.csv_bytes);
  ASSERT_TRUE(TruncateMetrics(db->get(), *run, csv, mark).ok());
  auto loss = ReadMetric(db->get(), *run, "loss");
  ASSERT_TRUE(loss.ok());
  EXPECT_EQ(loss->size(), 4u);
  EXPECT_EQ(ReadMetric(db->get(), *other, "x")->size(), 2u) << "another run's rows are kept";
  auto rows = ReadMetricHistoryCsv(csv, 10);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  for (int s = 0; s < 4; ++s) EXPECT_EQ((*rows)[s].at("loss"), third * s) << "exact round trip, step " << s;
  EXPECT_TRUE((*rows)[4].empty());
  {
    MetricsLogger log(db->get(), *run, csv);
    for (int s = 4; s < 6; ++s) log.Log(s, "loss", third * s);
  }
  EXPECT_EQ(ReadMetric(db->get(), *run, "loss")->size(), 6u);
  rows = ReadMetricHistoryCsv(csv, 6);
  ASSERT_TRUE(rows.ok());
  for (int s = 0; s < 6; ++s) EXPECT_EQ((*rows)[s].size(), 1u) << s;
  // Without a mark (legacy checkpoints) the cut is by step; a mark beyond the file is corruption.
  ASSERT_TRUE(TruncateMetricsFromStep(db->get(), *run, csv, 2).ok());
  EXPECT_EQ(ReadMetric(db->get(), *run, "loss")->size(), 2u);
  EXPECT_TRUE((*ReadMetricHistoryCsv(csv, 6))[2].empty());
  Status s = TruncateMetrics(db->get(), *run, csv, MetricsMark{1 << 20, -1});
  EXPECT_EQ(s.code(), Code::kCorruption) << s.ToString();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace k2
