// The hand-written BFCL- and ACEBench-format samples in tests/eval/data load and score exactly as the
// "expected" of each recorded response says (incl. special and irrelevance cases); bad files give
// located errors.
#include "eval/fc_suite.h"

#include <map>

#include <gtest/gtest.h>

#include "eval/replay_policy.h"

namespace k2::eval {
namespace {

std::string Data(const std::string& name) { return std::string(K2GYM_SOURCE_DIR) + "/tests/eval/data/" + name; }

std::map<std::string, double> Expected(const std::string& file) {
  std::map<std::string, double> out;
  auto lines = ReadJsonLines(Data(file));
  EXPECT_TRUE(lines.ok());
  for (auto& l : *lines) out[l["id"]] = l["expected"].get<double>();
  return out;
}

void ExpectScores(const FcSuite& suite, const std::string& responses, int threads) {
  auto policy = ReplayPolicy::Load(Data(responses));
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  auto want = Expected(responses);
  FcRunOptions opt;
  opt.threads = threads;
  auto out = RunFcSuite(suite, **policy, opt);
  ASSERT_EQ(out.size(), want.size());
  for (auto& o : out) {
    ASSERT_TRUE(want.count(o.id)) << o.id;
    EXPECT_EQ(o.score, want[o.id]) << o.id << ": " << o.detail;
    EXPECT_EQ(o.failure, "") << o.id;
  }
}

TEST(FcSuite, BfclSampleScoresAsExpected) {
  auto s = LoadBfcl(Data("bfcl_questions.jsonl"), Data("bfcl_answers.jsonl"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->cases.size(), 14u);
  std::map<std::string, int> kinds;
  for (auto& c : s->cases) ++kinds[c.kind];
  EXPECT_EQ(kinds["no_call"], 2);
  EXPECT_EQ(kinds["calls"], 12);
  EXPECT_EQ(s->cases[8].category, "parallel");
  ExpectScores(*s, "bfcl_responses.jsonl", 1);
  ExpectScores(*s, "bfcl_responses.jsonl", 3);  // same scores in parallel
  FcOraclePolicy oracle(*s);
  for (auto& o : RunFcSuite(*s, oracle, {})) EXPECT_EQ(o.score, 1) << o.id << ": " << o.detail;
}

TEST(FcSuite, AceBenchSampleScoresAsExpected) {
  auto s = LoadAceBench(Data("acebench_data.jsonl"), Data("acebench_answers.jsonl"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->cases.size(), 12u);
  std::map<std::string, int> kinds;
  for (auto& c : s->cases) ++kinds[c.kind];
  EXPECT_EQ(kinds["calls"], 5);
  EXPECT_EQ(kinds["missing_params"], 3);
  EXPECT_EQ(kinds["error_param"], 2);
  EXPECT_EQ(kinds["no_call"], 2);
  // The multi-turn dialog: ACEBench's "system:" lines are the assistant side.
  const FcCase& mt = s->cases[4];
  ASSERT_EQ(mt.messages.size(), 3u);
  EXPECT_EQ(mt.messages[1].role, "assistant");
  EXPECT_EQ(mt.messages[2].content, "Business, please.");
  ExpectScores(*s, "acebench_responses.jsonl", 1);
  // The FC oracle answers every kind correctly, special cases included.
  FcOraclePolicy oracle(*s);
  for (auto& o : RunFcSuite(*s, oracle, {})) EXPECT_EQ(o.score, 1) << o.id << ": " << o.detail;
}

TEST(FcSuite, ToolsConvertToOpenAiSchemaTypes) {
  json f = json::parse(R"([{"name": "f", "parameters": {"type": "dict", "properties": {
      "x": {"type": "float"}, "t": {"type": "tuple", "items": {"type": "dict", "properties": {"y": {"type": "any"}}}}},
      "required": ["x"]}}])");
  json tools = ToOpenAiTools(f);
  ASSERT_EQ(tools.size(), 1u);
  const json& p = tools[0]["function"]["parameters"];
  EXPECT_EQ(tools[0]["type"], "function");
  EXPECT_EQ(p["type"], "object");
  EXPECT_EQ(p["properties"]["x"]["type"], "number");
  EXPECT_EQ(p["properties"]["t"]["type"], "array");
  EXPECT_EQ(p["properties"]["t"]["items"]["type"], "object");
  EXPECT_EQ(p["properties"]["t"]["items"]["properties"]["y"]["type"], "string");  // BFCL: any -> string
  EXPECT_EQ(p["required"], json::array({"x"}));
}

