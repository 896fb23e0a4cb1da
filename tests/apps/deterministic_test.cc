// `k2gym --deterministic` (core/determinism.h): the same seed gives the same bits whatever the thread
// settings of the machine and of the command. SFT with other compute-thread settings writes a
// byte-identical checkpoint; an evaluation that samples from that checkpoint with 1 or 4 episodes at once
// (the generator batches concurrent episodes as timing decides) stores the same trajectories.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/json.h"
#include "core/store.h"
#include "engine/text/tokenizer.h"
#include "eval/results.h"
#include "tests/cli_util.h"

namespace k2 {
namespace {

namespace fs = std::filesystem;

std::string Bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(Deterministic, SftAndSampledEvalGiveTheSameBitsWhateverTheThreads) {
  const fs::path dir = fs::temp_directory_path() / ("k2gym_deterministic_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto sh = [&](const std::string& env, const std::string& args) {
    return test::RunShell("cd " + dir.string() + " && " + env + " " + test::K2gymBin() + " " + args + " 2>&1");
  };
  // A byte-level Kimi tokenizer, a few chat dialogs, the tiny model.
  std::vector<std::string> bytes;
  for (int b = 0; b < 256; ++b) bytes.push_back(std::string(1, static_cast<char>(b)));
  auto tok = text::Tokenizer::CreateKimi(bytes);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  ASSERT_TRUE(tok->Save((dir / "tok").string()).ok());
  {
    std::ofstream d(dir / "d.jsonl");
    for (int i = 0; i < 24; ++i) {
      json line = {{"messages", json::array({{{"role", "user"}, {"content", "look up order " + std::to_string(100 + i)}},
                                             {{"role", "assistant"}, {"content", "order " + std::to_string(100 + i) + " is on its way"}}})}};
      d << line.dump() << "\n";
    }
  }
  auto cfg = ReadJsonFile(std::string(K2GYM_SOURCE_DIR) + "/configs/models/tiny.json");
  ASSERT_TRUE(cfg.ok());
  (*cfg)["max_position_embeddings"] = 1024;
  std::ofstream(dir / "m.json") << cfg->dump();
  const std::string sft = "--deterministic --seed 4 --db k.db --quiet sft --model m.json --tokenizer tok --data d.jsonl "
                          "--epochs 1 --set sft.seq_len=192 --set sft.batch_size=4 --set sft.eval_fraction=0 --out ";
  // Another machine, other settings: the environment's thread counts and the command's differ.
  auto a = sh("OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1", sft + "a --set sft.threads=1");
  ASSERT_EQ(a.rc, 0) << a.out;
  auto b = sh("OMP_NUM_THREADS=3", sft + "b --set sft.threads=0");
  ASSERT_EQ(b.rc, 0) << b.out;
  const std::string wa = Bytes(dir / "a" / "checkpoint" / "model.safetensors");
  ASSERT_FALSE(wa.empty());
  EXPECT_TRUE(wa == Bytes(dir / "b" / "checkpoint" / "model.safetensors")) << "SFT weights differ";
  EXPECT_TRUE(Bytes(dir / "a" / "checkpoint" / "optimizer.safetensors") ==
              Bytes(dir / "b" / "checkpoint" / "optimizer.safetensors"));

  // Sampled (temperature 1) evaluation of the checkpoint: one episode at a time vs four at once.
  const std::string ev = "--deterministic --seed 9 --db e.db --json eval --source math:" + std::string(K2GYM_SOURCE_DIR) +
                         "/tests/pipeline/data/math.jsonl --policy engine:a/checkpoint --tokenizer tok --trials 8 --k 1 "
                         "--set eval.episode.temperature=1.0 --set eval.episode.max_tokens_per_turn=48 --threads ";
  auto e1 = sh("", ev + "1");
  ASSERT_EQ(e1.rc, 0) << e1.out;
  auto e4 = sh("OMP_NUM_THREADS=1", ev + "4");
  ASSERT_EQ(e4.rc, 0) << e4.out;
  auto db = Db::Open((dir / "e.db").string());
  ASSERT_TRUE(db.ok());
  auto t1 = eval::LoadEvalTrials(db->get(), 1), t4 = eval::LoadEvalTrials(db->get(), 2);
  ASSERT_TRUE(t1.ok() && t4.ok());
  ASSERT_EQ(t1->size(), 24u);
  ASSERT_EQ(t4->size(), t1->size());
  int64_t generated = 0;
  for (size_t i = 0; i < t1->size(); ++i) {
    const json& x = (*t1)[i].trajectory;
    const json& y = (*t4)[i].trajectory;
    EXPECT_EQ(x.value("messages", json()), y.value("messages", json())) << (*t1)[i].case_id << " #" << (*t1)[i].trial;
    EXPECT_EQ(x.value("policy_logprobs", json()), y.value("policy_logprobs", json())) << (*t1)[i].case_id;
    generated += static_cast<int64_t>(x.value("policy_logprobs", json::array()).size());
  }
  EXPECT_GT(generated, 500) << "the episodes must sample enough tokens for the comparison to mean something";
  if (!::testing::Test::HasFailure() && !std::getenv("K2GYM_KEEP")) fs::remove_all(dir);
}

}  // namespace
}  // namespace k2
