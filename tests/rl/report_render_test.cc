// `k2gym report` through the built binary, rendered by headless Chromium, compared by structure (not
// pixels): the DOM after the page's script ran must hold the grouped, smoothed, titled panels, the
// overlaid runs, an eval run's held-out table and the trajectory viewer that the script populated.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>

#include <gtest/gtest.h>

#include "core/json.h"
#include "tests/cli_util.h"

namespace k2 {
namespace {

namespace fs = std::filesystem;
const std::string kBin = std::string(K2GYM_BINARY_DIR) + "/apps/k2gym";

using ShellOut = test::ShellResult;
using test::RunShell;

std::string Chromium() {
  for (const char* c : {"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"})
    if (fs::exists(c)) return c;
  return "";
}

size_t Count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

class ReportRender : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kBin)) << kBin << " not built (rl_cli_tests depends on the k2gym target)";
    chromium_ = Chromium();
    if (chromium_.empty()) GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs the Debian package)";
    dir_ = fs::temp_directory_path() / ("k2gym_report_render_" + std::to_string(getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  // An RL-like run directory: `n` iterations of varying success/loss/temperature and a constant ptx_coef.
  void WriteRun(const std::string& name, int n, double scale) {
    fs::create_directories(dir_ / name / "trajectories");
    std::ofstream csv(dir_ / name / "metrics.csv");
    csv << "step,key,value,t\n";
    for (int s = 0; s < n; ++s)
      csv << s << ",success_rate," << scale * 0.1 * s << ",0\n" << s << ",loss_policy," << 1.0 / (s + 1) << ",0\n"
          << s << ",temperature," << 1.0 - 0.01 * s << ",0\n" << s << ",ptx_coef,0.1,0\n";
  }
  // The DOM after the page's script ran, up to the script element (the script's own text holds the
  // data and markup strings; only what it generated counts). Bounded: a hung browser fails the test.
  std::string Dom(const std::string& html) {
    ShellOut dom = RunShell("timeout -k 5 90 " + chromium_ + " --headless --no-sandbox --disable-gpu --no-first-run" +
                            " --user-data-dir=" + (dir_ / "profile").string() + " --dump-dom file://" + html + " 2>/dev/null");
    EXPECT_EQ(dom.rc, 0) << "chromium exited " << dom.rc << "\n" << dom.out.substr(0, 2000);
    const size_t script = dom.out.find("<script>");
    EXPECT_NE(script, std::string::npos) << dom.out.substr(0, 2000);
    return dom.out.substr(0, script);
  }
  std::string chromium_;
  fs::path dir_;
};

TEST_F(ReportRender, OneRunHasGroupedSmoothedPanelsAndTheScriptBuiltViewer) {
  WriteRun("run", 12, 1.0);
  {
    std::ofstream tj(dir_ / "run" / "trajectories" / "iter_0.jsonl");
    for (int i = 0; i < 2; ++i) {
      json t = {{"task_id", "task_" + std::to_string(i)}, {"trial", i}, {"reward", i}, {"end_reason", "user_stop"},
                {"turns", 1}, {"provenance", {{"rl_iteration", 0}}},
                {"messages", json::array({{{"role", "user"}, {"content", "book seat MARKER_USER_" + std::to_string(i)}},
                                          {{"role", "assistant"}, {"content", "done <b>not bold</b>"},
                                           {"tool_calls", json::array({{{"id", "c1"}, {"type", "function"},
                                                                        {"function", {{"name", "book_seat"},
                                                                                      {"arguments", "{\"seat\":\"1A\"}"}}}}})}}})}};
      tj << t.dump() << "\n";
    }
  }
  ShellOut r = RunShell(kBin + " report " + (dir_ / "run").string() + " 2>&1");
  ASSERT_EQ(r.rc, 0) << r.out;
  const std::string html = (dir_ / "run" / "report.html").string();
  ASSERT_TRUE(fs::exists(html));
  const std::string d = Dom(html);
  // Panels in their order, one SVG each, a chart per drawn metric; the constant ptx_coef listed only.
  const size_t ps = d.find("id=\"panel-success\""), pl = d.find("id=\"panel-loss\""), po = d.find("id=\"panel-optimizer\"");
  ASSERT_NE(ps, std::string::npos) << d.substr(0, 3000);
  ASSERT_NE(pl, std::string::npos);
  ASSERT_NE(po, std::string::npos);
  EXPECT_LT(ps, pl);
  EXPECT_LT(pl, po);
  EXPECT_EQ(Count(d, "<section class=\"panel\""), 3u);
  EXPECT_EQ(Count(d, "<svg"), 3u);
  EXPECT_EQ(Count(d, "class=\"chart\""), 3u);
  EXPECT_EQ(d.find("data-key=\"ptx_coef\""), std::string::npos) << "a constant series is not drawn";
  EXPECT_NE(d.find("(not drawn): ptx_coef = 0.1"), std::string::npos);
  // 12 iterations: each chart draws the raw line faint and the smoothed one; axes titled.
  EXPECT_EQ(Count(d, "class=\"smooth\""), 3u);
  EXPECT_EQ(Count(d, "class=\"raw\""), 3u);
  EXPECT_EQ(Count(d, "class=\"xlabel\""), 3u);
  EXPECT_NE(d.find(">iteration</text>"), std::string::npos);
  EXPECT_NE(d.find("class=\"ylabel\" transform=\"translate(10,84.0) rotate(-90)\" text-anchor=\"middle\">loss_policy</text>"),
            std::string::npos);
  // Script-built content (absent from the static HTML): one <option> per trajectory, the first
  // trajectory's messages as .msg divs, its tool call, and the meta line.
  std::string stat;
  {
    std::ifstream in(html);
    stat.assign(std::istreambuf_iterator<char>(in), {});
  }
  stat = stat.substr(0, stat.find("<script>"));
  ASSERT_EQ(Count(stat, "<option"), 0u);
  ASSERT_EQ(Count(stat, "class=\"msg"), 0u);
  EXPECT_EQ(Count(d, "<option"), 2u);
  EXPECT_NE(d.find("iter 0 task_1 #1 reward 1 (user_stop)"), std::string::npos);
  EXPECT_EQ(Count(d, "<div class=\"msg "), 2u);
  EXPECT_NE(d.find("MARKER_USER_0"), std::string::npos);
  EXPECT_EQ(d.find("MARKER_USER_1"), std::string::npos) << "only the selected trajectory is shown";
  EXPECT_NE(d.find("→ book_seat({\"seat\":\"1A\"})"), std::string::npos);
  EXPECT_NE(d.find("done &lt;b&gt;not bold&lt;/b&gt;"), std::string::npos) << "message text is escaped";
  EXPECT_TRUE(std::regex_search(d, std::regex("<span id=\"meta\">turns 1, tool calls 1, reward 0</span>")));
}

TEST_F(ReportRender, TwoRunsAreOverlaidOnTheSameCharts) {
  WriteRun("a", 4, 1.0);
  WriteRun("b", 6, 0.5);
  const std::string html = (dir_ / "ab.html").string();
  ShellOut no_out = RunShell(kBin + " report " + (dir_ / "a").string() + " " + (dir_ / "b").string() + " 2>&1");
  EXPECT_NE(no_out.rc, 0);
  EXPECT_NE(no_out.out.find("several runs overlaid need --out"), std::string::npos) << no_out.out;
  ShellOut r = RunShell(kBin + " report " + (dir_ / "a").string() + " " + (dir_ / "b").string() + " --out " + html + " 2>&1");
  ASSERT_EQ(r.rc, 0) << r.out;
  const std::string d = Dom(html);
  EXPECT_EQ(Count(d, "<li style=\"color:"), 2u) << "a legend entry per run";
  EXPECT_EQ(Count(d, "class=\"chart\""), 3u) << "one chart per metric, not per run";
  EXPECT_EQ(Count(d, "<polyline"), 6u) << "each chart draws both runs (raw: <= 8 points)";
  EXPECT_EQ(Count(d, "stroke=\"#d62728\""), 3u) << "the second run in its own colour";
  EXPECT_NE(d.find("<th>last (" + (dir_ / "b").string() + ")</th>"), std::string::npos);
}

TEST_F(ReportRender, AnEvalRunShowsItsHeldOutTableAndTrials) {
  const std::string db = (dir_ / "k.db").string();
  const std::string math = std::string(K2GYM_SOURCE_DIR) + "/tests/pipeline/data/math.jsonl";
  ShellOut e = RunShell(kBin + " --db " + db + " --name gold-math --quiet eval --source math:" + math +
                        " --policy gold --trials 2 --k 1,2 2>&1");
  ASSERT_EQ(e.rc, 0) << e.out;
  const std::string html = (dir_ / "eval.html").string();
  ShellOut r = RunShell(kBin + " --db " + db + " report gold-math --out " + html + " 2>&1");
  ASSERT_EQ(r.rc, 0) << r.out;
  const std::string d = Dom(html);
  EXPECT_NE(d.find("<h2>Held-out results</h2>"), std::string::npos) << d.substr(0, 3000);
  EXPECT_EQ(Count(d, "<table class=\"heldout\">"), 1u);
  EXPECT_NE(d.find("<th>pass^2</th>"), std::string::npos);
  EXPECT_EQ(Count(d, "<option"), 6u) << "3 tasks x 2 trials in the viewer";
  EXPECT_NE(d.find("<div class=\"msg user\">"), std::string::npos);
}

}  // namespace
}  // namespace k2
