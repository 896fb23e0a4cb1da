// ModelConfig: reading HF config.json files, cross-field validation, YaRN/RoPE constants and the
// parameter/FLOP counts of `k2gym model info`.
#include <cmath>

#include "engine/engine.h"

namespace k2::engine {
namespace {

// HF modeling_rope_utils: get_mscale(scale, mscale) = 0.1*mscale*ln(scale)+1 for scale > 1, else 1.
double GetMscale(double scale, double mscale) { return scale <= 1.0 ? 1.0 : 0.1 * mscale * std::log(scale) + 1.0; }

}  // namespace

double ModelConfig::softmax_scale() const {
  double s = 1.0 / std::sqrt(static_cast<double>(qk_head_dim()));
  if (rope_scaling && rope_scaling->mscale_all_dim.value_or(0.0) != 0.0) {
    double m = GetMscale(rope_scaling->factor, *rope_scaling->mscale_all_dim);
    s *= m * m;
  }
  return s;
}

std::vector<double> ModelConfig::inv_freq() const {
  const int64_t d = qk_rope_head_dim;
  const double base = rope_theta;
  std::vector<double> f(static_cast<size_t>(d / 2));
  for (int64_t i = 0; i < d / 2; ++i) f[i] = 1.0 / std::pow(base, static_cast<double>(2 * i) / static_cast<double>(d));
  if (!rope_scaling) return f;
  const RopeScaling& r = *rope_scaling;
  const double factor = r.factor;
  const double beta_fast = r.beta_fast != 0 ? r.beta_fast : 32.0;  // HF: `get("beta_fast") or 32`
  const double beta_slow = r.beta_slow != 0 ? r.beta_slow : 1.0;
  const double L = static_cast<double>(r.original_max_position_embeddings);
  auto cd = [&](double rot) {
    return static_cast<double>(d) * std::log(L / (rot * 2.0 * M_PI)) / (2.0 * std::log(base));
  };
  double low = std::max(std::floor(cd(beta_fast)), 0.0);
  double high = std::min(std::ceil(cd(beta_slow)), static_cast<double>(d - 1));
  if (low == high) high += 0.001;
  for (int64_t i = 0; i < d / 2; ++i) {
    double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
    // HF: inv_freq = interp * (1 - extrap_factor) + extrap * extrap_factor, extrap_factor = 1 - ramp.
    f[i] = f[i] / factor * ramp + f[i] * (1.0 - ramp);
  }
  return f;
}

double ModelConfig::rope_attention_factor() const {
  if (!rope_scaling) return 1.0;
  const RopeScaling& r = *rope_scaling;
  double ms = r.mscale.value_or(0.0), msa = r.mscale_all_dim.value_or(0.0);
  if (ms != 0.0 && msa != 0.0) return GetMscale(r.factor, ms) / GetMscale(r.factor, msa);
  return GetMscale(r.factor, 1.0);
}

Status ValidateModelConfig(const ModelConfig& c, const std::string& src) {
  auto bad = [&](const std::string& field, const std::string& what) {
    return InvalidArgument(src + ": " + field + ": " + what);
  };
  if (c.num_key_value_heads != c.num_attention_heads)
    return bad("num_key_value_heads", "expected to equal num_attention_heads (" +
                                          std::to_string(c.num_attention_heads) + ") for MLA, got " +
                                          std::to_string(c.num_key_value_heads));
  if (c.qk_rope_head_dim % 2 != 0)
    return bad("qk_rope_head_dim", "expected an even number, got " + std::to_string(c.qk_rope_head_dim));
  if (c.n_routed_experts % c.n_group != 0)
    return bad("n_group", "expected a divisor of n_routed_experts (" + std::to_string(c.n_routed_experts) +
                              "), got " + std::to_string(c.n_group));
  if (c.n_routed_experts / c.n_group < 2)
    return bad("n_group", "expected at least 2 experts per group (group score = sum of the top 2)");
  if (c.topk_group > c.n_group)
    return bad("topk_group", "expected <= n_group (" + std::to_string(c.n_group) + "), got " +
                                 std::to_string(c.topk_group));
  if (c.num_experts_per_tok > c.topk_group * (c.n_routed_experts / c.n_group))
    return bad("num_experts_per_tok", "expected <= experts in the kept groups (" +
                                          std::to_string(c.topk_group * (c.n_routed_experts / c.n_group)) +
                                          "), got " + std::to_string(c.num_experts_per_tok));
  if (c.first_k_dense_replace > c.num_hidden_layers)
    return bad("first_k_dense_replace", "expected <= num_hidden_layers");
  if (c.tie_word_embeddings) return bad("tie_word_embeddings", "expected false (DeepseekV3 unties lm_head)");
  if (c.attention_bias) return bad("attention_bias", "expected false (no biases in MLA)");
  if (c.rope_scaling) {
    std::string t = c.rope_scaling->rope_type.value_or(c.rope_scaling->type.value_or("yarn"));
    if (t != "yarn") return bad("rope_scaling.type", "expected \"yarn\", got \"" + t + "\"");
  }
  return Status::Ok();
}

Expected<ModelConfig> ModelConfigFromJson(const json& j, const std::string& source) {
  ModelConfig c;
  // HF files carry many foreign keys (architectures, quantization_config, auto_map...): allowed;
  // the fields ModelConfig lists are strictly typed and range-checked.
  K2_RETURN_IF_ERROR(config::Reader::Read(j, c, "", source, /*allow_unknown=*/true));
  K2_RETURN_IF_ERROR(ValidateModelConfig(c, source));
  return c;
}

Expected<ModelConfig> LoadModelConfig(const std::string& path) {
  K2_ASSIGN_OR_RETURN(json j, ReadJsonFile(path));
  return ModelConfigFromJson(j, path);
}

json ModelConfigToJson(const ModelConfig& c) {
  json j = config::ToJson(c);
  if (c.rope_scaling) {
    // Drop null optionals inside rope_scaling: HF reads absent keys with .get().
    json& r = j["rope_scaling"];
    for (auto it = r.begin(); it != r.end();) it = it->is_null() ? r.erase(it) : std::next(it);
    if (!r.contains("type") && !r.contains("rope_type")) r["type"] = "yarn";
  }
  j["architectures"] = json::array({"DeepseekV3ForCausalLM"});
  j["model_type"] = "deepseek_v3";
  j["torch_dtype"] = "float32";
  return j;
}

ModelStats ComputeModelStats(const ModelConfig& c, int64_t context) {
  const int64_t D = c.hidden_size, H = c.num_attention_heads, dq = c.qk_head_dim();
  int64_t attn = D;  // input_layernorm
  if (c.q_lora_rank) {
    attn += *c.q_lora_rank * D + *c.q_lora_rank + H * dq * *c.q_lora_rank;
  } else {
    attn += H * dq * D;
  }
  attn += (c.kv_lora_rank + c.qk_rope_head_dim) * D + c.kv_lora_rank +
          H * (c.qk_nope_head_dim + c.v_head_dim) * c.kv_lora_rank + D * H * c.v_head_dim;
  const int64_t post_norm = D;
  const int64_t dense_mlp = 3 * D * c.intermediate_size;
  const int64_t expert = 3 * D * c.moe_intermediate_size;
  const int64_t shared = c.n_shared_experts * expert;
  const int64_t gate = c.n_routed_experts * D;
  const int64_t bias = c.n_routed_experts;
  const int64_t embed = c.vocab_size * D;
  const int64_t n_dense = c.first_k_dense_replace, n_moe = c.num_hidden_layers - c.first_k_dense_replace;

  ModelStats s;
  s.context = context;
  s.embedding_params = embed;
  s.total_params = embed + embed + D /*final norm*/ + c.num_hidden_layers * (attn + post_norm) +
                   n_dense * dense_mlp + n_moe * (c.n_routed_experts * expert + shared + gate + bias);
  s.activated_params = embed + embed + D + c.num_hidden_layers * (attn + post_norm) + n_dense * dense_mlp +
                       n_moe * (c.num_experts_per_tok * expert + shared + gate + bias);
  // Matmul FLOPs: 2 per activated weight (the embedding is a lookup, norms and biases are not matmuls),
  // plus attention scores and the weighted sum over `context` keys per layer (not halved for causality).
  double matmul = static_cast<double>(s.activated_params - embed - D - bias * n_moe -
                                      c.num_hidden_layers * (2 * D) -
                                      (c.q_lora_rank ? *c.q_lora_rank : 0) * c.num_hidden_layers -
                                      c.kv_lora_rank * c.num_hidden_layers);
  double attn_flops = 2.0 * static_cast<double>(c.num_hidden_layers) * static_cast<double>(H) *
                      static_cast<double>(dq + c.v_head_dim) * static_cast<double>(context);
  s.flops_per_token_fwd = 2.0 * matmul + attn_flops;
  s.flops_per_token_train = 3.0 * s.flops_per_token_fwd;
  return s;
}

}  // namespace k2::engine
