// The user manual stays inside the repository and speaks of the project, not of its history: every link
// and every docs/ page named in README.md, docs/ and examples/ resolves to a file of the checkout.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

fs::path Root() { return fs::weakly_canonical(fs::path(K2GYM_SOURCE_DIR)); }

// README.md, every page of docs/ and every README of examples/.
std::vector<fs::path> Manual() {
  std::vector<fs::path> files = {Root() / "README.md"};
  for (const auto& dir : {Root() / "docs", Root() / "examples"}) {
    if (!fs::exists(dir)) continue;
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      if (e.is_regular_file() && e.path().extension() == ".md") files.push_back(e.path());
    }
  }
  return files;
}

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int LineOf(const std::string& text, size_t pos) {
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(pos), '\n'));
}

bool InsideRoot(const fs::path& p) {
  auto c = fs::weakly_canonical(p).string();
  auto r = Root().string();
  return c == r || c.rfind(r + "/", 0) == 0;
}

TEST(Docs, TheManualExistsAndNamesAnArchitecturePage) {
  auto files = Manual();
  ASSERT_GT(files.size(), 10u);
  EXPECT_TRUE(fs::exists(Root() / "docs" / "architecture.md"));
}

// Markdown links [text](target): relative, inside the checkout, to a file that exists. Links to a
// running server of the user's own machine (loopback) are examples, not references, and are allowed.
TEST(Docs, EveryLinkResolvesInsideTheRepository) {
  const std::regex link(R"(\]\(([^)\s]+)\))");
  int checked = 0;
  for (const auto& f : Manual()) {
    std::string text = Slurp(f);
    for (std::sregex_iterator it(text.begin(), text.end(), link), end; it != end; ++it) {
      std::string target = (*it)[1].str();
      std::string where = f.lexically_relative(Root()).string() + ":" + std::to_string(LineOf(text, it->position()));
      if (target.rfind("http://127.0.0.1", 0) == 0 || target.rfind("http://localhost", 0) == 0) continue;
      EXPECT_EQ(target.find("://"), std::string::npos) << where << ": link leaves the repository: " << target;
      if (target.find("://") != std::string::npos || target.rfind("mailto:", 0) == 0) continue;
      std::string path = target.substr(0, target.find('#'));
      if (path.empty()) continue;  // an anchor in the same page
      fs::path resolved = path[0] == '/' ? Root() / path.substr(1) : f.parent_path() / path;
      EXPECT_TRUE(InsideRoot(resolved)) << where << ": link outside the checkout: " << target;
      EXPECT_TRUE(fs::exists(resolved)) << where << ": link to a missing file: " << target;
      ++checked;
    }
  }
  SUCCEED() << checked << " links checked";
}

// Pages named in prose ("docs/eval.md", "`docs/guide.md`") exist, and nothing points at the shared data
// folder beside the checkout by a relative path (users get the data from the benchmarks themselves).
TEST(Docs, EveryNamedPageExistsAndNoPathLeavesTheCheckout) {
  const std::regex page(R"(docs/[A-Za-z0-9_./-]+\.md)");
  for (const auto& f : Manual()) {
    std::string text = Slurp(f);
    for (std::sregex_iterator it(text.begin(), text.end(), page), end; it != end; ++it) {
      std::string name = it->str();
      EXPECT_TRUE(fs::exists(Root() / name)) << f.lexically_relative(Root()).string() << ":"
                                             << LineOf(text, it->position()) << ": names a missing page " << name;
    }
    size_t pos = text.find("../shared");
    EXPECT_EQ(pos, std::string::npos) << f.lexically_relative(Root()).string() << ":"
                                      << (pos == std::string::npos ? 0 : LineOf(text, pos))
                                      << ": a path outside the repository";
  }
}

// The manual describes the project as it is; how it got there belongs to CHANGELOG.md. "session" alone is
// a protocol word here (MCP sessions, generator sessions), so only its history phrasings are refused.
TEST(Docs, HoldNoWorkHistory) {
  const std::regex history(
      R"(\b(this|previous|earlier|last|next|that) session\b|\bsession (before|after|[0-9]+)\b|\bhelper [a-z]?[0-9]+\b)");
  for (const auto& f : Manual()) {
    std::string text = Slurp(f);
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    std::smatch m;
    std::string::const_iterator from = text.begin();
    while (std::regex_search(from, text.cend(), m, history)) {
      size_t pos = static_cast<size_t>(m[0].first - text.begin());
      ADD_FAILURE() << f.lexically_relative(Root()).string() << ":" << LineOf(text, pos)
                    << ": work history in the manual (move it to CHANGELOG.md): \"" << m[0].str() << "\"";
      from = m[0].second;
    }
  }
}

}  // namespace