TEST(FcSuite, MalformedResponsesAndPolicyErrorsScoreZero) {
  auto s = LoadBfcl(Data("bfcl_questions.jsonl"), Data("bfcl_answers.jsonl"));
  ASSERT_TRUE(s.ok());
  agents::PolicyTurn t;
  t.message = Message{"assistant", "{not json"};
  FcOutcome o = ScoreFcResponse(s->cases[0], t);
  EXPECT_EQ(o.score, 0);
  t.failure = "malformed_tool_call: unbalanced braces";
  o = ScoreFcResponse(s->cases[12], t);  // irrelevance: no call, but the output was malformed
  EXPECT_EQ(o.score, 0);
  EXPECT_NE(o.detail.find("malformed"), std::string::npos);
  // A replay file without the case: a policy error on that case, recorded, score 0.
  std::string path = std::string(K2GYM_BINARY_DIR) + "/fc_empty_replay.jsonl";
  ASSERT_TRUE(WriteFileAtomic(path, R"({"id": "simple_0", "message": {"role": "assistant", "content": "x"}})" "\n").ok());
  auto p = ReplayPolicy::Load(path);
  ASSERT_TRUE(p.ok());
  auto out = RunFcSuite(*s, **p, {});
  EXPECT_EQ(out[1].score, 0);
  EXPECT_NE(out[1].failure.find("no recorded response"), std::string::npos) << out[1].failure;
}

TEST(FcSuite, BadCasesAreReportedWithIdAndReasonWhileTheRestLoads) {
  std::string dir = std::string(K2GYM_BINARY_DIR) + "/";
  auto write = [&](const std::string& name, const std::string& text) {
    EXPECT_TRUE(WriteFileAtomic(dir + name, text).ok());
    return dir + name;
  };
  auto has = [](const FcSuite& s, const std::string& id, const std::string& part) {
    for (auto& e : s.errors)
      if (e.id == id && (e.where + ": " + e.reason).find(part) != std::string::npos) return true;
    return false;
  };
  const std::string good = "{\"id\": \"simple_1\", \"question\": [[{\"role\": \"user\", \"content\": \"y\"}]], "
                           "\"function\": [{\"name\": \"f\", \"parameters\": {\"type\": \"dict\", \"properties\": {\"p\": {\"type\": \"integer\"}}}}]}\n";
  std::string q = write("q_bad.jsonl", "{\"id\": \"simple_0\", \"question\": [[{\"role\": \"user\", \"content\": \"x\"}]], "
                                       "\"function\": [{\"name\": \"f\"}]}\n{\"id\": 3}\nnot json\n" + good);
  std::string a = write("a_bad.jsonl", "{\"id\": \"simple_0\", \"ground_truth\": [{\"g\": {\"p\": [1]}}]}\n"
                                       "{\"id\": \"simple_1\", \"ground_truth\": [{\"f\": {\"p\": [1]}}]}\n");
  auto e = LoadBfcl(q, a);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->in_file, 4);
  ASSERT_EQ(e->cases.size(), 1u);
  EXPECT_EQ(e->cases[0].id, "simple_1");
  ASSERT_EQ(e->errors.size(), 3u);
  EXPECT_TRUE(has(*e, "simple_0", "a_bad.jsonl:1: ground_truth[0]: function \"g\"")) << e->errors[0].reason;
  EXPECT_NE(e->errors[1].where.find("q_bad.jsonl:2"), std::string::npos);
  EXPECT_NE(e->errors[1].reason.find("id: expected string"), std::string::npos) << e->errors[1].reason;
  EXPECT_NE(e->errors[2].where.find("q_bad.jsonl:3"), std::string::npos);
  e = LoadBfcl(q, "");
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(has(*e, "simple_0", "q_bad.jsonl:1: no answer"));
  EXPECT_FALSE(LoadBfcl(dir + "no_such_file.jsonl", "").ok());  // an unreadable file is an error
  std::string d = write("ace_bad.jsonl", "{\"id\": \"normal_0\", \"question\": \"assistant: hi\", \"function\": []}\n");
  auto e2 = LoadAceBench(d, "");
  ASSERT_TRUE(e2.ok());
  EXPECT_TRUE(has(*e2, "normal_0", "ace_bad.jsonl:1: question: expected a dialog ending with a user line"));
  std::string d2 = write("ace_bad2.jsonl", "{\"id\": \"special_incomplete_0\", \"question\": \"user: hi\", \"function\": [{\"name\": \"f\"}]}\n");
  std::string a3 = write("ace_ans.jsonl", "{\"id\": \"special_incomplete_0\", \"ground_truth\": {\"f\": [1]}}\n");
  e2 = LoadAceBench(d2, a3);
  ASSERT_TRUE(e2.ok());
  EXPECT_TRUE(has(*e2, "special_incomplete_0", "expected parameter names"));
  auto r = ReplayPolicy::Load(write("replay_bad.jsonl", "{\"id\": \"x\", \"message\": {\"role\": \"user\", \"content\": \"\"}}\n"));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("replay_bad.jsonl:1"), std::string::npos);
}

}  // namespace
}  // namespace k2::eval
