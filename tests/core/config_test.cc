// Config: strict reading, exact error messages, --set typing, resolution and docs.
#include "core/config.h"

#include <gtest/gtest.h>

namespace k2::config {
namespace {

struct Inner {
  int depth = 3;
  std::string mode = "fast";
  template <class V>
  void Visit(V& v) {
    v("depth", depth, "nesting depth", {.min = 1, .max = 8});
    v("mode", mode, "speed mode", {.choices = {"fast", "exact"}});
  }
};

struct TestConfig {
  int workers = 2;
  double lr = 0.001;
  bool verbose = false;
  std::string name = "run";
  std::vector<std::string> tags;
  std::optional<int> q_rank;
  int64_t big = 1;
  Inner inner;
  template <class V>
  void Visit(V& v) {
    v("workers", workers, "worker threads", {.min = 1, .max = 256});
    v("lr", lr, "learning rate", {.min = 0});
    v("verbose", verbose, "chatty");
    v("name", name, "run name");
    v("tags", tags, "labels");
    v("q_rank", q_rank, "null disables", {.min = 1});
    v("big", big, "a 64-bit count");
    v("inner", inner, "nested section");
  }
};
K2_CONFIG_SECTION("test", TestConfig, "A section for tests.");

Status ReadErr(const std::string& text) {
  auto j = ParseJson(text, "t.json");
  if (!j.ok()) return j.status();
  return Resolve(*j, "t.json").status();
}

// Each bad config pins its exact message: users act on these lines.
TEST(Config, UnknownKeyNamesNearestValidKey) {
  EXPECT_EQ(ReadErr(R"({"test":{"wrokers":3}})").message(),
            "t.json: unknown key \"test.wrokers\" (did you mean \"test.workers\"?)");
}
TEST(Config, UnknownSectionNamesNearestSection) {
  EXPECT_EQ(ReadErr(R"({"tset":{}})").message(), "t.json: unknown key \"tset\" (did you mean \"test\"?)");
}
TEST(Config, UnknownKeyWithNothingCloseHasNoSuggestion) {
  EXPECT_EQ(ReadErr(R"({"test":{"zzzzzzzzzzzz":1}})").message(), "t.json: unknown key \"test.zzzzzzzzzzzz\"");
}
TEST(Config, WrongTypeNamesExpectedTypeAndRange) {
  EXPECT_EQ(ReadErr(R"({"test":{"workers":"2"}})").message(),
            "t.json: test.workers: expected integer in [1, 256], got string \"2\"");
}
TEST(Config, OutOfRangeInteger) {
  EXPECT_EQ(ReadErr(R"({"test":{"workers":0}})").message(), "t.json: test.workers: expected integer in [1, 256], got 0");
}
TEST(Config, FractionalIntegerRejected) {
  EXPECT_EQ(ReadErr(R"({"test":{"workers":2.5}})").message(),
            "t.json: test.workers: expected integer in [1, 256], got 2.5");
}
TEST(Config, NegativeNumberBelowMinimum) {
  EXPECT_EQ(ReadErr(R"({"test":{"lr":-1}})").message(), "t.json: test.lr: expected number >= 0, got -1");
}
TEST(Config, BooleanMustBeBoolean) {
  EXPECT_EQ(ReadErr(R"({"test":{"verbose":1}})").message(), "t.json: test.verbose: expected boolean, got 1");
}
TEST(Config, ChoiceOutsideTheList) {
  EXPECT_EQ(ReadErr(R"({"test":{"inner":{"mode":"slow"}}})").message(),
            "t.json: test.inner.mode: expected one of \"fast\", \"exact\", got string \"slow\"");
}
TEST(Config, NestedUnknownKey) {
  EXPECT_EQ(ReadErr(R"({"test":{"inner":{"dept":2}}})").message(),
            "t.json: unknown key \"test.inner.dept\" (did you mean \"test.inner.depth\"?)");
}
TEST(Config, SectionMustBeObject) {
  EXPECT_EQ(ReadErr(R"({"test":[1,2]})").message(), "t.json: test: expected object, got array [1,2]");
}
TEST(Config, ArrayElementTypeNamesIndex) {
  EXPECT_EQ(ReadErr(R"({"test":{"tags":["a",3]}})").message(), "t.json: test.tags[1]: expected string, got 3");
}
TEST(Config, RootMustBeObject) {
  EXPECT_EQ(ReadErr(R"([1])").message(), "t.json: <root>: expected object, got array [1]");
}
TEST(Config, InvalidJsonNamesLineAndColumn) {
  Status s = ReadErr("{\n  \"test\": {,}\n}");
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_EQ(s.message().rfind("t.json:2:12: invalid JSON:", 0), 0u) << s.message();
}
TEST(Config, OptionalAcceptsNullAndChecksRange) {
  EXPECT_TRUE(ReadErr(R"({"test":{"q_rank":null}})").ok());
  EXPECT_EQ(ReadErr(R"({"test":{"q_rank":0}})").message(), "t.json: test.q_rank: expected integer >= 1, got 0");
}

TEST(Config, ResolveFillsDefaultsAndKeepsValues) {
  auto r = Resolve(json::parse(R"({"test":{"workers":7,"inner":{"mode":"exact"}}})"), "t.json");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["test"]["workers"], 7);
  EXPECT_EQ((*r)["test"]["lr"], 0.001);
  EXPECT_EQ((*r)["test"]["inner"]["depth"], 3);
  EXPECT_EQ((*r)["test"]["inner"]["mode"], "exact");
  EXPECT_TRUE((*r)["test"]["q_rank"].is_null());
  auto cfg = Get<TestConfig>(*r, "test");
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(cfg->workers, 7);
  EXPECT_EQ(cfg->inner.mode, "exact");
}

TEST(Config, SetIsTypedBySchema) {
  json root = json::object();
  ASSERT_TRUE(ApplySet(root, "test.workers=12").ok());
  ASSERT_TRUE(ApplySet(root, "test.lr=0.5").ok());
  ASSERT_TRUE(ApplySet(root, "test.verbose=true").ok());
  ASSERT_TRUE(ApplySet(root, "test.name=123").ok());  // a string stays a string
  ASSERT_TRUE(ApplySet(root, "test.tags=a,b").ok());
  ASSERT_TRUE(ApplySet(root, "test.inner.depth=5").ok());
  EXPECT_EQ(root["test"]["workers"], 12);
  EXPECT_EQ(root["test"]["lr"], 0.5);
  EXPECT_EQ(root["test"]["verbose"], true);
  EXPECT_EQ(root["test"]["name"], "123");
  EXPECT_EQ(root["test"]["tags"], json::parse(R"(["a","b"])"));
  EXPECT_EQ(root["test"]["inner"]["depth"], 5);
  EXPECT_TRUE(Resolve(root, "--set").ok());
}

TEST(Config, SetErrors) {
  json root = json::object();
  EXPECT_EQ(ApplySet(root, "test.workers=two").message(), "--set test.workers: expected integer, got \"two\"");
  EXPECT_EQ(ApplySet(root, "test.verbose=yes").message(),
            "--set test.verbose: expected boolean (true or false), got \"yes\"");
  EXPECT_EQ(ApplySet(root, "test.wrkers=1").message(), "--set: unknown key \"test.wrkers\" (did you mean \"test.workers\"?)");
  EXPECT_EQ(ApplySet(root, "novalue").message(), "--set novalue: expected key.path=value");
  // Range is checked at resolution, with the same message as a file.
  ASSERT_TRUE(ApplySet(root, "test.workers=1000").ok());
  EXPECT_EQ(Resolve(root, "--set").status().message(), "--set: test.workers: expected integer in [1, 256], got 1000");
}

TEST(Config, DocListsEveryField) {
  std::string md = DocMarkdown();
  EXPECT_NE(md.find("## `test`"), std::string::npos);
  EXPECT_NE(md.find("| `test.workers` | integer in [1, 256] | `2` | worker threads |"), std::string::npos) << md;
  EXPECT_NE(md.find("`test.inner.mode` | one of \"fast\", \"exact\""), std::string::npos);
}

TEST(Config, NearestRespectsDistanceLimit) {
  EXPECT_EQ(Nearest("lr", {"lr", "workers"}), "lr");
  EXPECT_EQ(Nearest("xyzxyz", {"lr", "workers"}), "");
}

// Integer fields are range-checked exactly, not through double (where 2^63 == INT64_MAX).
struct IntsConfig {
  int i32 = 0;
  int64_t i64 = 0;
  uint64_t u64 = 0;
  template <class V>
  void Visit(V& v) {
    v("i32", i32, "int");
    v("i64", i64, "int64");
    v("u64", u64, "uint64");
  }
};
K2_CONFIG_SECTION("ints", IntsConfig, "Integer range tests.");

Expected<IntsConfig> ReadInts(const std::string& text) {
  auto j = ParseJson(text, "t.json");
  if (!j.ok()) return j.status();
  K2_ASSIGN_OR_RETURN(json r, Resolve(*j, "t.json"));
  return Get<IntsConfig>(r, "ints");
}

TEST(Config, Int64At2To63IsRangeErrorNotWrap) {
  auto max = ReadInts(R"({"ints":{"i64":9223372036854775807}})");
  ASSERT_TRUE(max.ok()) << max.status().ToString();
  EXPECT_EQ(max->i64, INT64_MAX);
  auto min = ReadInts(R"({"ints":{"i64":-9223372036854775808}})");
  ASSERT_TRUE(min.ok()) << min.status().ToString();
  EXPECT_EQ(min->i64, INT64_MIN);
  EXPECT_EQ(ReadInts(R"({"ints":{"i64":9223372036854775808}})").status().message(),
            "t.json: ints.i64: expected integer, got 9223372036854775808");
  EXPECT_FALSE(ReadInts(R"({"ints":{"i32":2147483648}})").ok());
  EXPECT_FALSE(ReadInts(R"({"ints":{"i32":-2147483649}})").ok());
  EXPECT_TRUE(ReadInts(R"({"ints":{"i32":-2147483648}})").ok());
}

TEST(Config, FloatIsRangeCheckedBeforeConversion) {
  // 9223372036854775807.0 is 2^63 as a double: one past INT64_MAX.
  EXPECT_FALSE(ReadInts(R"({"ints":{"i64":9223372036854775807.0}})").ok());
  EXPECT_FALSE(ReadInts(R"({"ints":{"i64":1e300}})").ok());
  EXPECT_FALSE(ReadInts(R"({"ints":{"i64":-1e19}})").ok());
  auto neg = ReadInts(R"({"ints":{"i64":-9.223372036854775808e18}})");  // exactly -2^63: fits
  ASSERT_TRUE(neg.ok()) << neg.status().ToString();
  EXPECT_EQ(neg->i64, INT64_MIN);
  auto u = ReadInts(R"({"ints":{"u64":1.8e19,"i32":3.0}})");  // under 2^64: fits uint64
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->u64, 18000000000000000000ull);
  EXPECT_EQ(u->i32, 3);
  EXPECT_FALSE(ReadInts(R"({"ints":{"u64":1.8446744073709552e19}})").ok());  // 2^64
  EXPECT_FALSE(ReadInts(R"({"ints":{"u64":-1}})").ok());
  EXPECT_TRUE(ReadInts(R"({"ints":{"u64":18446744073709551615}})").ok());
}

TEST(Config, NumberOutOfDoubleRangeInFileIsLocatedError) {
  EXPECT_EQ(ReadErr(R"({"test":{"lr":1e999}})").message(),
            "t.json:1:19: invalid JSON: number 1e999 is outside the double range (at /test/lr)");
}

}  // namespace
}  // namespace k2::config
