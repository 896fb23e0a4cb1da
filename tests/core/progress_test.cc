// Progress: line format, counts and duration formatting (no timing assertions).
#include "core/progress.h"

#include <gtest/gtest.h>

namespace k2 {
namespace {

TEST(Progress, LineShowsCountPercentRateAndEta) {
  Progress p("episodes", 200, nullptr);
  p.Add(50);
  p.SetNote("loss 2.3");
  std::string line = p.Line();
  EXPECT_EQ(line.rfind("episodes 50/200 (25.0%) ", 0), 0u) << line;
  EXPECT_NE(line.find("/s ETA "), std::string::npos) << line;
  EXPECT_NE(line.find("loss 2.3"), std::string::npos);
  p.Set(200);
  EXPECT_NE(p.Line().find("done in"), std::string::npos);
}

TEST(Progress, SlowRatesShowSecondsEach) {
  EXPECT_EQ(Progress::FormatRate(12.34), "12.3/s");
  EXPECT_EQ(Progress::FormatRate(1.0), "1.0/s");
  EXPECT_EQ(Progress::FormatRate(0.04), "25.0 s each");
  EXPECT_EQ(Progress::FormatRate(0.0), "0.0/s");
}

TEST(Progress, UnknownTotalHasNoEta) {
  Progress p("lines", 0, nullptr);
  p.Add(3);
  EXPECT_EQ(p.Line().find("ETA"), std::string::npos);
  EXPECT_EQ(p.done(), 3);
}

TEST(Progress, WritesPlainLinesWhenNotATty) {
  FILE* f = tmpfile();
  {
    Progress p("x", 2, f, 1000.0);
    p.Add(1);
    p.Add(1);
  }  // destructor prints the final line
  std::rewind(f);
  char buf[256] = {0};
  ASSERT_NE(fgets(buf, sizeof buf, f), nullptr);
  EXPECT_EQ(std::string(buf).rfind("x 2/2 (100.0%)", 0), 0u) << buf;
  fclose(f);
}

TEST(Progress, FormatDuration) {
  EXPECT_EQ(Progress::FormatDuration(5), "0:05");
  EXPECT_EQ(Progress::FormatDuration(125), "2:05");
  EXPECT_EQ(Progress::FormatDuration(3725), "1:02:05");
  EXPECT_EQ(Progress::FormatDuration(-1), "?");
}

}  // namespace
}  // namespace k2
