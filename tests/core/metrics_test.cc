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

}  // namespace
}  // namespace k2
