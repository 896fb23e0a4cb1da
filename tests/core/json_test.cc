// JSON helpers: located parse errors, JSON Lines, canonical form, atomic writes.
#include "core/json.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/hash.h"

namespace k2 {
namespace {

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("k2gym_json_" + std::to_string(getpid()) + "_" + name)).string();
}

TEST(Json, ParseErrorNamesSourceLineColumn) {
  auto j = ParseJson("{\"a\": 1,\n \"b\": tru }", "cfg.json");
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().message().rfind("cfg.json:2:", 0), 0u) << j.status().message();
}

TEST(Json, JsonLinesReportsBadLine) {
  std::string p = TempPath("lines.jsonl");
  std::ofstream(p) << "{\"a\":1}\n\n{\"a\":2}\n{oops}\n";
  auto r = ReadJsonLines(p);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(p + ":4:1:2: invalid JSON"), std::string::npos) << r.status().message();
  std::ofstream(p) << "{\"a\":1}\n\n{\"a\":2}\n";
  auto ok = ReadJsonLines(p);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->size(), 2u);
  std::filesystem::remove(p);
}

TEST(Json, CanonicalSortsKeysCompact) {
  json j = json::parse(R"({"b": [1, 2], "a": {"d": 1, "c": "é"}})");
  EXPECT_EQ(CanonicalJson(j), R"({"a":{"c":"é","d":1},"b":[1,2]})");
}

TEST(Json, WriteFileAtomicReplacesWhole) {
  std::string p = TempPath("atomic.txt");
  ASSERT_TRUE(WriteFileAtomic(p, "first").ok());
  ASSERT_TRUE(WriteFileAtomic(p, "second").ok());
  EXPECT_EQ(*ReadFile(p), "second");
  EXPECT_FALSE(std::filesystem::exists(p + ".tmp." + std::to_string(getpid())));
  std::filesystem::remove(p);
  EXPECT_EQ(WriteFileAtomic("/nonexistent-dir/x", "y").code(), Code::kIoError);
}

TEST(Json, MissingFileIsIoErrorNamingPath) {
  auto r = ReadJsonFile("/nonexistent/k2.json");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kIoError);
  EXPECT_NE(r.status().message().find("/nonexistent/k2.json"), std::string::npos);
}

TEST(Json, TypeNames) {
  EXPECT_STREQ(JsonTypeName(json(1)), "integer");
  EXPECT_STREQ(JsonTypeName(json(1.5)), "number");
  EXPECT_STREQ(JsonTypeName(json::array()), "array");
}

TEST(Hash, Sha256KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace k2
