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


// `pattern` runs on PCRE2 under match limits: catastrophic backtracking and long subjects end in a
// validation error naming the value, never a hang or a stack overflow.
TEST(Schema, PatternHittingMatchLimitIsValidationErrorNamingPointer) {
  auto s = MustCompile(R"({"type":"object","properties":{"q":{"type":"string","pattern":"^(a+)+$"},
                          "r":{"type":"string","pattern":"^(a|b)*$"}}})");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->Validate(json{{"q", "aaaa"}}).ok());
  EXPECT_EQ(s->Validate(json{{"q", "aab"}}).message(), "/q: does not match pattern \"^(a+)+$\"");
  auto redos = s->Validate(json{{"q", std::string(40, 'a') + "b"}});
  EXPECT_EQ(redos.message().rfind("/q: pattern \"^(a+)+$\" hit the regex match limit", 0), 0u) << redos.message();
  auto stack = s->Validate(json{{"r", std::string(100000, 'a')}});
  EXPECT_EQ(stack.message().rfind("/r: pattern \"^(a|b)*$\" hit the regex match limit", 0), 0u) << stack.message();
  EXPECT_TRUE(s->Validate(json{{"r", std::string(1000, 'b')}}).ok());
}

TEST(Schema, PatternIsEcmaLikeOnPcre2) {
  auto s = MustCompile(R"({"properties":{"p":{"pattern":"^\\u0041\\d+$"},"u":{"pattern":"^.$"}}})");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->Validate(json{{"p", "A12"}}).ok());
  EXPECT_FALSE(s->Validate(json{{"p", "A12\n"}}).ok());  // $ is the end of the string only
  EXPECT_TRUE(s->Validate(json{{"u", "\u00e9"}}).ok());   // one code point, two UTF-8 bytes
  EXPECT_TRUE(s->Validate(json{{"p", 5}}).ok());          // pattern ignores non-strings
  auto bad = Schema::Compile(json::parse(R"({"pattern":"a{2,1}"})"), "in");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().rfind("in/pattern: pattern \"a{2,1}\" is not a valid regex", 0), 0u)
      << bad.status().message();
}

TEST(Schema, FormatsOnPcre2KeepDateRulesAndBoundLongStrings) {
  auto s = MustCompile(R"({"properties":{"d":{"format":"date"},"t":{"format":"date-time"}}})");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->Validate(json{{"d", "2024-02-29"}}).ok());
  EXPECT_EQ(s->Validate(json{{"d", "2024-04-31"}}).message(), "/d: String should be a valid date");
  EXPECT_TRUE(s->Validate(json{{"t", "2024-01-31T23:59:60+01:00"}}).ok());
  EXPECT_FALSE(s->Validate(json{{"t", "2024-01-31 23:59:60Z"}}).ok());
  EXPECT_TRUE(s->Validate(json{{"d", std::string(200000, '1') + "-01-01"}}).ok());  // std::regex overflowed here
}

TEST(Schema, PatternPropertiesNamesAreCheckedOnPcre2First) {
  auto s = MustCompile(R"({"type":"object","patternProperties":{"^(x+)+$":{"type":"integer"}}})");
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->Validate(json{{"xx", 1}}).ok());
  EXPECT_FALSE(s->Validate(json{{"xx", "1"}}).ok());
  auto slow = s->Validate(json{{"v", json{{std::string(40, 'x') + "y", 1}}}});
  EXPECT_EQ(slow.message().rfind("/v/" + std::string(40, 'x') + "y: property name: pattern", 0), 0u) << slow.message();
  auto longname = s->Validate(json{{std::string(2000, 'x'), 1}});
  EXPECT_NE(longname.message().find("property name of 2000 bytes is longer than the 1024 bytes"), std::string::npos)
      << longname.message();
}

TEST(Schema, RefCycleThatNeverDescendsIsRefusedAtCompile) {
  for (const char* text : {R"({"$ref":"#"})", R"({"allOf":[{"$ref":"#"}]})",
                           R"({"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"anyOf":[{"not":{"$ref":"#/$defs/a"}}]}},"$ref":"#/$defs/a"})"}) {
    auto r = Schema::Compile(json::parse(text), "in");
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.status().message().find("$ref cycle that never descends into the instance"), std::string::npos)
        << r.status().message();
  }
  // Recursion through properties/items consumes the instance: a valid recursive schema.
  auto tree = MustCompile(R"({"type":"object","properties":{"kids":{"type":"array","items":{"$ref":"#"}}}})");
  ASSERT_TRUE(tree);
  EXPECT_TRUE(tree->Validate(json::parse(R"({"kids":[{"kids":[]},{}]})")).ok());
}

TEST(Schema, DeepSchemaAndDeepInstanceAreRefusedNotRecursed) {
  json deep_schema = json::object();
  for (int i = 0; i < 20000; ++i) deep_schema = json{{"not", std::move(deep_schema)}};
  auto r = Schema::Compile(deep_schema, "in");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().rfind("in: nesting deeper than 512 levels (at /not/not/", 0), 0u) << r.status().message();
  auto s = MustCompile(R"({"type":"object"})");
  json deep = json::array();
  for (int i = 0; i < 20000; ++i) deep = json::array({std::move(deep)});
  EXPECT_EQ(s->Validate(json{{"a", std::move(deep)}}).message().rfind("/: instance: nesting deeper than 512 levels", 0), 0u);
}

}  // namespace
}  // namespace k2::toolgen
