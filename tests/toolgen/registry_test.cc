// Tool registry: import of every dump shape, invalid specs kept with reasons, re-import updates in
// place, near-duplicates, stats; and the real corpus (../shared/data/mcp_servers.jsonl) when present.
#include "toolgen/registry.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace k2::toolgen {
namespace {

namespace fs = std::filesystem;

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("k2gym_registry_" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "dumps" / "nested");
    auto db = Db::Open(":memory:");
    ASSERT_TRUE(db.ok());
    db_ = std::move(*db);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }
  fs::path dir_;
  std::unique_ptr<Db> db_;
};

const char* kTool = R"({"name":"get_weather","description":"Get the current weather for a city","inputSchema":{"type":"object","properties":{"city":{"type":"string"}}}})";

TEST_F(RegistryTest, ImportsEveryDumpShapeAndKeepsInvalidWithReason) {
  Write(dir_ / "dumps" / "weather.json", std::string(R"({"tools":[)") + kTool + "]}");
  Write(dir_ / "dumps" / "nested" / "rpc.json",
        R"({"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"read_file","description":"Read a file","inputSchema":{"type":"object"}},
           {"name":"bad tool","inputSchema":{"type":"object"}},{"name":"bad_schema","inputSchema":{"type":"object","properties":{"x":{"type":"int"}}}}]}})");
  Write(dir_ / "dumps" / "array.json", R"([{"name":"echo","inputSchema":{"type":"object"}},{"name":"echo","inputSchema":{"type":"object"}}])");
  Write(dir_ / "dumps" / "broken.json", "{not json");
  Write(dir_ / "dumps" / "ignored.txt", "not a dump");
  auto r = ImportTools(db_.get(), (dir_ / "dumps").string());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->files, 4);
  EXPECT_EQ(r->servers, 3);
  EXPECT_EQ(r->tools_seen, 6);
  EXPECT_EQ(r->exact_duplicates, 1);  // echo twice in array.json
  EXPECT_EQ(r->inserted, 5);
  EXPECT_EQ(r->valid, 3);
  EXPECT_EQ(r->invalid, 2);
  ASSERT_EQ(r->errors.size(), 1u);
  EXPECT_NE(r->errors[0].find("broken.json"), std::string::npos) << r->errors[0];

  auto stats = RegistryStats(db_.get());
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ((*stats)["tools"], 5);
  EXPECT_EQ((*stats)["invalid"], 2);
  ASSERT_EQ((*stats)["invalid_tools"].size(), 2u);
  EXPECT_EQ((*stats)["invalid_tools"][0]["tool"], "bad tool");
  EXPECT_EQ((*stats)["invalid_tools"][0]["reason"].get<std::string>().rfind("rpc.tools[1].name: expected 1-128 chars", 0), 0u);
  EXPECT_EQ((*stats)["invalid_tools"][1]["reason"].get<std::string>().rfind("rpc.tools[2].inputSchema/properties/x/type:", 0), 0u);
  EXPECT_EQ((*stats)["by_category"]["Weather"]["tools"], 1);  // guessed from the words
  EXPECT_EQ((*stats)["by_source"]["rpc.json"]["tools"], 3);
  EXPECT_EQ((*stats)["complexity_histogram"]["1"], 2);
  EXPECT_EQ((*stats)["complexity_histogram"]["2-3"], 1);

  auto tools = RegistryServerTools(db_.get(), "rpc");
  ASSERT_TRUE(tools.ok()) << tools.status().ToString();
  ASSERT_EQ(tools->size(), 1u);
  EXPECT_EQ((*tools)[0].name, "read_file");
  EXPECT_EQ((*tools)[0].provenance, "mcp:rpc");
  EXPECT_EQ(RegistryServerTools(db_.get(), "nope").status().code(), Code::kNotFound);
}

