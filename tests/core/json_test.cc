// JSON helpers: located parse errors, JSON Lines, canonical form, atomic writes.
#include "core/json.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/hash.h"
#include "core/json_limits.h"

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

TEST(Json, NumberOutsideDoubleRangeIsErrorNamingPointerNotException) {
  auto j = ParseJson("{\"a\": [1, {\"b~/\": -1e400}]}", "n.json");
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(j.status().message(), "n.json:1:24: invalid JSON: number -1e400 is outside the double range (at /a/1/b~0~1)");
  EXPECT_FALSE(ParseJson("1e999", "x").ok());
  auto big = ParseJson("[18446744073709551616, 1.7976931348623157e308, 4.9e-324]", "x");  // beyond uint64: a double
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_TRUE((*big)[0].is_number_float());
}

TEST(Json, NestingIsRefusedOverTheLimitBeforeAnyRecursion) {
  auto nest = [](size_t n) { return std::string(n, '[') + std::string(n, ']'); };
  EXPECT_TRUE(ParseJson(nest(512), "x").ok());
  auto deep = ParseJson(nest(513), "d.json");
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.status().message().rfind("d.json:1:513: invalid JSON: nesting deeper than 512 levels (at /0/0/0/", 0), 0u)
      << deep.status().message();
  // 400k levels (a stack overflow in a recursive parser) and objects count the same way.
  std::string obj;
  for (int i = 0; i < 400000; ++i) obj += "{\"k\":";
  auto o = ParseJson(obj, "o.json");
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("nesting deeper than 512 levels (at /k/k/k/"), std::string::npos);
  JsonLimits tight;
  tight.max_depth = 2;
  EXPECT_TRUE(ParseJson("{\"a\":[1]}", "x", tight).ok());
  EXPECT_FALSE(ParseJson("{\"a\":[[1]]}", "x", tight).ok());
  // A bracket inside a string is not nesting.
  EXPECT_TRUE(ParseJson("[\"[[[[\\\"[[\"]", "x", tight).ok());
}

TEST(Json, DocumentOverSizeLimitIsRefused) {
  JsonLimits small;
  small.max_bytes = 8;
  EXPECT_TRUE(ParseJson("[1,2,3]", "x", small).ok());
  auto r = ParseJson("[1,2,3,4,5]", "body", small);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "body: invalid JSON: document of 11 bytes is over the limit of 8 bytes");
  std::string p = TempPath("big.json");
  std::ofstream(p) << "[1,2,3,4,5]";
  auto f = ReadJsonFile(p, small);
  ASSERT_FALSE(f.ok());
  EXPECT_NE(f.status().message().find("file of 11 bytes is over the limit of 8 bytes"), std::string::npos);
  std::filesystem::remove(p);
}

TEST(Json, HugelyNestedValueIsCheckedAndFreedWithoutRecursion) {
  json deep = json::array();
  for (int i = 0; i < 300000; ++i) deep = json::array({std::move(deep)});
  Status s = CheckJsonDepth(deep, 512, "built");
  EXPECT_EQ(s.message().rfind("built: nesting deeper than 512 levels (at /0/0/", 0), 0u) << s.message();
  EXPECT_TRUE(CheckJsonDepth(json::parse(R"({"a":[{"b":1}]})"), 3, "x").ok());
  EXPECT_FALSE(CheckJsonDepth(json::parse(R"({"a":[{"b":[]}]})"), 3, "x").ok());
  deep = nullptr;  // nlohmann >= 3.10 tears this down iteratively; a recursive destructor overflows here
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
