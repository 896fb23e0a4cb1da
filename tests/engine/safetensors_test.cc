// safetensors I/O: exact F32 round trips with HF names and config.json beside the weights, BF16
// rounding, and clear errors for truncated or inconsistent files.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "engine/engine.h"
#include "tests/engine/test_util.h"

namespace k2::engine {
namespace {

std::string TmpDir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("k2gym_st_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

TEST(Safetensors, ModelRoundTripsExactlyWithHfNamesAndConfig) {
  const std::string dir = TmpDir("rt");
  auto a = Model<float>::Create(testing::TinyConfig(), 1);
  auto b = Model<float>::Create(testing::TinyConfig(), 2);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*a)->SaveSafetensors(dir + "/model.safetensors").ok());
  auto f = ReadSafetensors(dir + "/model.safetensors");
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->tensors.count("model.layers.1.mlp.experts.7.down_proj.weight"));
  EXPECT_TRUE(f->tensors.count("model.layers.2.mlp.gate.e_score_correction_bias"));
  EXPECT_TRUE(f->tensors.count("model.layers.0.self_attn.q_a_proj.weight"));
  EXPECT_TRUE(f->tensors.count("lm_head.weight"));
  auto cfg = LoadModelConfig(dir + "/config.json");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(ModelConfigToJson(*cfg), ModelConfigToJson(testing::TinyConfig()));
  ASSERT_TRUE((*b)->LoadSafetensors(dir + "/model.safetensors").ok());
  for (size_t i = 0; i < (*a)->params().size(); ++i) EXPECT_EQ((*a)->params()[i].w, (*b)->params()[i].w);
}

TEST(Safetensors, Bf16RoundsToNearestEven) {
  const std::string dir = TmpDir("bf16");
  auto a = Model<float>::Create(testing::TinyConfig(), 3);
  ASSERT_TRUE((*a)->SaveSafetensors(dir + "/m.safetensors", "BF16").ok());
  auto f = ReadSafetensors(dir + "/m.safetensors");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->tensors.at("lm_head.weight").dtype, "BF16");
  EXPECT_EQ(f->tensors.at("model.layers.1.mlp.gate.e_score_correction_bias").dtype, "F32");
  auto b = Model<float>::Create(testing::TinyConfig(), 4);
  ASSERT_TRUE((*b)->LoadSafetensors(dir + "/m.safetensors").ok());
  for (size_t i = 0; i < (*a)->params().size(); ++i) {
    const auto& x = (*a)->params()[i].w;
    const auto& y = (*b)->params()[i].w;
    for (size_t j = 0; j < x.size(); ++j) ASSERT_LE(std::abs(x[j] - y[j]), std::abs(x[j]) * (1.0 / 256) + 1e-30);
  }
  // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: round to even (1); 1 + 3*2^-8 rounds up to 1 + 2^-6.
  double v[2] = {1.0 + 1.0 / 256, 1.0 + 3.0 / 256};
  StTensor t = StFromFloats({2}, v, 2, "BF16");
  auto back = StToDouble(t, "t");
  EXPECT_EQ((*back)[0], 1.0);
  EXPECT_EQ((*back)[1], 1.0 + 1.0 / 64);
}

TEST(Safetensors, MalformedFilesGiveClearErrors) {
  const std::string dir = TmpDir("bad");
  auto write = [&](const std::string& name, const std::string& bytes) {
    std::string p = dir + "/" + name;
    EXPECT_TRUE(WriteFileAtomic(p, bytes).ok());
    return p;
  };
  auto with_header = [](const std::string& h, size_t data) {
    std::string s(8, '\0');
    uint64_t n = h.size();
    std::memcpy(s.data(), &n, 8);
    return s + h + std::string(data, '\0');
  };
  EXPECT_NE(ReadSafetensors(write("short", "abc")).status().ToString().find("shorter than"), std::string::npos);
  EXPECT_NE(ReadSafetensors(write("hl", with_header("{}", 0).replace(0, 1, "\xff"))).status().ToString().find("exceeds"),
            std::string::npos);
  auto off = ReadSafetensors(write("off", with_header(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8)));
  EXPECT_NE(off.status().ToString().find("tensor \"w\": data_offsets"), std::string::npos) << off.status().ToString();
  auto sz = ReadSafetensors(write("sz", with_header(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}})", 16)));
  EXPECT_NE(sz.status().ToString().find("shape and dtype need 12"), std::string::npos) << sz.status().ToString();
  auto dt = ReadSafetensors(write("dt", with_header(R"({"w":{"dtype":"F8_E5M2","shape":[4],"data_offsets":[0,4]}})", 4)));
  EXPECT_NE(dt.status().ToString().find("F8_E5M2"), std::string::npos);
  auto js = ReadSafetensors(write("js", with_header("{not json", 0)));
  EXPECT_FALSE(js.ok());
  // A file for another config: the missing tensor is named.
  auto m = Model<float>::Create(testing::TinyConfig(), 5);
  StFile f;
  double one = 1;
  f.tensors["lm_head.weight"] = StFromFloats({1}, &one, 1, "F32");
  ASSERT_TRUE(WriteSafetensors(dir + "/partial.safetensors", f).ok());
  auto st = (*m)->LoadSafetensors(dir + "/partial.safetensors");
  EXPECT_NE(st.ToString().find("missing tensor \"model.embed_tokens.weight\""), std::string::npos) << st.ToString();
}

}  // namespace
}  // namespace k2::engine
