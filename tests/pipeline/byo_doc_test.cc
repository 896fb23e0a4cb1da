// docs/byo.md is executable: every ```sh block runs from the repository root with the built k2gym on
// the PATH (including the out-of-tree build of the ledger plugin against `cmake --install`), and must
// succeed; the ledger plugin built out of tree then scores its gold tasks 1.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include <gtest/gtest.h>

#include "core/json.h"
#include "tests/cli_util.h"

namespace k2 {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> ShellBlocks(const std::string& md) {
  std::vector<std::string> out;
  size_t p = 0;
  while ((p = md.find("```sh\n", p)) != std::string::npos) {
    size_t b = p + 6, e = md.find("\n```", b);
    if (e == std::string::npos) break;
    out.push_back(md.substr(b, e - b + 1));
    p = e + 4;
  }
  return out;
}

TEST(ByoDoc, EveryShellBlockRunsAndTheOutOfTreePluginScoresItsGoldTasks) {
  std::ifstream in(std::string(K2GYM_SOURCE_DIR) + "/docs/byo.md");
  ASSERT_TRUE(in) << "docs/byo.md missing";
  std::string md((std::istreambuf_iterator<char>(in)), {});
  auto blocks = ShellBlocks(md);
  ASSERT_GE(blocks.size(), 5u);
  const fs::path dir = fs::temp_directory_path() / ("k2gym_byo_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "tmp");
  const std::string env = "cd '" + std::string(K2GYM_SOURCE_DIR) + "' && export PATH='" + std::string(K2GYM_BINARY_DIR) +
                          "/apps':\"$PATH\" DB='" + (dir / "k.db").string() + "' TMP='" + (dir / "tmp").string() +
                          "' PREFIX='" + (dir / "prefix").string() + "' && set -e\n";
  for (size_t i = 0; i < blocks.size(); ++i) {
    auto r = test::RunShell("bash -c " + [](std::string s) {
      std::string q = "'";
      for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
      return q + "'";
    }(env + blocks[i]) + " 2>&1");
    ASSERT_EQ(r.rc, 0) << "docs/byo.md block " << i << ":\n" << blocks[i] << "\n---\n" << r.out;
  }
  // The plugin built out of tree (against the installed headers) runs and scores like the in-tree one.
  const std::string so = (dir / "tmp" / "ledger" / "libledger_env.so").string();
  ASSERT_TRUE(fs::exists(so));
  auto r = test::RunK2gym("--json --db " + (dir / "k.db").string() + " eval --source " + (dir / "tmp" / "ledger.json").string() +
                          " --policy gold --trials 1 --plugin " + so, true);
  ASSERT_EQ(r.rc, 0) << r.out;
  auto j = json::parse(r.out.substr(r.out.find('{')));
  ASSERT_EQ(j["trials_detail"].size(), 2u);
  for (const auto& t : j["trials_detail"]) EXPECT_EQ(t["reward"].get<double>(), 1.0) << t.dump();
  EXPECT_TRUE(fs::exists(dir / "prefix" / "lib" / "cmake" / "k2gym" / "k2gymConfig.cmake"));
  EXPECT_TRUE(fs::exists(dir / "prefix" / "include" / "k2gym" / "agents" / "env.h"));
  if (!HasFailure()) fs::remove_all(dir);
}

}  // namespace
}  // namespace k2
