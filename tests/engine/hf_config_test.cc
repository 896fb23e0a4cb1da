// Reading config.json as transformers' DeepseekV3Config does: its defaults for absent fields (a table
// taken from DeepseekV3Config.__init__), RoPE from rope_parameters or rope_theta + rope_scaling with
// transformers 5's precedence (same logits either way), quantization_config, and the written form.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "engine/engine.h"
#include "tests/engine/test_util.h"

namespace k2::engine {
namespace {

// DeepseekV3Config.__init__ defaults (transformers/models/deepseek_v3/configuration_deepseek_v3.py).
const std::vector<std::pair<std::string, json>>& HfDefaults() {
  static const std::vector<std::pair<std::string, json>> t = {
      {"vocab_size", 129280},         {"hidden_size", 7168},           {"intermediate_size", 18432},
      {"moe_intermediate_size", 2048}, {"num_hidden_layers", 61},       {"num_attention_heads", 128},
      {"num_key_value_heads", 128},   {"n_shared_experts", 1},         {"n_routed_experts", 256},
      {"routed_scaling_factor", 2.5}, {"kv_lora_rank", 512},           {"q_lora_rank", 1536},
      {"qk_rope_head_dim", 64},       {"v_head_dim", 128},             {"qk_nope_head_dim", 128},
      {"n_group", 8},                 {"topk_group", 4},               {"num_experts_per_tok", 8},
      {"first_k_dense_replace", 3},   {"norm_topk_prob", true},        {"hidden_act", "silu"},
      {"max_position_embeddings", 4096}, {"initializer_range", 0.02}, {"rms_norm_eps", 1e-6},
      {"tie_word_embeddings", false}, {"rope_interleave", true},       {"attention_bias", false},
  };
  return t;
}

TEST(HfConfig, EachAbsentFieldTakesDeepseekV3ConfigsDefault) {
  const json full = ModelConfigToJson(testing::TinyConfig());
  for (const auto& [field, want] : HfDefaults()) {
    json j = full;
    ASSERT_TRUE(j.contains(field)) << field;
    j.erase(field);
    std::vector<std::string> taken;
    auto c = ReadModelConfigFields(j, "c.json", &taken);
    ASSERT_TRUE(c.ok()) << field << ": " << c.status().ToString();
    EXPECT_EQ(config::ToJson(*c)[field], want) << field;
    ASSERT_EQ(taken.size(), 1u) << field;
    EXPECT_EQ(taken[0].substr(0, field.size() + 1), field + "=") << taken[0];
    // The fields that are present keep their values.
    for (const auto& [other, v] : HfDefaults())
      if (other != field) {
        EXPECT_EQ(config::ToJson(*c)[other], full[other]) << field << " changed " << other;
      }
  }
}

TEST(HfConfig, EmptyConfigIsDeepSeekV3AndListsEveryDefault) {
  std::vector<std::string> taken;
  auto c = ModelConfigFromJson(json::object(), "empty.json", &taken);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(taken.size(), HfDefaults().size() + 1);  // + rope_theta
  EXPECT_NE(std::find(taken.begin(), taken.end(), "routed_scaling_factor=2.5"), taken.end());
  EXPECT_NE(std::find(taken.begin(), taken.end(), "rope_theta=10000"), taken.end());
  EXPECT_FALSE(c->rope_scaling.has_value());
  EXPECT_EQ(c->rope_theta, 10000.0);
  // DeepSeek-V3: 671B total, 37B activated (without the multi-token-prediction layer).
  ModelStats s = ComputeModelStats(*c, 4096);
  EXPECT_NEAR(static_cast<double>(s.total_params) / 1e9, 671, 1.0);
  EXPECT_NEAR(static_cast<double>(s.activated_params) / 1e9, 37.5, 0.6);
}

TEST(HfConfig, NullKeyValueHeadsMeansAttentionHeadsAndNullQLoraMeansQProj) {
  json j = ModelConfigToJson(testing::TinyConfig());
  j["num_key_value_heads"] = nullptr;
  j["q_lora_rank"] = nullptr;
  auto c = ModelConfigFromJson(j, "c.json");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->num_key_value_heads, c->num_attention_heads);
  EXPECT_FALSE(c->q_lora_rank.has_value());
}

json YarnLegacy() {
  json j = ModelConfigToJson(testing::TinyConfig());
  j.erase("rope_parameters");
  j["rope_theta"] = 50000.0;
  j["rope_scaling"] = {{"type", "yarn"},       {"factor", 4.0},        {"original_max_position_embeddings", 16},
                       {"beta_fast", 32},      {"beta_slow", 1},       {"mscale", 1.0},
                       {"mscale_all_dim", 0.8}};
  return j;
}

json YarnV5() {
  json j = ModelConfigToJson(testing::TinyConfig());
  j.erase("rope_scaling");
  j.erase("rope_theta");
  j["rope_parameters"] = {{"rope_type", "yarn"}, {"rope_theta", 50000.0}, {"factor", 4.0},
                          {"original_max_position_embeddings", 16}, {"beta_fast", 32.0}, {"beta_slow", 1.0},
                          {"mscale", 1.0}, {"mscale_all_dim", 0.8}};
  return j;
}

TEST(HfConfig, RopeParametersGiveTheSameLogitsAsRopeThetaPlusRopeScaling) {
  auto a = ModelConfigFromJson(YarnLegacy(), "legacy.json");
  auto b = ModelConfigFromJson(YarnV5(), "v5.json");
  ASSERT_TRUE(a.ok() && b.ok()) << a.status().ToString() << b.status().ToString();
  EXPECT_EQ(a->rope_theta, 50000.0);
  EXPECT_EQ(b->rope_theta, 50000.0);
  EXPECT_EQ(a->inv_freq(), b->inv_freq());
  EXPECT_EQ(a->softmax_scale(), b->softmax_scale());
  EXPECT_EQ(a->rope_attention_factor(), b->rope_attention_factor());
  // The same weights under both configs: identical logits; without YaRN they differ.
  auto ma = Model<double>::Create(*a, 7);
  auto mb = Model<double>::Create(*b, 8);
  ASSERT_TRUE(ma.ok() && mb.ok());
  for (size_t i = 0; i < (*ma)->params().size(); ++i) (*mb)->params()[i].w = (*ma)->params()[i].w;
  Rng rng(5);
  Batch batch = testing::RandomBatch(rng, 2, 24, a->vocab_size);
  ASSERT_TRUE((*ma)->Forward(batch).ok());
  ASSERT_TRUE((*mb)->Forward(batch).ok());
  EXPECT_EQ((*ma)->logits(), (*mb)->logits());
  json plain = YarnV5();
  plain["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 50000.0}};
  auto c = ModelConfigFromJson(plain, "plain.json");
  ASSERT_TRUE(c.ok());
  auto mc = Model<double>::Create(*c, 9);
  for (size_t i = 0; i < (*ma)->params().size(); ++i) (*mc)->params()[i].w = (*ma)->params()[i].w;
  ASSERT_TRUE((*mc)->Forward(batch).ok());
  double diff = 0;
  for (size_t i = 0; i < (*ma)->logits().size(); ++i)
    diff = std::max(diff, std::abs((*ma)->logits()[i] - (*mc)->logits()[i]));
  EXPECT_GT(diff, 1e-3);
}

TEST(HfConfig, RopePrecedenceFollowsTransformers) {
  // rope_scaling (truthy) wins over rope_parameters.
  json j = YarnV5();
  j["rope_scaling"] = {{"type", "yarn"}, {"factor", 2.0}, {"original_max_position_embeddings", 32}};
  auto c = ModelConfigFromJson(j, "c.json");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->rope_scaling->factor, 2.0);
  // ... but then rope_theta comes from the top level (the winning dict has none): absent -> 10000.
  EXPECT_EQ(c->rope_theta, 10000.0);
  j["rope_theta"] = 20000;
  EXPECT_EQ(ModelConfigFromJson(j, "c.json")->rope_theta, 20000.0);
  // An empty rope_scaling is falsy: rope_parameters is used.
  j["rope_scaling"] = json::object();
  EXPECT_EQ(ModelConfigFromJson(j, "c.json")->rope_scaling->factor, 4.0);
  // The dict's own rope_theta beats the top-level one.
  EXPECT_EQ(ModelConfigFromJson(j, "c.json")->rope_theta, 50000.0);
  // original_max_position_embeddings absent -> max_position_embeddings; factor null -> max / original.
  json k = YarnV5();
  k["rope_parameters"].erase("original_max_position_embeddings");
  EXPECT_EQ(ModelConfigFromJson(k, "c.json")->rope_scaling->original_max_position_embeddings, 64);
  k["rope_parameters"]["original_max_position_embeddings"] = 16;
  k["rope_parameters"]["factor"] = nullptr;
  EXPECT_EQ(ModelConfigFromJson(k, "c.json")->rope_scaling->factor, 4.0);
  // beta_fast/beta_slow falsy -> 32/1; attention_factor overrides the mscale rule; truncate false keeps
  // the fractional correction range.
  k["rope_parameters"]["factor"] = 4.0;
  k["rope_parameters"]["beta_fast"] = 0;
  k["rope_parameters"]["beta_slow"] = nullptr;
  auto z = ModelConfigFromJson(k, "c.json");
  EXPECT_EQ(z->inv_freq(), ModelConfigFromJson(YarnV5(), "c.json")->inv_freq());
  k["rope_parameters"]["attention_factor"] = 1.5;
  EXPECT_EQ(ModelConfigFromJson(k, "c.json")->rope_attention_factor(), 1.5);
  // (At DeepSeek-V3's rotary width and pre-extension context the correction range is fractional.)
  k["qk_rope_head_dim"] = 64;
  k["rope_parameters"]["original_max_position_embeddings"] = 4096;
  auto truncated = ModelConfigFromJson(k, "c.json");
  k["rope_parameters"]["truncate"] = false;
  auto exact = ModelConfigFromJson(k, "c.json");
  ASSERT_TRUE(truncated.ok() && exact.ok());
  EXPECT_NE(exact->inv_freq(), truncated->inv_freq());
  // Unsupported kinds are named errors.
  k["rope_parameters"]["rope_type"] = "llama3";
  auto bad = ModelConfigFromJson(k, "c.json");
  EXPECT_NE(bad.status().ToString().find("c.json: rope_parameters.rope_type: expected \"yarn\" or \"default\""),
            std::string::npos)
      << bad.status().ToString();
  k["rope_parameters"] = "yarn";
  EXPECT_NE(ModelConfigFromJson(k, "c.json").status().ToString().find("rope_parameters: expected an object"),
            std::string::npos);
}

TEST(HfConfig, WrittenConfigIsReadBackByEitherRopeForm) {
  const ModelConfig tiny = testing::TinyConfig();
  json j = ModelConfigToJson(tiny);
  ASSERT_TRUE(j.contains("rope_parameters"));
  EXPECT_EQ(j["rope_parameters"]["rope_type"], "yarn");
  EXPECT_EQ(j["rope_parameters"]["rope_theta"], tiny.rope_theta);
  // transformers 5 reads rope_scaling first; a reader of only rope_parameters gets the same config.
  json v5 = j;
  v5.erase("rope_scaling");
  v5.erase("rope_theta");
  auto a = ModelConfigFromJson(j, "a.json");
  auto b = ModelConfigFromJson(v5, "b.json");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(ModelConfigToJson(*a), j);
  EXPECT_EQ(ModelConfigToJson(*b), j);
  EXPECT_EQ(a->inv_freq(), tiny.inv_freq());
  EXPECT_EQ(a->softmax_scale(), tiny.softmax_scale());
}

TEST(HfConfig, QuantizationConfigIsUnderstoodOrANamedError) {
  json j = {{"quantization_config",
             {{"activation_scheme", "dynamic"}, {"fmt", "e4m3"}, {"quant_method", "fp8"}, {"weight_block_size", {128, 128}}}}};
  auto q = ReadQuantizationConfig(j, "c.json");
  ASSERT_TRUE(q.ok() && q->has_value());
  EXPECT_EQ((*q)->block_rows, 128);
  EXPECT_EQ((*q)->block_cols, 128);
  EXPECT_FALSE(ReadQuantizationConfig(json::object(), "c.json")->has_value());
  j["quantization_config"]["quant_method"] = "bitsandbytes";
  EXPECT_NE(ReadQuantizationConfig(j, "c.json").status().ToString().find("c.json: quantization_config.quant_method"),
            std::string::npos);
  j["quantization_config"]["quant_method"] = "fp8";
  j["quantization_config"]["fmt"] = "e5m2";
  EXPECT_NE(ReadQuantizationConfig(j, "c.json").status().ToString().find("quantization_config.fmt"), std::string::npos);
  j["quantization_config"]["fmt"] = "e4m3";
  j["quantization_config"]["weight_block_size"] = {128};
  EXPECT_NE(ReadQuantizationConfig(j, "c.json").status().ToString().find("weight_block_size"), std::string::npos);
  // A config with a quantization_config still reads as a model config (foreign key).
  json full = ModelConfigToJson(testing::TinyConfig());
  full["quantization_config"] = j["quantization_config"];
  EXPECT_TRUE(ModelConfigFromJson(full, "c.json").ok());
}

}  // namespace
}  // namespace k2::engine
