// The benchmark-specific checker rules on small hand-made cases: BFCL's Java / JavaScript source values,
// acceptance of the ground truth's own type, Unicode case folding, ACEBench's name_N keys, alternatives,
// substring strings and special-case phrases, and tool names that map back.
#include <gtest/gtest.h>

#include "eval/fc_suite.h"
#include "rewards/ast_match.h"

namespace k2::eval {
namespace {

using rewards::AstRules;
using rewards::CallLanguage;
using rewards::ConvertSourceValue;
using rewards::FunctionCall;
using rewards::MatchCalls;

json Doc(const std::string& name, const json& props, const json& required) {
  return json::array({{{"name", name}, {"parameters", {{"type", "dict"}, {"properties", props}, {"required", required}}}}});
}

TEST(FcAst, UnicodeCaseFoldingIsNotAsciiOnly) {
  EXPECT_EQ(rewards::UnicodeLower("DIVINÓPOLIS"), "divinópolis");
  EXPECT_EQ(rewards::StandardizeString("São Paulo-SP"), "sãopaulosp");
  EXPECT_EQ(rewards::UnicodeLower("ΑΘΗΝΑ МОСКВА"), "αθηνα москва");
  json f = Doc("city", {{"name", {{"type", "string"}}}}, {"name"});
  json gt = json::array({{{"city", {{"name", {"Divinópolis"}}}}}});
  EXPECT_TRUE(MatchCalls({{"city", {{"name", "DIVINÓPOLIS"}}}}, f, gt).ok);
  EXPECT_FALSE(MatchCalls({{"city", {{"name", "DIVINOPOLIS"}}}}, f, gt).ok);
}

TEST(FcAst, JavaValuesAreSourceStringsConvertedByDeclaredType) {
  EXPECT_EQ(*ConvertSourceValue("42L", "long", "", CallLanguage::kJava), 42);
  EXPECT_EQ(*ConvertSourceValue("42", "long", "", CallLanguage::kJava), "42");  // no L: stays a string
  EXPECT_EQ(*ConvertSourceValue("1.5f", "float", "", CallLanguage::kJava), 1.5);
  EXPECT_EQ(*ConvertSourceValue("true", "boolean", "", CallLanguage::kJava), true);
  EXPECT_EQ(*ConvertSourceValue("new int[]{1, 2}", "Array", "integer", CallLanguage::kJava), json::array({1, 2}));
  EXPECT_EQ(*ConvertSourceValue("new ArrayList<>(Arrays.asList(\"a\", \"b\"))", "ArrayList", "String", CallLanguage::kJava),
            json::array({"a", "b"}));
  EXPECT_EQ(*ConvertSourceValue("new HashMap<String, Object>() {{ put(\"k\", 1); put(\"s\", \"v\"); }}", "HashMap", "", CallLanguage::kJava),
            json::parse(R"({"k": 1, "s": "v"})"));
  EXPECT_FALSE(ConvertSourceValue("x", "Set", "", CallLanguage::kJava).has_value());
  json f = Doc("A.run", {{"flag", {{"type", "boolean"}}}, {"n", {{"type", "long"}}}}, {"flag", "n"});
  json gt = json::array({{{"A.run", {{"flag", {true}}, {"n", {5}}}}}});
  AstRules java;
  java.language = CallLanguage::kJava;
  EXPECT_TRUE(MatchCalls({{"A.run", {{"flag", "true"}, {"n", "5L"}}}}, f, gt, java).ok);
  auto r = MatchCalls({{"A.run", {{"flag", true}, {"n", "5L"}}}}, f, gt, java);  // JSON true: not source text
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.detail.find("string representation"), std::string::npos) << r.detail;
  EXPECT_FALSE(MatchCalls({{"A.run", {{"flag", "true"}, {"n", "5"}}}}, f, gt, java).ok);  // int literal for a long
}

TEST(FcAst, JavaScriptValuesAreSourceStrings) {
  EXPECT_EQ(*ConvertSourceValue("[1, 'a']", "array", "", CallLanguage::kJavaScript), json::parse(R"([1, "a"])"));
  EXPECT_EQ(*ConvertSourceValue("{'k': 'v', 'n': 2}", "dict", "", CallLanguage::kJavaScript), json::parse(R"({"k": "v", "n": 2})"));
  EXPECT_EQ(*ConvertSourceValue("42n", "Bigint", "", CallLanguage::kJavaScript), 42);
  EXPECT_EQ(*ConvertSourceValue("'quoted'", "String", "", CallLanguage::kJavaScript), "quoted");
  for (const char* t : {"Boolean", "integer", "float", "String", "array", "dict"}) {
    json v = std::string(t) == "Boolean" ? json(true) : std::string(t) == "integer" ? json(7) : std::string(t) == "float" ? json(2.5)
           : std::string(t) == "String" ? json("abc") : std::string(t) == "array" ? json::parse(R"([1, "x"])") : json::parse(R"({"a": "b"})");
    auto text = rewards::RenderSourceValue(v, {{"type", t}}, CallLanguage::kJavaScript);
    ASSERT_TRUE(text.has_value()) << t;
    EXPECT_EQ(*ConvertSourceValue(*text, t, "", CallLanguage::kJavaScript), v) << t << ": " << *text;
  }
}

TEST(FcAst, BfclAcceptsTheGroundTruthsOwnType) {
  json f = Doc("f", {{"n", {{"type", "integer"}}}, {"opt", {{"type", "string"}}}}, {"n"});
  // "dontcare" for an integer parameter, null for an optional string: BFCL's live answers write these.
  json gt = json::array({{{"f", {{"n", {"dontcare"}}, {"opt", {nullptr, ""}}}}}});
  EXPECT_TRUE(MatchCalls({{"f", {{"n", "dontcare"}, {"opt", nullptr}}}}, f, gt).ok);
  EXPECT_TRUE(MatchCalls({{"f", {{"n", "dontcare"}}}}, f, gt).ok);
  EXPECT_FALSE(MatchCalls({{"f", {{"n", 3}}}}, f, gt).ok);                        // right type, wrong value
  EXPECT_FALSE(MatchCalls({{"f", {{"n", true}}}}, f, json::array({{{"f", {{"n", {1}}}}}})).ok);  // a bool is not an int
  EXPECT_TRUE(MatchCalls({{"f", {{"n", 1}}}}, f, json::array({{{"f", {{"n", {1}}}}}})).ok);
}

TEST(FcAst, AceBenchNameSuffixesAlternativesAndSubstrings) {
  json f = Doc("trend", {{"region", {{"type", "string"}}}, {"year", {{"type", "integer"}}}}, {"region"});
  AstRules ace;
  ace.acebench = true;
  // Two calls of one function, written trend_1 / trend_2.
  json gt = json::array({{{"trend_1", {{"region", "Europe"}, {"year", 2022}}}}, {{"trend_2", {{"region", "Asia"}, {"year", 2022}}}}});
  std::vector<FunctionCall> calls = {{"trend", {{"region", "Asia"}, {"year", 2022}}}, {"trend", {{"region", "Europe"}, {"year", 2022}}}};
  EXPECT_TRUE(MatchCalls(calls, f, gt, ace).ok);
  // A string passes when the ground truth is inside the value (ACEBench's rule; BFCL wants equality).
  json one = json::array({{{"trend", {{"region", "Europe"}}}}});
  EXPECT_TRUE(MatchCalls({{"trend", {{"region", "Western Europe"}}}}, f, one, ace).ok);
  EXPECT_FALSE(MatchCalls({{"trend", {{"region", "Western Europe"}}}}, f, rewards::ExactToAllowedLists(one)).ok);
  AstRules agent = ace;
  agent.exact_strings = true;
  EXPECT_FALSE(MatchCalls({{"trend", {{"region", "Western Europe"}}}}, f, one, agent).ok);
  // Numbers are compared (stricter than ACEBench, which leaves them unchecked).
  EXPECT_FALSE(MatchCalls({{"trend", {{"region", "Europe"}, {"year", 2023}}}}, f, json::array({{{"trend", {{"region", "Europe"}, {"year", 2022}}}}}), ace).ok);
}

FcSuite WriteAndLoadAce(const std::string& data, const std::string& answers) {
  std::string dir = std::string(K2GYM_BINARY_DIR) + "/";
  EXPECT_TRUE(WriteFileAtomic(dir + "fc_ast_data.json", data).ok());
  EXPECT_TRUE(WriteFileAtomic(dir + "fc_ast_answers.json", answers).ok());
  auto s = LoadAceBench(dir + "fc_ast_data.json", dir + "fc_ast_answers.json");
  EXPECT_TRUE(s.ok());
  return s.ok() ? *s : FcSuite{};
}

agents::PolicyTurn Say(const std::string& text) {
  agents::PolicyTurn t;
  t.message = Message{"assistant", text};
  return t;
}

TEST(FcAst, AceBenchListGroundTruthIsAlternativesAndSpecialPhrasesAreRequired) {
  const std::string fn = R"([{"name": "set_goals", "parameters": {"type": "dict", "properties": {"goals": {"type": "string"}, "deadline": {"type": "string"}}, "required": ["goals", "deadline"]}}])";
  FcSuite s = WriteAndLoadAce(
      "{\"id\": \"normal_atom_bool_0\", \"question\": \"user: x\", \"function\": " + fn + "}\n"
      "{\"id\": \"special_incomplete_0\", \"question\": \"user: set my goals\", \"function\": " + fn + "}\n"
      "{\"id\": \"special_irrelevant_0\", \"question\": \"user: weather?\", \"function\": " + fn + "}\n",
      R"({"id": "normal_atom_bool_0", "ground_truth": [{"set_goals": {"goals": "run", "deadline": "May"}}, {"set_goals": {"goals": "swim", "deadline": "May"}}]})" "\n"
      R"({"id": "special_incomplete_0", "ground_truth": {"set_goals": ["deadline"]}})" "\n"
      R"({"id": "special_irrelevant_0", "ground_truth": "Due to the limitations of the function, I cannot solve this problem."})" "\n");
  ASSERT_EQ(s.cases.size(), 3u) << (s.errors.empty() ? "" : s.errors[0].reason);
  agents::PolicyTurn swim;
  swim.message.role = "assistant";
  swim.message.tool_calls.push_back({"c", "set_goals", R"({"goals": "swim", "deadline": "May"})"});
  EXPECT_EQ(ScoreFcResponse(s.cases[0], swim).score, 1);  // the second alternative
  swim.message.tool_calls.push_back({"d", "set_goals", R"({"goals": "run", "deadline": "May"})"});
  EXPECT_EQ(ScoreFcResponse(s.cases[0], swim).score, 0);  // not both
  const FcCase& inc = s.cases[1];
  EXPECT_EQ(ScoreFcResponse(inc, Say("Missing necessary parameters (deadline) for the api (set_goals)")).score, 1);
  EXPECT_EQ(ScoreFcResponse(inc, Say("Please tell me the deadline for set_goals")).score, 0);           // no fixed phrase
  EXPECT_EQ(ScoreFcResponse(inc, Say("Missing necessary parameters (deadline) for the api")).score, 0);  // no function name
  // "goals" inside "set_goals" is not the parameter name "goals"; nor is "set_goals" found inside "reset_goals".
  EXPECT_EQ(ScoreFcResponse(inc, Say("Missing necessary parameters (deadline) for the api (reset_goals)")).score, 0);
  EXPECT_EQ(ScoreFcResponse(s.cases[2], Say("I cannot help.")).score, 0);
  EXPECT_EQ(ScoreFcResponse(s.cases[2], Say("Due to the limitations of the function, I cannot solve this problem.")).score, 1);
}

TEST(FcAst, DottedNamesAreOfferedRewrittenAndMappedBack) {
  json f = json::parse(R"([{"name": "math.gcd", "parameters": {"type": "dict", "properties": {"a": {"type": "integer"}}, "required": ["a"]}},
                           {"name": "math_gcd", "parameters": {"type": "dict", "properties": {}}}])");
  std::map<std::string, std::string> names;
  json tools = ToOpenAiTools(f, CallLanguage::kPython, &names);
  ASSERT_EQ(tools.size(), 2u);
  EXPECT_EQ(tools[1]["function"]["name"], "math_gcd");           // a valid name keeps itself
  EXPECT_EQ(tools[0]["function"]["name"], "math_gcd_2");         // the rewritten one steps aside
  EXPECT_EQ(names["math_gcd_2"], "math.gcd");
  FcCase c;
  c.id = "simple_0";
  c.source = "bfcl";
  c.kind = "calls";
  c.functions = f;
  c.ground_truth = json::array({{{"math.gcd", {{"a", {4}}}}}});
  agents::PolicyTurn t;
  t.message.role = "assistant";
  t.message.tool_calls.push_back({"c", "math_gcd_2", R"({"a": 4})"});
  EXPECT_EQ(ScoreFcResponse(c, t).score, 1);
  // Java parameters are offered as strings that name their declared type.
  json java = ToOpenAiTools(json::parse(R"([{"name": "A.b", "parameters": {"type": "dict", "properties": {"m": {"type": "HashMap", "description": "map"}}}}])"),
                            CallLanguage::kJava);
  EXPECT_EQ(java[0]["function"]["parameters"]["properties"]["m"]["type"], "string");
  EXPECT_NE(java[0]["function"]["parameters"]["properties"]["m"]["description"].get<std::string>().find("Java HashMap"), std::string::npos);
}

