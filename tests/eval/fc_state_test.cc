// Multi-turn function-calling cases with state-based checks: the in-tree backend classes, the ground
// truth call-string parser, the BFCL multi_turn and ACEBench agent sample files (our own, in
// tests/eval/data) scored exactly as each recorded response's "expected" says, the FC oracle at 1.0 and
// the oracle that skips any one step at 0, and located errors for broken cases.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "eval/fc_backend.h"
#include "eval/fc_suite.h"
#include "eval/replay_policy.h"

namespace k2::eval {
namespace {

std::string Data(const std::string& f) { return std::string(K2GYM_SOURCE_DIR) + "/tests/eval/data/" + f; }

json Fs() {
  return {{"root", {{"alex", {{"type", "directory"}, {"contents", {{"docs", {{"type", "directory"}, {"contents", json::object()}}}}}}}}}};
}

TEST(FcBackend, FileSystemCallsChangeStateAndErrorsLeaveItAlone) {
  auto b = FcBackend::Create({"GorillaFileSystem"}, {{"GorillaFileSystem", Fs()}}, "case");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->Call("pwd", json::object())["current_working_directory"], "/alex");
  EXPECT_EQ(b->Call("cd", {{"folder", "docs"}})["current_working_directory"], "docs");
  EXPECT_TRUE(b->Call("touch", {{"file_name", "a.txt"}}).is_null());
  EXPECT_TRUE(b->Call("echo", {{"content", "hi"}, {"file_name", "a.txt"}}).is_null());
  EXPECT_EQ(b->Call("cat", {{"file_name", "a.txt"}})["file_content"], "hi");
  json before = b->State();
  json e = b->Call("mkdir", {{"dir_name", "a.txt"}});
  EXPECT_NE(e["error"].get<std::string>().find("File exists"), std::string::npos) << e;
  EXPECT_EQ(b->State(), before);
  e = b->Call("cd", {{"folder", "nowhere"}});
  EXPECT_NE(e["error"].get<std::string>().find("No such file or directory"), std::string::npos);
  e = b->Call("mkdir", {{"dir_name", 7}});
  EXPECT_NE(e["error"].get<std::string>().find("dir_name: expected string"), std::string::npos) << e;
  e = b->Call("mkdir", {{"dir_name", "x"}, {"mode", "755"}});
  EXPECT_NE(e["error"].get<std::string>().find("unexpected argument mode"), std::string::npos) << e;
  e = b->Call("send_message", {{"message", "x"}});
  EXPECT_NE(e["error"].get<std::string>().find("no function named send_message"), std::string::npos) << e;
  EXPECT_EQ(b->State(), before);
  EXPECT_TRUE(b->Call("mkdir", {{"dir_name", "old"}}).is_null());
  EXPECT_EQ(b->Call("mv", {{"source", "a.txt"}, {"destination", "old"}})["result"], "'a.txt' moved to 'old/a.txt'");
  EXPECT_EQ(b->State()["GorillaFileSystem"]["root"]["alex"]["contents"]["docs"]["contents"]["old"]["contents"]["a.txt"]["content"], "hi");
  EXPECT_EQ(b->Call("cd", {{"folder", ".."}}), json::object());
  EXPECT_EQ(b->Call("pwd", json::object())["current_working_directory"], "/alex");
  // The current directory is scratch state, and the entry order is not compared either.
  EXPECT_FALSE(b->State()["GorillaFileSystem"].contains("cwd"));
  EXPECT_FALSE(b->State()["GorillaFileSystem"]["root"]["alex"].contains("_order"));
}

// Each expectation is what BFCL's GorillaFileSystem (Python) returns for the same calls from the same
// scenario (a directory listed in the file as zeta.txt, alpha, notes.md).
TEST(FcBackend, FileSystemFollowsBfclResultsErrorsAndEntryOrder) {
  json dir = {{"type", "directory"},
              {"contents", {{"zeta.txt", {{"type", "file"}, {"content", "z"}}},
                            {"alpha", {{"type", "directory"}, {"contents", json::object()}}},
                            {"notes.md", {{"type", "file"}, {"content", "n"}}}}},
              {"_order", {"zeta.txt", "alpha", "notes.md"}}};
  json fs = {{"root", {{"alex", {{"type", "directory"}, {"contents", {{"docs", dir}}}}}}}};
  auto b = FcBackend::Create({"GorillaFileSystem"}, {{"GorillaFileSystem", fs}}, "case");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  auto call = [&](const std::string& f, const json& a) { return b->Call(f, a); };
  EXPECT_EQ(call("cd", {{"folder", "docs"}}), json({{"current_working_directory", "docs"}}));
  EXPECT_EQ(call("pwd", json::object()), json({{"current_working_directory", "/alex/docs"}}));
  EXPECT_EQ(call("ls", json::object()), json({{"current_directory_content", {"zeta.txt", "alpha", "notes.md"}}}));
  // echo writes existing files only; touch and mkdir return None.
  EXPECT_EQ(call("echo", {{"content", "hi"}, {"file_name", "a.txt"}}), json({{"error", "echo: cannot write to 'a.txt': No such file"}}));
  EXPECT_FALSE(b->State()["GorillaFileSystem"]["root"]["alex"]["contents"]["docs"]["contents"].contains("a.txt"));
  EXPECT_TRUE(call("touch", {{"file_name", "a.txt"}}).is_null());
  EXPECT_TRUE(call("echo", {{"content", "hi"}, {"file_name", "a.txt"}}).is_null());
  EXPECT_EQ(call("echo", {{"content", "x"}}), json({{"terminal_output", "x"}}));
  EXPECT_EQ(call("mkdir", {{"dir_name", "a.txt"}}), json({{"error", "mkdir: cannot create directory 'a.txt': File exists"}}));
  EXPECT_EQ(call("mkdir", {{"dir_name", "b:c"}}), json({{"error", "mkdir: cannot create directory 'b:c': Invalid character"}}));
  EXPECT_EQ(call("touch", {{"file_name", "a.txt"}}), json({{"error", "touch: cannot touch 'a.txt': File exists"}}));
  // cd goes one level at a time.
  EXPECT_EQ(call("cd", {{"folder", "nowhere"}}), json({{"error", "cd: 'nowhere': No such file or directory"}}));
  EXPECT_EQ(call("cd", {{"folder", "alpha/x"}}),
            json({{"error", "cd: alpha/x: Unsupported path. Only one folder level at a time is supported."}}));
  // Insertion order: new entries at the end, a moved one leaves, a renamed one goes to the end.
  EXPECT_EQ(call("ls", json::object()), json({{"current_directory_content", {"zeta.txt", "alpha", "notes.md", "a.txt"}}}));
  EXPECT_EQ(call("mv", {{"source", "zeta.txt"}, {"destination", "alpha"}}), json({{"result", "'zeta.txt' moved to 'alpha/zeta.txt'"}}));
  EXPECT_EQ(call("ls", json::object()), json({{"current_directory_content", {"alpha", "notes.md", "a.txt"}}}));
  EXPECT_EQ(call("find", {{"path", "."}}), json({{"matches", {"./alpha", "./alpha/zeta.txt", "./notes.md", "./a.txt"}}}));
  EXPECT_EQ(call("mv", {{"source", "notes.md"}, {"destination", "b.md"}}), json({{"result", "'notes.md' moved to 'b.md'"}}));
  EXPECT_EQ(call("ls", json::object()), json({{"current_directory_content", {"alpha", "a.txt", "b.md"}}}));
  EXPECT_EQ(call("rm", {{"file_name", "gone"}}), json({{"error", "rm: cannot remove 'gone': No such file or directory"}}));
  EXPECT_EQ(call("rm", {{"file_name", "a.txt"}}), json({{"result", "'a.txt' removed"}}));
  EXPECT_EQ(call("cat", {{"file_name", "alpha"}}), json({{"error", "cat: 'alpha': Is a directory"}}));
  EXPECT_EQ(call("cat", {{"file_name", "nope"}}), json({{"error", "cat: 'nope': No such file or directory"}}));
  EXPECT_EQ(call("cd", {{"folder", ".."}}), json::object());
  EXPECT_EQ(call("cd", {{"folder", ".."}}), json({{"error", "Current directory is already the root. Cannot go back."}}));
  EXPECT_EQ(call("cd", {{"folder", "/"}}), json({{"current_working_directory", "alex"}}));
  EXPECT_EQ(call("cd", {{"folder", "."}}), json({{"current_working_directory", "alex"}}));
  EXPECT_TRUE(call("mkdir", {{"dir_name", "new"}}).is_null());
  EXPECT_EQ(call("cd", {{"folder", "new"}}), json({{"current_working_directory", "new"}}));
  EXPECT_EQ(call("pwd", json::object()), json({{"current_working_directory", "/alex/new"}}));
  // An _order that does not name the entries is a config error.
  json bad = fs;
  bad["root"]["alex"]["contents"]["docs"]["_order"] = {"zeta.txt"};
  auto broken = FcBackend::Create({"GorillaFileSystem"}, {{"GorillaFileSystem", bad}}, "case");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().ToString().find("_order"), std::string::npos) << broken.status().ToString();
}

