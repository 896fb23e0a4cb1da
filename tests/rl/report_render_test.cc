// `k2gym report RUN` through the built binary, rendered by headless Chromium: the DOM after the page's
// script ran must hold the SVG curves and a trajectory viewer that the script populated.
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

TEST(ReportRender, HeadlessChromiumShowsTheCurvesAndTheScriptBuiltViewer) {
  ASSERT_TRUE(fs::exists(kBin)) << kBin << " not built (rl_cli_tests depends on the k2gym target)";
  const std::string chromium = Chromium();
  if (chromium.empty()) GTEST_SKIP() << "chromium is not installed (scripts/setup.sh installs the Debian package)";
  const fs::path dir = fs::temp_directory_path() / ("k2gym_report_render_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "run" / "trajectories");
  {
    std::ofstream csv(dir / "run" / "metrics.csv");
    csv << "step,key,value,t\n";
    for (int s = 0; s < 4; ++s)
      csv << s << ",success_rate," << 0.1 * s << ",0\n" << s << ",loss_policy," << 1.0 / (s + 1) << ",0\n"
          << s << ",temperature," << 1.0 - 0.1 * s << ",0\n";
  }
  {
    std::ofstream tj(dir / "run" / "trajectories" / "iter_0.jsonl");
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
  ShellOut r = RunShell(kBin + " report " + (dir / "run").string() + " 2>&1");
  ASSERT_EQ(r.rc, 0) << r.out;
  const std::string html = (dir / "run" / "report.html").string();
  ASSERT_TRUE(fs::exists(html));

  // Bounded: a hung browser fails the test after 90 s instead of hanging the suite.
  ShellOut dom = RunShell("timeout -k 5 90 " + chromium + " --headless --no-sandbox --disable-gpu --no-first-run" +
                  " --user-data-dir=" + (dir / "profile").string() + " --dump-dom file://" + html + " 2>/dev/null");
  ASSERT_EQ(dom.rc, 0) << "chromium exited " << dom.rc << "\n" << dom.out.substr(0, 2000);
  // The serialized DOM up to the viewer's script element (the script's own text holds the data and
  // markup strings; only what it generated counts).
  const size_t script = dom.out.find("<script>");
  ASSERT_NE(script, std::string::npos) << dom.out.substr(0, 2000);
  const std::string d = dom.out.substr(0, script);
  // The curves: one SVG with a chart group and a polyline per metric.
  EXPECT_EQ(Count(d, "<svg"), 1u) << d.substr(0, 3000);
  EXPECT_EQ(Count(d, "class=\"chart\""), 3u);
  EXPECT_EQ(Count(d, "<polyline"), 3u);
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
  EXPECT_TRUE(std::regex_search(d, std::regex("<span id=\"meta\">turns 1, tool calls 0, reward 0</span>")));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace k2