TEST(FcAst, LeaderboardAggregatesAsEachBenchmarkDoes) {
  std::vector<FcOutcome> o;
  auto add = [&](const std::string& src, const std::string& cat, const std::string& id, double score) {
    FcOutcome x;
    x.source = src;
    x.category = cat;
    x.id = id;
    x.score = score;
    o.push_back(x);
  };
  add("bfcl", "simple_python", "simple_python_0", 1);
  add("bfcl", "simple_java", "simple_java_0", 0);
  add("bfcl", "live_simple", "live_simple_0-0-0", 1);
  add("bfcl", "live_multiple", "live_multiple_0-0-0", 0);
  add("bfcl", "live_multiple", "live_multiple_1-0-0", 0);
  add("bfcl", "irrelevance", "irrelevance_0", 1);
  add("acebench", "normal_multi_turn_user_adjust", "normal_multi_turn_user_adjust_0_0", 1);
  add("acebench", "normal_multi_turn_user_adjust", "normal_multi_turn_user_adjust_0_1", 0);
  add("acebench", "normal_multi_turn_user_adjust", "normal_multi_turn_user_adjust_1_0", 1);
  add("acebench", "special_irrelevant", "special_irrelevant_0", 1);
  json lb = FcLeaderboard(o);
  // live: count-weighted over live_simple (1 of 1) and live_multiple (0 of 2).
  EXPECT_NEAR(lb["bfcl"]["summary"]["live"].get<double>(), 1.0 / 3, 1e-12);
  // non-live: mean of simple (mean of python 1, java 0, javascript missing = 0) and three missing groups.
  EXPECT_NEAR(lb["bfcl"]["summary"]["non_live"].get<double>(), (1.0 / 3) / 4, 1e-12);
  EXPECT_NEAR(lb["bfcl"]["summary"]["irrelevance"].get<double>(), 0.5, 1e-12);  // live_irrelevance missing
  double overall = 0.1 * (1.0 / 12) + 0.1 * (1.0 / 3) + 0.1 * 0.5;
  EXPECT_NEAR(lb["bfcl"]["summary"]["overall"].get<double>(), overall, 1e-12);
  // ACEBench multi-turn: per dialog (dialog 0 has a wrong turn).
  EXPECT_NEAR(lb["acebench"]["categories"]["normal_multi_turn_user_adjust"]["accuracy"].get<double>(), 0.5, 1e-12);
  EXPECT_NEAR(lb["acebench"]["summary"]["special"].get<double>(), 1.0 / 3, 1e-12);
  EXPECT_NEAR(lb["acebench"]["summary"]["overall"].get<double>(), 0.2676 / 3 + 0.578 * (0.5 / 12), 1e-12);
}

}  // namespace
}  // namespace k2::eval