// BFCL's logarithm computes with mpmath at mp.dps = precision (binary precision round((dps + 1) *
// log2 10)); the values are BFCL's mpf results as doubles.
TEST(FcBackend, MathLogarithmRoundsAsMpmathAtTheGivenPrecision) {
  auto b = FcBackend::Create({"MathAPI"}, json::object(), "case");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->Call("logarithm", {{"value", 20}, {"base", 10}, {"precision", 2}}), json({{"result", 1.302734375}}));
  EXPECT_EQ(b->Call("logarithm", {{"value", 630.0}, {"base", 10}, {"precision", 5}}), json({{"result", 2.7993392944335938}}));
  EXPECT_EQ(b->Call("logarithm", {{"value", 980.0}, {"base", 20}, {"precision", 0}}), json({{"result", 2.5}}));
  EXPECT_EQ(b->Call("logarithm", {{"value", 980.0}, {"base", 20}, {"precision", 10}}), json({{"result", 2.2991215311340056}}));
}

TEST(FcBackend, MessagesNeedWifiAndLogin) {
  auto b = FcBackend::Create({"BaseApi", "MessageApi"}, {{"BaseApi", {{"wifi", false}, {"logged_in", true}}}}, "case");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  json args = {{"sender_name", "Eve"}, {"receiver_name", "Bob"}, {"message", "hi"}};
  EXPECT_NE(b->Call("send_message", args)["error"].get<std::string>().find("wifi is off"), std::string::npos);
  EXPECT_EQ(b->State()["MessageApi"]["inbox"].size(), 0u);
  b->Call("turn_on_wifi", json::object());
  EXPECT_EQ(b->Call("send_message", args)["message_id"], 1);
  EXPECT_EQ(b->Call("view_messages", {{"name", "Bob"}})["messages"].size(), 1u);
  EXPECT_EQ(b->Call("delete_message", {{"message_id", 1}})["status"], true);
  EXPECT_TRUE(b->Call("delete_message", {{"message_id", 1}}).contains("error"));
}