TEST_F(RegistryTest, ReimportUpdatesInPlaceAndMarksNearDuplicates) {
  Write(dir_ / "a.jsonl",
        std::string(R"({"id":"w1","server":"Weather One","category":"Weather","tools":[)") + kTool + "]}\n" +
            R"({"id":"w2","server":"Weather Two","category":"Weather","tools":[{"name":"get_weather","description":"Get the current weather for a city!","inputSchema":{"type":"object"}}]})" +
            "\n\n" + R"({"id":"w3","tools":[{"name":"get_weather","description":"Totally different text here","inputSchema":{"type":"object"}}]})" +
            "\nnot json\n");
  auto r = ImportTools(db_.get(), (dir_ / "a.jsonl").string());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->servers, 3);
  EXPECT_EQ(r->near_duplicates, 1);  // w2 copies w1; w3 does not
  ASSERT_EQ(r->errors.size(), 1u);
  EXPECT_EQ(r->errors[0].rfind("a.jsonl:5:", 0), 0u) << r->errors[0];
  auto again = ImportTools(db_.get(), (dir_ / "a.jsonl").string());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->inserted, 0);
  EXPECT_EQ(again->updated, 3);
  auto stats = RegistryStats(db_.get());
  EXPECT_EQ((*stats)["tools"], 3);
  EXPECT_EQ((*stats)["near_duplicates"], 1);
  EXPECT_EQ(ImportTools(db_.get(), (dir_ / "missing").string()).status().code(), Code::kNotFound);
}

TEST(RegistryHelpers, ComplexityCategoryJaccard) {
  EXPECT_EQ(SchemaComplexity(json::parse(R"({"type":"object"})")), 1);
  EXPECT_EQ(SchemaComplexity(json::parse(
                R"({"type":"object","properties":{"a":{"type":"array","items":{"anyOf":[{"type":"string"},{"type":"null"}]}}},"$defs":{"d":{}}})")),
            6);
  EXPECT_EQ(ComplexityBucket(1), "1");
  EXPECT_EQ(ComplexityBucket(5), "4-7");
  EXPECT_EQ(ComplexityBucket(40), "32+");
  EXPECT_EQ(GuessCategory("get the weather forecast"), "Weather");
  EXPECT_EQ(GuessCategory("list github pull requests in a repository"), "Development Tools");
  EXPECT_EQ(GuessCategory("zzz"), "Others");
  EXPECT_DOUBLE_EQ(WordJaccard("a b c", "C b A"), 1.0);
  EXPECT_DOUBLE_EQ(WordJaccard("a b", "b c"), 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(WordJaccard("", ""), 1.0);
}

TEST(RegistryCorpus, ImportsTheSharedCorpus) {
  const std::string corpus = std::string(K2GYM_SOURCE_DIR) + "/../shared/data/mcp_servers.jsonl";
  if (!fs::exists(corpus)) GTEST_SKIP() << "corpus absent: " << corpus << " (../shared/data is not part of the repo)";
  auto db = Db::Open(":memory:");
  ASSERT_TRUE(db.ok());
  auto r = ImportTools(db->get(), corpus);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::printf("[corpus] servers %lld, tools %lld, valid %lld, invalid %lld, exact dups %lld, near dups %lld\n",
              static_cast<long long>(r->servers), static_cast<long long>(r->tools_seen), static_cast<long long>(r->valid),
              static_cast<long long>(r->invalid), static_cast<long long>(r->exact_duplicates),
              static_cast<long long>(r->near_duplicates));
  EXPECT_TRUE(r->errors.empty());
  EXPECT_GE(r->valid, 3000);
  EXPECT_EQ(r->valid + r->invalid + r->exact_duplicates, r->tools_seen);
  auto stats = RegistryStats(db->get());
  ASSERT_TRUE(stats.ok());
  for (const auto& t : (*stats)["invalid_tools"]) EXPECT_FALSE(t["reason"].get<std::string>().empty()) << t.dump();
  EXPECT_EQ((*stats)["invalid_tools"].size(), static_cast<size_t>(r->invalid));
  // Keyword categories against the corpus's own labels: printed, and pinned loosely so a broken
  // tokenizer shows up.
  auto q = (*db)->Prepare("SELECT s.category, s.name, group_concat(t.name || ' ' || t.description, ' ') FROM tool_servers s "
                          "JOIN tools t ON t.server_id = s.id GROUP BY s.id");
  ASSERT_TRUE(q.ok());
  int n = 0, agree = 0;
  while (q->Step()) {
    ++n;
    agree += GuessCategory(q->Text(1) + " " + q->Text(2)) == q->Text(0);
  }
  std::printf("[corpus] keyword category agrees with the corpus label for %d of %d servers\n", agree, n);
  EXPECT_GT(agree, n / 4);
}

}  // namespace
}  // namespace k2::toolgen
