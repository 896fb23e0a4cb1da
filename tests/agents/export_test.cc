// Exports: same seed -> byte-identical JSONL; every line validates as OpenAI chat format with tools;
// the validator rejects each malformation with its pointer; store round trip; Kimi-K2 tokens + masks.
#include "agents/export.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "rewards/judge.h"
#include "agents/scripted_policies.h"
#include "agents/scripted_user.h"
#include "core/store.h"
#include "engine/text/bpe_train.h"
#include "engine/text/tokenizer.h"
#include "tests/agents/test_world.h"

namespace k2::agents {
namespace {

using testing::Jobs;
using testing::Maker;
using testing::TestWorld;

std::vector<Trajectory> Simulate(uint64_t seed) {
  OracleTaskPolicy oracle;
  ScriptedUser user;
  rewards::Judge judge;
  auto trajs = RunEpisodes(Jobs(), Maker(), oracle, &user, {.threads = 2, .seed = seed});
  for (size_t i = 0; i < trajs.size(); ++i) judge.Apply(trajs[i], *TestWorld().tasks[i]);
  return trajs;
}

std::string TempPath(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("k2gym_agents_export_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

TEST(Export, SameSeedGivesByteIdenticalOpenAIJsonl) {
  const std::string a = TempPath("a.jsonl"), b = TempPath("b.jsonl"), c = TempPath("c.jsonl");
  ASSERT_TRUE(WriteOpenAIJsonl(a, Simulate(31)).ok());
  ASSERT_TRUE(WriteOpenAIJsonl(b, Simulate(31)).ok());
  ASSERT_TRUE(WriteOpenAIJsonl(c, Simulate(32)).ok());
  auto ta = ReadFile(a), tb = ReadFile(b), tc = ReadFile(c);
  ASSERT_TRUE(ta.ok() && tb.ok() && tc.ok());
  EXPECT_EQ(*ta, *tb);
  EXPECT_NE(*ta, *tc);
  auto lines = ReadJsonLines(a);
  ASSERT_TRUE(lines.ok());
  EXPECT_EQ(lines->size(), TestWorld().tasks.size());
  for (size_t i = 0; i < lines->size(); ++i) {
    Status s = ValidateOpenAIChatLine((*lines)[i]);
    EXPECT_TRUE(s.ok()) << "line " << i + 1 << ": " << s.ToString();
  }
}

TEST(Export, ValidatorNamesThePointerOfEachMalformation) {
  json good = OpenAIChatLine(Simulate(33)[0]);
  ASSERT_TRUE(ValidateOpenAIChatLine(good).ok()) << ValidateOpenAIChatLine(good).ToString();
  // Find an assistant message with a call and the tool message answering it.
  size_t ai = 0;
  while (ai < good["messages"].size() && !good["messages"][ai].contains("tool_calls")) ++ai;
  ASSERT_LT(ai, good["messages"].size());
  const std::string call = "/messages/" + std::to_string(ai) + "/tool_calls/0";
  struct Case {
    std::string pointer;
    std::function<void(json&)> mutate;
  };
  std::vector<Case> cases = {
      {"/messages/1/role", [](json& j) { j["messages"][1]["role"] = "robot"; }},
      {"/messages/1/content", [](json& j) { j["messages"][1]["content"] = 5; }},
      {call + "/function/arguments", [&](json& j) { j["messages"][ai]["tool_calls"][0]["function"]["arguments"] = json::object(); }},
      {call + "/type", [&](json& j) { j["messages"][ai]["tool_calls"][0]["type"] = "fn"; }},
      {call + "/function/name", [&](json& j) { j["messages"][ai]["tool_calls"][0]["function"]["name"] = "nope"; }},
      {"/messages/" + std::to_string(ai + 1) + "/tool_call_id",
       [&](json& j) { j["messages"][ai + 1]["tool_call_id"] = "functions.x:99"; }},
      {"/tools/0/type", [](json& j) { j["tools"][0]["type"] = "tool"; }},
      {"/tools/0/function/parameters", [](json& j) { j["tools"][0]["function"]["parameters"] = "{}"; }},
      {"/extra", [](json& j) { j["extra"] = 1; }},
      {"/messages", [](json& j) { j["messages"] = json::array(); }},
  };
  for (const auto& c : cases) {
    json j = good;
    c.mutate(j);
    Status s = ValidateOpenAIChatLine(j);
    ASSERT_FALSE(s.ok()) << c.pointer;
    EXPECT_EQ(s.message().rfind(c.pointer + ":", 0), 0u) << "expected pointer " << c.pointer << ", got " << s.message();
  }
}

TEST(Export, StoreRoundTripKeepsEveryTrajectoryAndTheJudgeFlag) {
  const std::string path = TempPath("store.db");
  std::filesystem::remove(path);
  auto db = Db::Open(path);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto trajs = Simulate(34);
  trajs[0].provenance["judge"]["keep"] = false;  // pretend the judge discarded one
  ASSERT_TRUE(SaveTrajectories(db->get(), 0, trajs).ok());
  ASSERT_TRUE(SaveTrajectories(db->get(), 0, trajs).ok());  // upsert: no duplicates
  auto all = LoadTrajectories(db->get());
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), trajs.size());
  std::map<std::string, const Trajectory*> by_id;
  for (const auto& t : trajs) by_id[t.id] = &t;
  for (const auto& t : *all) EXPECT_EQ(CanonicalJson(t.ToJson()), CanonicalJson(by_id.at(t.id)->ToJson()));
  auto kept = LoadTrajectories(db->get(), /*kept_only=*/true);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept->size(), trajs.size() - 1);
}

TEST(Export, KimiTokensMaskExactlyTheAssistantTurns) {
  auto trajs = Simulate(35);
  std::string corpus;
  for (const auto& t : trajs)
    for (const auto& m : t.messages) corpus += m.content + "\n";
  text::BpeTrainOptions opt;
  opt.vocab_size = 256 + 300 + text::kKimiNumReservedSpecial;
  opt.threads = 1;
  auto tok = text::TrainBpe(corpus, opt);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  auto line = KimiTokensLine(trajs[0], *tok);
  ASSERT_TRUE(line.ok()) << line.status().ToString();
  const auto& ids = (*line)["tokens"];
  const auto& mask = (*line)["loss_mask"];
  ASSERT_EQ(ids.size(), mask.size());
  // The masked tokens decode to the assistant turns' text: every assistant content is inside them.
  std::vector<int> masked;
  for (size_t i = 0; i < ids.size(); ++i)
    if (mask[i] == 1) masked.push_back(ids[i]);
  auto decoded = tok->Decode(masked);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  const std::string& text = *decoded;
  for (const auto& m : trajs[0].messages) {
    if (m.role == "assistant" && !m.content.empty()) {
      EXPECT_NE(text.find(m.content), std::string::npos) << m.content;
    }
    if (m.role == "user") {
      EXPECT_EQ(text.find(m.content), std::string::npos) << "user text must not be trained on";
    }
  }
  const std::string out = TempPath("kimi.jsonl");
  ASSERT_TRUE(WriteKimiTokensJsonl(out, trajs, *tok).ok());
  auto lines = ReadJsonLines(out);
  ASSERT_TRUE(lines.ok());
  EXPECT_EQ(lines->size(), trajs.size());
}

}  // namespace
}  // namespace k2::agents