TEST(FcBackend, BadWorldsAreLocatedErrors) {
  auto e = FcBackend::Create({"WebSearchAPI"}, json::object(), "q.jsonl:3");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("q.jsonl:3: involved class \"WebSearchAPI\" has no in-tree backend"), std::string::npos)
      << e.status().message();
  e = FcBackend::Create({"BaseApi"}, {{"BaseApi", {{"wifi", "yes"}}}}, "q.jsonl:4");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("q.jsonl:4: initial_config.BaseApi.wifi: expected boolean"), std::string::npos)
      << e.status().message();
  e = FcBackend::Create({"GorillaFileSystem"}, {{"GorillaFileSystem", {{"root", {{"a", {{"type", "file"}}}}}}}}, "q");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("root.a.content: expected string"), std::string::npos) << e.status().message();
  // A config of a class that is not involved is ignored, as BFCL ignores it.
  e = FcBackend::Create({"BaseApi"}, {{"MessageApi", json::object()}}, "q");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_FALSE(e->State().contains("MessageApi"));
}

TEST(PythonCall, ParsesLiteralsAndNumbersPositionalArguments) {
  auto c = ParsePythonCall("f(a='x\\'y', b=\"q\", n=-3, x=2.5, t=True, z=None, l=[1, 'a'], d={'k': (1, 2)})", "gt");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->name, "f");
  EXPECT_EQ(c->arguments, json::parse(R"({"a":"x'y","b":"q","n":-3,"x":2.5,"t":true,"z":null,"l":[1,"a"],"d":{"k":[1,2]}})"));
  EXPECT_EQ(ParsePythonCall("pwd()", "gt")->arguments, json::object());
  // BFCL's answers also pass arguments by position ("sort('a.txt')"): they get "#<index>" keys, which
  // the loader names from the method's signature.
  auto pos = ParsePythonCall("tail('a.txt', lines=3)", "gt");
  ASSERT_TRUE(pos.ok()) << pos.status().ToString();
  EXPECT_EQ(pos->arguments, json::parse(R"({"#0": "a.txt", "lines": 3})"));
  auto bad = ParsePythonCall("cd(docs)", "a.jsonl:2: ground_truth[0][0]");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("a.jsonl:2: ground_truth[0][0]: \"cd(docs)\" at offset 3: expected KEY=VALUE or a literal value"),
            std::string::npos)
      << bad.status().message();
  EXPECT_FALSE(ParsePythonCall("cd(folder='docs'", "gt").ok());
  EXPECT_FALSE(ParsePythonCall("cd(folder='docs') x", "gt").ok());
  EXPECT_FALSE(ParsePythonCall("cd(folder=docs)", "gt").ok());
}

TEST(FirstDifference, NamesThePointer) {
  json a = {{"x", {{"y", json::array({1, 2})}}}};
  json b = {{"x", {{"y", json::array({1, 3})}}}};
  EXPECT_EQ(FirstDifference(a, a, false), "");
  EXPECT_EQ(FirstDifference(a, b, false), "/x/y/1: got 2, want 3");
  json extra = {{"x", {{"y", json::array({1, 2})}, {"z", 1}}}};
  EXPECT_EQ(FirstDifference(extra, a, true), "");
  EXPECT_EQ(FirstDifference(extra, a, false), "/x/z: got 1, want nothing");
}

std::map<std::string, json> Recorded(const std::string& file) {
  std::map<std::string, json> out;
  auto lines = ReadJsonLines(Data(file));
  EXPECT_TRUE(lines.ok());
  for (auto& l : *lines) out[l["id"]] = l;
  return out;
}

void ExpectReplayScores(const FcSuite& s, const std::string& responses) {
  auto p = ReplayPolicy::Load(Data(responses));
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  auto want = Recorded(responses);
  for (int threads : {1, 2}) {
    auto out = RunFcSuite(s, **p, {.threads = threads});
    ASSERT_EQ(out.size(), want.size());
    for (auto& o : out) {
      EXPECT_EQ(o.score, want[o.id]["expected"].get<double>()) << o.id << ": " << o.detail;
      EXPECT_EQ(o.failure, "") << o.id;
      if (want[o.id].contains("process")) {
        EXPECT_DOUBLE_EQ(o.components["process"].get<double>(), want[o.id]["process"].get<double>()) << o.id;
      }
    }
  }
}

// Every state case: the oracle passes; the oracle without any one step of the plan fails.
void ExpectOracleAndSkips(const FcSuite& s) {
  FcOraclePolicy oracle(s);
  for (auto& o : RunFcSuite(s, oracle, {.threads = 2})) EXPECT_EQ(o.score, 1) << o.id << ": " << o.detail;
  size_t longest = 0;
  std::map<std::string, size_t> plan;
  for (auto& c : s.cases) {
    size_t n = c.milestones.size();
    for (auto& t : c.gt_turns) n += t.size();
    plan[c.id] = n;
    longest = std::max(longest, n);
  }
  int failed = 0;
  for (size_t k = 0; k < longest; ++k) {
    FcOraclePolicy skip(s, static_cast<int>(k));
    for (auto& o : RunFcSuite(s, skip, {})) {
      if (k < plan[o.id]) {
        EXPECT_EQ(o.score, 0) << o.id << " without step " << k << " passed: " << o.detail;
        ++failed;
      } else {
        EXPECT_EQ(o.score, 1) << o.id << ": " << o.detail;
      }
    }
  }
  EXPECT_GE(failed, 3);
}

TEST(FcState, BfclMultiTurnSampleScoresAsExpected) {
  auto s = LoadBfcl(Data("bfcl_multi_turn_questions.jsonl"), Data("bfcl_multi_turn_answers.jsonl"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->cases.size(), 4u);
  for (auto& c : s->cases) EXPECT_EQ(c.kind, "state") << c.id;
  EXPECT_EQ(s->cases[0].turns.size(), 2u);
  EXPECT_EQ(s->cases[0].gt_turns[0].size(), 2u);
  EXPECT_EQ(s->cases[0].gt_turns[0][0].arguments, json({{"folder", "docs"}}));
  EXPECT_EQ(s->cases[2].missed.at(1), std::vector<std::string>{"touch"});
  EXPECT_EQ(s->cases[2].category, "multi_turn_miss_func");
  ExpectReplayScores(*s, "bfcl_multi_turn_responses.jsonl");
  ExpectOracleAndSkips(*s);
}

// BFCL's executor prints a None return as "None": the model reads that after mkdir, and the directory
// name after cd.
TEST(FcState, ToolResultsReadAsBfclPrintsThem) {
  auto s = LoadBfcl(Data("bfcl_multi_turn_questions.jsonl"), Data("bfcl_multi_turn_answers.jsonl"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  FcOraclePolicy oracle(*s);
  std::map<std::string, std::string> seen;  // tool name -> content
  for (auto& o : RunFcSuite(*s, oracle, {.threads = 1}))
    if (o.id == "multi_turn_base_0")
      for (auto& m : o.response)
        if (m.value("role", "") == "tool") seen[m.value("name", "")] = m.value("content", "");
  EXPECT_EQ(seen["mkdir"], "None");
  EXPECT_EQ(json::parse(seen["cd"]), json({{"current_working_directory", "docs"}}));
}

TEST(FcState, AceBenchAgentSampleScoresAsExpected) {
  auto s = LoadAceBench(Data("acebench_agent_data.jsonl"), Data("acebench_agent_answers.jsonl"));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->cases.size(), 3u);
  EXPECT_EQ(s->cases[2].turns.size(), 2u);
  EXPECT_EQ(s->cases[2].category, "agent_multi_turn");
  EXPECT_EQ(s->cases[0].milestones.size(), 2u);
  ExpectReplayScores(*s, "acebench_agent_responses.jsonl");
  ExpectOracleAndSkips(*s);
}

TEST(FcState, TheToolsOfAMissedFunctionTurnAppearOnlyThen) {
  auto s = LoadBfcl(Data("bfcl_multi_turn_questions.jsonl"), Data("bfcl_multi_turn_answers.jsonl"));
  ASSERT_TRUE(s.ok());
  // A policy that records the tool names it is offered, then answers with text.
  struct Recorder : agents::Policy {
    std::vector<std::vector<std::string>> seen;
    std::string name() const override { return "recorder"; }
    Expected<agents::PolicyTurn> Act(const agents::PolicyRequest& r) override {
      std::vector<std::string> names;
      for (auto& t : r.tools) names.push_back(t["function"]["name"]);
      seen.push_back(names);
      agents::PolicyTurn t;
      t.message = Message{"assistant", "ok"};
      return t;
    }
  } rec;
  FcSuite one{"one", {s->cases[2]}};
  auto out = RunFcSuite(one, rec, {});
  ASSERT_EQ(rec.seen.size(), 2u);
  auto has = [](const std::vector<std::string>& v, const char* n) { return std::find(v.begin(), v.end(), n) != v.end(); };
  EXPECT_FALSE(has(rec.seen[0], "touch"));
  EXPECT_TRUE(has(rec.seen[0], "mkdir"));
  EXPECT_TRUE(has(rec.seen[1], "touch"));
  EXPECT_EQ(out[0].score, 0);  // turn 1 made no call although its ground truth makes one
  EXPECT_NE(out[0].detail.find("turn 1: no function call"), std::string::npos) << out[0].detail;
}

TEST(FcState, AStepLimitEndsATurnThatNeverAnswers) {
  auto s = LoadBfcl(Data("bfcl_multi_turn_questions.jsonl"), Data("bfcl_multi_turn_answers.jsonl"));
  ASSERT_TRUE(s.ok());
  struct Looper : agents::Policy {
    std::string name() const override { return "looper"; }
    Expected<agents::PolicyTurn> Act(const agents::PolicyRequest&) override {
      agents::PolicyTurn t;
      t.message.role = "assistant";
      t.message.tool_calls.push_back({"c", "pwd", "{}"});
      return t;
    }
  } loop;
  FcSuite one{"one", {s->cases[0]}};
  auto out = RunFcSuite(one, loop, {.max_steps_per_turn = 5});
  EXPECT_EQ(out[0].score, 0);
  EXPECT_EQ(out[0].detail, "turn 0: still calling functions after 5 steps");
  EXPECT_EQ(out[0].components["calls"], 5);
}

class FcStateFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("k2gym_fc_state_" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const json& line) {
    std::ofstream((dir_ / name).string()) << line.dump() << "\n";
    return (dir_ / name).string();
  }
  std::filesystem::path dir_;
};

TEST_F(FcStateFiles, BrokenCasesAreLocatedPerCaseErrors) {
  json q = {{"id", "multi_turn_base_0"},
            {"question", json::array({json::array({{{"role", "user"}, {"content", "go"}}})})},
            {"initial_config", {{"GorillaFileSystem", Fs()}}},
            {"involved_classes", {"GorillaFileSystem"}}};
  std::string qf = Write("q.jsonl", q);
  auto e = LoadBfcl(qf, Write("a.jsonl", {{"id", "multi_turn_base_0"}, {"ground_truth", {{"cd(folder='nope')"}}}}));
  ASSERT_TRUE(e.ok());
  ASSERT_EQ(e->errors.size(), 1u);
  EXPECT_TRUE(e->cases.empty());
  EXPECT_EQ(e->errors[0].id, "multi_turn_base_0");
  EXPECT_NE((e->errors[0].where + ": " + e->errors[0].reason).find("a.jsonl:1: ground_truth[0][0]: ground-truth call cd fails on the case's backend: cd: 'nope': No such file or directory"),
            std::string::npos)
      << e->errors[0].reason;
  e = LoadBfcl(qf, Write("a.jsonl", {{"id", "multi_turn_base_0"}, {"ground_truth", {{"tweet(text='x')"}}}}));
  ASSERT_TRUE(e.ok());
  ASSERT_EQ(e->errors.size(), 1u);
  EXPECT_TRUE(e->cases.empty());
  EXPECT_EQ(e->errors[0].id, "multi_turn_base_0");
  EXPECT_NE((e->errors[0].where + ": " + e->errors[0].reason).find("function \"tweet\" is not among the case's functions"), std::string::npos) << e->errors[0].reason;
  e = LoadBfcl(qf, Write("a.jsonl", {{"id", "multi_turn_base_0"}, {"ground_truth", json::array({json::array(), json::array()})}}));
  ASSERT_TRUE(e.ok());
  ASSERT_EQ(e->errors.size(), 1u);
  EXPECT_TRUE(e->cases.empty());
  EXPECT_EQ(e->errors[0].id, "multi_turn_base_0");
  EXPECT_NE((e->errors[0].where + ": " + e->errors[0].reason).find("expected one list of call strings per turn (1 turns)"), std::string::npos) << e->errors[0].reason;
  q["involved_classes"] = {"WebSearchAPI"};
  e = LoadBfcl(Write("q.jsonl", q), Write("a.jsonl", {{"id", "multi_turn_base_0"}, {"ground_truth", {json::array()}}}));
  ASSERT_TRUE(e.ok());
  ASSERT_EQ(e->errors.size(), 1u);
  EXPECT_TRUE(e->cases.empty());
  EXPECT_EQ(e->errors[0].id, "multi_turn_base_0");
  EXPECT_NE((e->errors[0].where + ": " + e->errors[0].reason).find("q.jsonl:1: involved class \"WebSearchAPI\" has no in-tree backend"), std::string::npos)
      << e->errors[0].reason;

  json d = {{"id", "agent_multi_step_0"}, {"question", "user: hi"}, {"involved_classes", {"BaseApi"}}};
  std::string df = Write("d.jsonl", d);
  auto a = LoadAceBench(df, Write("aa.jsonl", {{"id", "agent_multi_step_0"}, {"ground_truth", {{"BaseApi", {{"wifi", true}}}}},
                                               {"mile_stone", {"login_device()"}}}));
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->errors.size(), 1u);
  EXPECT_EQ(a->errors[0].id, "agent_multi_step_0");
  EXPECT_NE((a->errors[0].where + ": " + a->errors[0].reason).find("aa.jsonl:1: mile_stone does not reach ground_truth: /BaseApi/wifi: got false, want true"),
            std::string::npos)
      << a->errors[0].reason;
  a = LoadAceBench(df, Write("aa.jsonl", {{"id", "agent_multi_step_0"}, {"ground_truth", {{"BaseApi", {{"wifi", true}}}}}}));
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->errors.size(), 1u);
  EXPECT_EQ(a->errors[0].id, "agent_multi_step_0");
  EXPECT_NE((a->errors[0].where + ": " + a->errors[0].reason).find("mile_stone: missing"), std::string::npos) << a->errors[0].reason;
}

}  // namespace
}  // namespace k2::eval
