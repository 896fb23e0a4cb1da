// ToolSpec: strict MCP Tool parsing with located errors, renderings, unique names.
#include "toolgen/tool_spec.h"

#include <gtest/gtest.h>

#include "toolgen/schema.h"

namespace k2::toolgen {
namespace {

json GoodTool() {
  return json::parse(R"({"name":"get_weather","title":"Weather","description":"Current weather",
    "inputSchema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},
    "outputSchema":{"type":"object","properties":{"temp":{"type":"number"}}},
    "annotations":{"readOnlyHint":true,"openWorldHint":true},"_meta":{"x":1}})");
}

TEST(ToolSpec, ParsesFullToolAndRoundTrips) {
  auto t = ParseToolSpec(GoodTool(), "tools[0]", "mcp:weather");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->name, "get_weather");
  EXPECT_EQ(t->title, "Weather");
  EXPECT_EQ(t->provenance, "mcp:weather");
  ASSERT_TRUE(t->output_schema.has_value());
  json back = ToJson(*t);
  json want = GoodTool();
  want.erase("_meta");
  EXPECT_EQ(back, want);
  json oa = ToOpenAITool(*t);
  EXPECT_EQ(oa["type"], "function");
  EXPECT_EQ(oa["function"]["name"], "get_weather");
  EXPECT_EQ(oa["function"]["parameters"], want["inputSchema"]);
}

TEST(ToolSpec, ErrorsNameTheField) {
  struct Case {
    const char* patch;  // merged into GoodTool()
    const char* prefix;
  };
  for (auto c : {Case{R"({"name":"has space"})", "tools[3].name: expected 1-128 chars without spaces or commas"},
                 Case{R"({"name":"a,b"})", "tools[3].name: expected 1-128 chars"},
                 Case{R"({"name":""})", "tools[3].name: expected 1-128 chars"},
                 Case{R"({"name":7})", "tools[3].name: expected a string"},
                 Case{R"({"description":5})", "tools[3].description: expected a string"},
                 Case{R"({"inputSchema":{"type":"array"}})", "tools[3].inputSchema/type: expected \"object\""},
                 Case{R"({"inputSchema":{"type":"object","properties":{"x":{"type":"int"}}}})",
                      "tools[3].inputSchema/properties/x/type: expected one of"},
                 Case{R"({"outputSchema":{"type":"object","required":3}})", "tools[3].outputSchema/required"},
                 Case{R"({"annotations":{"readOnlyHint":"yes"}})", "tools[3].annotations.readOnlyHint: expected a boolean"},
                 Case{R"({"bogus":1})", "tools[3].bogus: unknown key"}}) {
    json t = GoodTool();
    t.merge_patch(json::parse(c.patch));
    auto r = ParseToolSpec(t, "tools[3]", "mcp:x");
    ASSERT_FALSE(r.ok()) << c.patch;
    EXPECT_EQ(r.status().message().rfind(c.prefix, 0), 0u) << r.status().message();
  }
  json no_schema = GoodTool();
  no_schema.erase("inputSchema");
  EXPECT_EQ(ParseToolSpec(no_schema, "t", "").status().message(), "t.inputSchema: missing (MCP requires it)");
  EXPECT_FALSE(ParseToolSpec(json::array(), "t", "").ok());
  EXPECT_FALSE(ParseToolSpec(json(std::string(129, 'a')), "t", "").ok());
  json long_name = GoodTool();
  long_name["name"] = std::string(129, 'a');
  EXPECT_FALSE(ParseToolSpec(long_name, "t", "").ok());
  long_name["name"] = std::string(128, 'a');
  EXPECT_TRUE(ParseToolSpec(long_name, "t", "").ok());
}

TEST(ToolSpec, CompileToolValidatesArgumentsAndResults) {
  auto t = ParseToolSpec(GoodTool(), "t", "mcp:w");
  ASSERT_TRUE(t.ok());
  auto c = CompileTool(*t, "t");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->input->Validate({{"city", "Paris"}}).ok());
  EXPECT_EQ(c->input->Validate({{"city", 3}}).message().rfind("/city: expected string, got integer", 0), 0u);
  ASSERT_NE(c->output, nullptr);
  EXPECT_FALSE(c->output->Validate({{"temp", "hot"}}).ok());
}

TEST(ToolSpec, DuplicateNamesAreRejectedWithBothPositions) {
  auto a = ParseToolSpec(GoodTool(), "t", "").value();
  std::vector<ToolSpec> v = {a, a};
  v[0].name = "x";
  EXPECT_TRUE(CheckUniqueNames(v, "tools").ok());
  v[0].name = a.name;
  auto st = CheckUniqueNames(v, "tools");
  EXPECT_EQ(st.message(), "tools[1].name: duplicate tool name \"get_weather\" (first at tools[0])");
}

}  // namespace
}  // namespace k2::toolgen
