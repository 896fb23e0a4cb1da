// Tokenizers as checkpoints ship them: a Kimi-K2-style directory (tiktoken.model + tokenizer_config.json
// added tokens at ids 163584+) and a Hugging Face tokenizer.json (byte-level BPE + added tokens). Both
// round-trip text exactly and render chats with the files' own special-token ids; tokenizer.json's
// merge-ranked BPE encodes as the tiktoken ranks it was converted from.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>

#include "engine/text/chat_template.h"
#include "tests/engine/text/checkpoint_tokenizers.h"
#include "tests/engine/text/corpus_gen.h"

namespace k2::text {
namespace {

using testing::HfTokenizerJson;
using testing::KimiAddedTokens;
using testing::kKimiRanks;
using testing::SmallTokenizer;

std::string TempDir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("k2gym_ckpttok_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

std::vector<std::string> SampleTexts() {
  std::vector<std::string> t = {"",
                                "Hello, 世界! naïve café — «quotes» and emoji 🙂\n\ttabs  and   spaces",
                                "<|im_end|> typed by a user stays text",
                                "bytes \xff\xfe\xf8 invalid \xc3 utf-8 \x80",
                                "Numbers 1234567 and 3.14159, CamelCaseWords, don't we'll"};
  const std::string corpus = testing::GenerateCorpus(17, 40000);
  for (size_t at = 0; at + 4000 <= corpus.size(); at += 4000) t.push_back(corpus.substr(at, 4000));
  return t;
}

// The token ids a chat renders to, read back: every special in the rendering, by id.
std::vector<int> SpecialIdsOf(const Tokenizer& tok, const RenderedChat& r) {
  std::vector<int> out;
  for (int id : r.tokens)
    if (tok.IsSpecial(id) || tok.TokenBytes(id).rfind("<|", 0) == 0) out.push_back(id);
  return out;
}

std::vector<Message> Dialog() {
  Message a{.role = "assistant", .content = "Checking."};
  a.tool_calls = {ToolCall{"c1", "get_weather", R"({"city":"Paris"})"}};
  return {Message{.role = "user", .content = "Weather in Paris?"}, a,
          Message{.role = "tool", .content = "18C", .tool_call_id = "c1"},
          Message{.role = "assistant", .content = "It is 18C."}};
}

TEST(CheckpointTokenizer, KimiStyleDirectoryUsesTokenizerConfigIds) {
  for (bool finetuned : {false, true}) {
    const std::string dir = TempDir(finetuned ? "kimi_ft" : "kimi");
    testing::WriteKimiStyleDir(dir, finetuned);
    auto tok = Tokenizer::Load(dir);
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    EXPECT_EQ(tok->num_ranks(), kKimiRanks);
    EXPECT_EQ(tok->vocab_size(), finetuned ? kKimiRanks + 301 : kKimiRanks + 256);
    for (auto& [id, name] : KimiAddedTokens(finetuned)) EXPECT_EQ(tok->SpecialId(name), id) << name;
    EXPECT_EQ(tok->SpecialId("[BOS]"), 163584);
    EXPECT_EQ(tok->SpecialId("[EOS]"), 163585);
    EXPECT_EQ(tok->SpecialId("<|im_end|>"), finetuned ? 163884 : 163586);
    EXPECT_EQ(tok->pretokenizer().pattern(), kKimiPattern);
    for (const auto& t : SampleTexts()) {
      auto ids = tok->Encode(t);
      ASSERT_EQ(*tok->Decode(ids), t);
      // The padded ranks change nothing for text: same ids as the small tokenizer they extend.
      ASSERT_EQ(ids, SmallTokenizer().Encode(t));
    }
    auto r = RenderChat(Dialog(), nullptr, &*tok, {.add_generation_prompt = true});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    const int im_end = tok->SpecialId(kImEnd), im_middle = tok->SpecialId(kImMiddle);
    EXPECT_EQ(std::count(r->tokens.begin(), r->tokens.end(), im_end), 5);  // system, user, 2 assistant, tool
    EXPECT_EQ(std::count(r->tokens.begin(), r->tokens.end(), im_middle), 6);
    EXPECT_EQ(*tok->Decode(r->tokens), r->text);
    for (int id : SpecialIdsOf(*tok, *r)) EXPECT_GE(id, kKimiRanks);
    // Saved in k2gym's form and loaded again: the same ids.
    const std::string again = TempDir("kimi_again");
    ASSERT_TRUE(tok->Save(again).ok());
    auto tok2 = Tokenizer::Load(again);
    ASSERT_TRUE(tok2.ok()) << tok2.status().ToString();
    for (auto& [id, name] : KimiAddedTokens(finetuned)) EXPECT_EQ(tok2->SpecialId(name), id) << name;
    std::filesystem::remove_all(dir);
    std::filesystem::remove_all(again);
  }
}

TEST(CheckpointTokenizer, KimiStyleConfigErrorsNameTheField) {
  const std::string dir = TempDir("kimi_bad");
  std::vector<std::string> ranks;
  for (int r = 0; r < SmallTokenizer().num_ranks(); ++r) ranks.push_back(SmallTokenizer().TokenBytes(r));
  ASSERT_TRUE(WriteFileAtomic(dir + "/tiktoken.model", FormatTiktokenRanks(ranks)).ok());
  auto with = [&](const json& cfg) {
    EXPECT_TRUE(WriteFileAtomic(dir + "/tokenizer_config.json", cfg.dump()).ok());
    return Tokenizer::Load(dir).status().ToString();
  };
  EXPECT_NE(with({{"added_tokens_decoder", {{"12", {{"content", "[BOS]"}}}}}}).find("added_tokens_decoder.12: id 12 is not after"),
            std::string::npos);
  EXPECT_NE(with({{"added_tokens_decoder", {{"x", {{"content", "[BOS]"}}}}}}).find("added_tokens_decoder.x: expected a decimal"),
            std::string::npos);
  EXPECT_NE(with({{"added_tokens_decoder", {{std::to_string(ranks.size()), {{"special", true}}}}}}).find("string \"content\""),
            std::string::npos);
  // Without added_tokens_decoder: Kimi-K2's layout.
  with(json::object());
  auto t = Tokenizer::Load(dir);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->SpecialId("<|im_end|>"), static_cast<int>(ranks.size()) + 2);
  std::filesystem::remove_all(dir);
}

TEST(CheckpointTokenizer, HfTokenizerJsonRoundTripsAndEncodesAsItsTiktokenRanks) {
  for (bool pair_merges : {false, true}) {
    std::vector<int> rank_to_id;
    const json j = HfTokenizerJson(&rank_to_id, pair_merges);
    const std::string dir = TempDir(pair_merges ? "hf_pairs" : "hf");
    ASSERT_TRUE(WriteFileAtomic(dir + "/tokenizer.json", j.dump()).ok());
    auto tok = Tokenizer::Load(dir);
    ASSERT_TRUE(tok.ok()) << tok.status().ToString();
    EXPECT_EQ(tok->format(), "hf");
    const int R = SmallTokenizer().num_ranks();
    EXPECT_EQ(tok->num_ranks(), R);
    EXPECT_EQ(tok->SpecialId("<|im_system|>"), R);
    EXPECT_EQ(tok->SpecialId("<|im_end|>"), R + 12);
    EXPECT_EQ(tok->SpecialId("[EOS]"), R + 33);
    EXPECT_EQ(tok->vocab_size(), R + 34);
    for (const auto& t : SampleTexts()) {
      const std::vector<int> ids = tok->Encode(t);
      ASSERT_EQ(*tok->Decode(ids), t);
      ASSERT_EQ(ids, tok->EncodeReference(t));
      // Merges in rank order reproduce tiktoken's rank-ordered BPE, ids through the permutation.
      std::vector<int> want;
      for (int r : SmallTokenizer().Encode(t)) want.push_back(rank_to_id[r]);
      ASSERT_EQ(ids, want);
    }
    auto r = RenderChat(Dialog(), nullptr, &*tok, {.add_generation_prompt = true});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(std::count(r->tokens.begin(), r->tokens.end(), R + 12), 5);
    EXPECT_EQ(r->tokens.front(), R);  // <|im_system|> of the default system turn
    EXPECT_EQ(*tok->Decode(r->tokens), r->text);
    EXPECT_EQ(tok->EncodeWithSpecial("a<|im_end|>b")[1], R + 12);
    // Save writes the file back unchanged.
    const std::string again = TempDir("hf_again");
    ASSERT_TRUE(tok->Save(again).ok());
    EXPECT_EQ(*ReadFile(again + "/tokenizer.json"), *ReadFile(dir + "/tokenizer.json"));
    std::filesystem::remove_all(dir);
    std::filesystem::remove_all(again);
  }
}

TEST(CheckpointTokenizer, MergePriorityNotIdOrderDecides) {
  // vocab ids put "bc" before "ab", but the merges list ranks (a, b) first: "abc" -> [ab, c]. tiktoken
  // ranking by id would give [a, bc]. A piece that is a whole vocab token still goes through the merges
  // unless ignore_merges is set.
  json vocab = json::object();
  int id = 0;
  for (int b = 0; b < 256; ++b) vocab[testing::ByteLevelSpell(std::string(1, static_cast<char>(b)))] = id++;
  vocab["bc"] = id++;
  vocab["ab"] = id++;
  vocab["xy"] = id++;
  json j = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"a b", "b c"}}}},
            {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}},
            {"added_tokens", json::array()}};
  auto tok = Tokenizer::FromHfTokenizerJson(j, "t.json");
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  EXPECT_EQ(tok->Encode("abc"), (std::vector<int>{257, 'c'}));
  EXPECT_EQ(tok->Encode("xy"), (std::vector<int>{'x', 'y'}));  // no merge makes "xy"
  EXPECT_EQ(tok->EncodeReference("abc"), tok->Encode("abc"));
  j["model"]["ignore_merges"] = true;
  EXPECT_EQ(Tokenizer::FromHfTokenizerJson(j, "t.json")->Encode("xy"), (std::vector<int>{258}));
  // GPT-2's regex splits " world" from "hello".
  EXPECT_EQ(*tok->Decode(tok->Encode("hello world")), "hello world");
}

