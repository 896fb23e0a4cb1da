// Schema: error pointers, the 2020-12 keywords the suite package lacks, malformed-schema reporting, and
// concurrent validation.
#include "toolgen/schema.h"

#include <thread>

#include <gtest/gtest.h>

namespace k2::toolgen {
namespace {

std::shared_ptr<const Schema> MustCompile(const char* text) {
  auto j = ParseJson(text, "test");
  EXPECT_TRUE(j.ok()) << j.status().ToString();
  auto s = Schema::Compile(*j, "s");
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? *s : nullptr;
}

TEST(Schema, ErrorNamesPointerOfNestedValueAndTypes) {
  auto s = MustCompile(R"({"type":"object","properties":{"items":{"type":"array","items":{"type":"object",
      "properties":{"qty":{"type":"integer"}}}}}})");
  auto st = s->Validate(json::parse(R"({"items":[{"qty":"3"}]})"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_EQ(st.message().rfind("/items/0/qty: expected integer, got string", 0), 0u) << st.message();
}

TEST(Schema, RootErrorIsShownAsSlash) {
  auto s = MustCompile(R"({"type":"object","required":["a"]})");
  auto st = s->Validate(json::object());
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind("/: ", 0), 0u) << st.message();
}

TEST(Schema, KeysThatLookLikeIndicesStayKeysAndSlashesAreEscaped) {
  auto s = MustCompile(R"({"type":"object","properties":{"0":{"type":"object","properties":{"a/b":{"type":"string"}}}}})");
  auto st = s->Validate(json::parse(R"({"0":{"a/b":1}})"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind("/0/a~1b: expected string, got integer", 0), 0u) << st.message();
}

TEST(Schema, IntegerVersusNumber) {
  auto s = MustCompile(R"({"type":"object","properties":{"n":{"type":"integer"},"x":{"type":["number","null"]}}})");
  EXPECT_TRUE(s->Validate(json::parse(R"({"n":3,"x":1.5})")).ok());
  EXPECT_TRUE(s->Validate(json::parse(R"({"n":3.0,"x":null})")).ok());  // 3.0 is an integer in JSON Schema
  EXPECT_FALSE(s->Validate(json::parse(R"({"n":3.5})")).ok());
  EXPECT_FALSE(s->Validate(json::parse(R"({"x":"1"})")).ok());
}

TEST(Schema, PrefixItemsWithRestItems) {
  auto s = MustCompile(R"({"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":{"type":"boolean"}})");
  EXPECT_TRUE(s->Validate(json::parse(R"(["a",1,true,false])")).ok());
  EXPECT_TRUE(s->Validate(json::parse(R"(["a"])")).ok());
  auto st = s->Validate(json::parse(R"(["a",1,"no"])"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind("/2:", 0), 0u) << st.message();
  EXPECT_FALSE(s->Validate(json::parse(R"([1])")).ok());
  auto closed = MustCompile(R"({"prefixItems":[{"type":"string"}],"items":false})");
  EXPECT_FALSE(closed->Validate(json::parse(R"(["a","b"])")).ok());
}

TEST(Schema, DefsRefAndDefinitionsRef) {
  auto s = MustCompile(R"({"type":"object","properties":{"p":{"$ref":"#/$defs/pos"},"q":{"$ref":"#/definitions/neg"}},
      "$defs":{"pos":{"type":"integer","minimum":1}},"definitions":{"neg":{"type":"integer","maximum":-1}}})");
  EXPECT_TRUE(s->Validate(json::parse(R"({"p":2,"q":-2})")).ok());
  auto st = s->Validate(json::parse(R"({"p":0})"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message().rfind("/p:", 0), 0u) << st.message();
  EXPECT_FALSE(s->Validate(json::parse(R"({"q":0})")).ok());
}

TEST(Schema, DependentRequiredAndDraft04ExclusiveBounds) {
  auto s = MustCompile(R"({"dependentRequired":{"card":["cvv"]},"properties":{"n":{"minimum":0,"exclusiveMinimum":true}}})");
  EXPECT_TRUE(s->Validate(json::parse(R"({"card":"x","cvv":"1","n":1})")).ok());
  EXPECT_FALSE(s->Validate(json::parse(R"({"card":"x"})")).ok());
  EXPECT_FALSE(s->Validate(json::parse(R"({"n":0})")).ok());
}

TEST(Schema, EnumConstPatternAndCombinators) {
  auto s = MustCompile(R"({"type":"object","additionalProperties":false,"properties":{
      "unit":{"enum":["c","f"]},"v":{"const":1},"code":{"type":"string","pattern":"^[A-Z]{3}$"},
      "id":{"anyOf":[{"type":"string"},{"type":"integer"}]},"one":{"oneOf":[{"minimum":0},{"maximum":10}]},
      "no":{"not":{"type":"null"}},"all":{"allOf":[{"minLength":2},{"maxLength":3}]},"d":{"type":"string","default":"x"}}})");
  EXPECT_TRUE(s->Validate(json::parse(R"({"unit":"c","v":1,"code":"ABC","id":3,"one":-5,"no":1,"all":"ab"})")).ok());
  for (const char* bad : {R"({"unit":"k"})", R"({"v":2})", R"({"code":"abc"})", R"({"id":1.5})", R"({"one":5})",
                          R"({"no":null})", R"({"all":"abcd"})", R"({"extra":1})"}) {
    auto st = s->Validate(json::parse(bad));
    EXPECT_FALSE(st.ok()) << bad;
    EXPECT_EQ(st.message()[0], '/') << st.message();
  }
}

TEST(Schema, MalformedSchemaNamesSchemaPointer) {
  struct Case {
    const char* schema;
    const char* prefix;
  };
  for (auto c : {Case{R"({"properties":{"x":{"type":"int"}}})", "in/properties/x/type: expected one of"},
                 Case{R"({"required":"a"})", "in/required: expected an array"},
                 Case{R"({"properties":{"p":{"pattern":"(unclosed"}}})", "in/properties/p/pattern: pattern"},
                 Case{R"({"items":{"$ref":"#/$defs/missing"}})", "in/items/$ref: $ref \"#/$defs/missing\" does not resolve"},
                 Case{R"({"$ref":"http://example.com/s.json"})", "in/$ref: only local $ref"},
                 Case{R"({"minLength":-1})", "in/minLength: expected a non-negative integer"},
                 Case{R"({"anyOf":[]})", "in/anyOf: expected a non-empty array"},
                 Case{R"(3)", "in: expected a schema"}}) {
    auto st = Schema::Compile(json::parse(c.schema), "in");
    ASSERT_FALSE(st.ok()) << c.schema;
    EXPECT_EQ(st.status().message().rfind(c.prefix, 0), 0u) << st.status().message();
  }
}

TEST(Schema, ConcurrentValidationGivesSameAnswers) {
  auto s = MustCompile(R"({"type":"object","properties":{"s":{"type":"string","pattern":"^a+$"}}})");
  std::vector<std::thread> ts;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        bool good = ((i + t) % 2) == 0;
        json v = {{"s", good ? "aaa" : "ab"}};
        if (s->Validate(v).ok() != good) ++wrong;
      }
    });
  }
  for (auto& th : ts) th.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(Schema, JsonPointerEscapes) {
  EXPECT_EQ(JsonPointer({}), "/");
  EXPECT_EQ(JsonPointer({"a", "b/c", "d~e", "0"}), "/a/b~1c/d~0e/0");
}

}  // namespace
}  // namespace k2::toolgen
