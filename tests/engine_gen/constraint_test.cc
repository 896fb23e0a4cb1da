// The constrained-decoding automaton: what a schema lets through (compact JSON, every property in
// order, bounded strings/numbers/arrays), what it rejects, and the keywords it refuses to compile.
#include "engine/gen/constraint.h"

#include <gtest/gtest.h>

namespace k2::gen {
namespace {

std::shared_ptr<const JsonNode> Node(const char* schema) {
  auto n = CompileJsonSchema(json::parse(schema), "s");
  EXPECT_TRUE(n.ok()) << n.status().ToString();
  return n.ok() ? *n : nullptr;
}

TEST(JsonConstraint, AcceptsCompactValuesOfTheSchemaInDeclaredOrder) {
  auto n = Node(R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string","maxLength":3},
                    "c":{"type":"array","items":{"enum":["x",1]},"maxItems":2},"d":{"type":"boolean"}}})");
  EXPECT_TRUE(JsonAutomatonAccepts(n, R"({"a":-12,"b":"hi","c":["x",1],"d":true})"));
  EXPECT_TRUE(JsonAutomatonAccepts(n, R"({"a":0,"b":"","c":[],"d":false})"));
  EXPECT_FALSE(JsonAutomatonAccepts(n, R"({"b":"hi","a":1,"c":[],"d":true})"));      // order
  EXPECT_FALSE(JsonAutomatonAccepts(n, R"({"a":1,"b":"hi","c":[]})"));                // missing d
  EXPECT_FALSE(JsonAutomatonAccepts(n, R"({"a":1.5,"b":"hi","c":[],"d":true})"));     // integer
  EXPECT_FALSE(JsonAutomatonAccepts(n, R"({"a":01,"b":"hi","c":[],"d":true})"));      // leading zero
  EXPECT_FALSE(JsonAutomatonAccepts(n, R"({"a":1,"b":"long","c":[],"d":true})"));     // maxLength
  EXPECT_FALSE(JsonAutomatonAccepts(n, R"({"a":1,"b":"hi","c":["x",1,1],"d":true})"));  // maxItems
  EXPECT_FALSE(JsonAutomatonAccepts(n, R"({"a":1,"b":"hi","c":["y"],"d":true})"));    // enum
  EXPECT_FALSE(JsonAutomatonAccepts(n, R"({"a": 1,"b":"hi","c":[],"d":true})"));      // whitespace
  EXPECT_FALSE(JsonAutomatonAccepts(n, R"({"a":1,"b":"hi","c":[],"d":true}x)"));      // trailing
}

TEST(JsonConstraint, FreeFormObjectsAndNumbersAreBounded) {
  auto any = CompileJsonSchema(json(), "s");
  ASSERT_TRUE(any.ok());
  EXPECT_TRUE(JsonAutomatonAccepts(*any, R"({"k":[1,{"x":null}],"s":"t","n":-0.5})"));
  EXPECT_FALSE(JsonAutomatonAccepts(*any, R"([1])"));  // json_object: an object
  EXPECT_FALSE(JsonAutomatonAccepts(*any, R"({"k":{"a":{"b":{"c":1}}}})"));  // deeper than 3
  auto num = Node(R"({"type":"number"})");
  EXPECT_TRUE(JsonAutomatonAccepts(num, "3.25"));
  EXPECT_TRUE(JsonAutomatonAccepts(num, "7"));
  EXPECT_FALSE(JsonAutomatonAccepts(num, "3."));
  EXPECT_FALSE(JsonAutomatonAccepts(num, "1234567890"));  // > 9 digits
}

TEST(JsonConstraint, UnsupportedKeywordsAreRefusedByName) {
  for (const char* bad : {R"({"type":"string","pattern":"a+"})", R"({"anyOf":[{"type":"string"}]})",
                          R"({"type":"integer","minimum":3})", R"({"type":["string","null"]})",
                          R"({"type":"object","properties":{"a":{}},"required":["b"]})"}) {
    auto n = CompileJsonSchema(json::parse(bad), "response_format.json_schema.schema");
    ASSERT_FALSE(n.ok()) << bad;
    EXPECT_EQ(n.status().code(), Code::kInvalidArgument);
    EXPECT_NE(n.status().message().find("response_format.json_schema.schema"), std::string::npos) << n.status().message();
  }
}

}  // namespace
}  // namespace k2::gen