TEST(CheckpointTokenizer, HfTokenizerJsonErrorsNameTheField) {
  std::vector<int> perm;
  const json good = HfTokenizerJson(&perm);
  auto err = [&](const std::function<void(json&)>& edit) {
    json j = good;
    edit(j);
    return Tokenizer::FromHfTokenizerJson(j, "tok.json").status().ToString();
  };
  EXPECT_NE(err([](json& j) { j["model"]["type"] = "Unigram"; }).find("tok.json: model.type: expected \"BPE\""),
            std::string::npos);
  EXPECT_NE(err([](json& j) { j["model"]["vocab"]["\xc3\xa9t\xc3\xa9"] = 5; }).find("is given twice"), std::string::npos);
  EXPECT_NE(err([](json& j) { j["model"]["merges"].push_back("zz qq"); }).find("model.merges["), std::string::npos);
  EXPECT_NE(err([](json& j) { j["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = true; })
                .find("pre_tokenizer.pretokenizers[1].add_prefix_space"),
            std::string::npos);
  EXPECT_NE(err([](json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }).find("pre_tokenizer.type"),
            std::string::npos);
  EXPECT_NE(err([](json& j) { j["normalizer"] = {{"type", "NFC"}}; }).find("tok.json: normalizer"), std::string::npos);
  EXPECT_NE(err([](json& j) { j["added_tokens"][0]["id"] = 3; }).find("added_tokens[0]: id 3 is the vocab token"),
            std::string::npos);
}

}  // namespace
}  // namespace k2::text
