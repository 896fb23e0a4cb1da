// ModelConfig: reading HF config.json files, cross-field validation, YaRN/RoPE constants and the
// parameter/FLOP counts of `k2gym model info`.
#include <cmath>
#include <cstdio>

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
  const bool truncate = r.truncate.value_or(true);
  double low = std::max(truncate ? std::floor(cd(beta_fast)) : cd(beta_fast), 0.0);
  double high = std::min(truncate ? std::ceil(cd(beta_slow)) : cd(beta_slow), static_cast<double>(d - 1));
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
  if (r.attention_factor) return *r.attention_factor;
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

ModelConfig DeepseekV3ConfigDefaults() {
  // transformers: models/deepseek_v3/configuration_deepseek_v3.py, DeepseekV3Config.__init__ defaults.
  ModelConfig c;
  c.vocab_size = 129280;
  c.hidden_size = 7168;
  c.intermediate_size = 18432;
  c.moe_intermediate_size = 2048;
  c.num_hidden_layers = 61;
  c.num_attention_heads = 128;
  c.num_key_value_heads = 128;
  c.n_shared_experts = 1;
  c.n_routed_experts = 256;
  c.routed_scaling_factor = 2.5;
  c.kv_lora_rank = 512;
  c.q_lora_rank = 1536;
  c.qk_rope_head_dim = 64;
  c.v_head_dim = 128;
  c.qk_nope_head_dim = 128;
  c.n_group = 8;
  c.topk_group = 4;
  c.num_experts_per_tok = 8;
  c.first_k_dense_replace = 3;
  c.norm_topk_prob = true;
  c.hidden_act = "silu";
  c.max_position_embeddings = 4096;
  c.initializer_range = 0.02;
  c.rms_norm_eps = 1e-6;
  c.tie_word_embeddings = false;
  c.rope_interleave = true;
  c.attention_bias = false;
  c.rope_theta = 10000.0;  // RotaryEmbeddingConfigMixin.default_theta
  c.rope_scaling.reset();  // rope_parameters None -> {"rope_type": "default"}
  // Fields DeepseekV3Config lacks (DeepSeek's remote-code config has them; transformers' model behaves
  // as these values): topk_method noaux_tc, scoring_func sigmoid, moe_layer_freq 1 — k2gym's values.
  return c;
}

namespace {

std::string ShowDefault(const json& v) {
  if (v.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v.get<double>());
    return buf;
  }
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// Python truthiness of a JSON value as transformers tests `rope_scaling or rope_parameters`.
bool Truthy(const json& v) {
  if (v.is_null()) return false;
  if (v.is_object() || v.is_array() || v.is_string()) return !v.empty();
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0.0;
  return true;
}

// transformers 5 RotaryEmbeddingConfigMixin.convert_rope_params_to_dict + standardize_rope_params:
//  - the dict is `rope_scaling` when that is truthy, else `rope_parameters`, else {};
//  - rope_theta: the dict's own, else the top-level `rope_theta`, else 10000;
//  - rope_type: "rope_type", else "type", else "default";
//  - yarn: original_max_position_embeddings absent -> max_position_embeddings; factor null ->
//    max_position_embeddings / original; beta_fast/beta_slow falsy -> 32/1 (inv_freq()).
Status ResolveRope(const json& j, const std::string& source, ModelConfig* c, std::vector<std::string>* taken) {
  const json* dict = nullptr;
  std::string key;
  if (j.contains("rope_scaling") && Truthy(j["rope_scaling"])) {
    dict = &j["rope_scaling"];
    key = "rope_scaling";
  } else if (j.contains("rope_parameters") && !j["rope_parameters"].is_null()) {
    dict = &j["rope_parameters"];
    key = "rope_parameters";
  }
  static const json kEmpty = json::object();
  if (dict == nullptr) dict = &kEmpty;
  if (!dict->is_object())
    return InvalidArgument(source + ": " + key + ": expected an object of RoPE parameters, got " + JsonTypeName(*dict));
  const json& rp = *dict;
  auto num = [&](const char* k, double* out, double min) -> Status {
    const json& v = rp[k];
    if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < min)
      return InvalidArgument(source + ": " + key + "." + k + ": expected a number >= " + ShowDefault(min) + ", got " +
                             v.dump());
    *out = v.get<double>();
    return Status::Ok();
  };
  if (rp.contains("rope_theta") && !rp["rope_theta"].is_null()) {
    K2_RETURN_IF_ERROR(num("rope_theta", &c->rope_theta, 1.0));
  } else if (j.contains("rope_theta") && !j["rope_theta"].is_null()) {
    const json& v = j["rope_theta"];
    if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 1.0)
      return InvalidArgument(source + ": rope_theta: expected a number >= 1, got " + v.dump());
    c->rope_theta = v.get<double>();
  } else {
    c->rope_theta = 10000.0;
    if (taken) taken->push_back("rope_theta=10000");
  }
  std::string type = "default", type_key = "rope_type";
  for (const char* k : {"rope_type", "type"}) {
    if (rp.contains(k) && !rp[k].is_null()) {
      if (!rp[k].is_string()) return InvalidArgument(source + ": " + key + "." + k + ": expected a string, got " + rp[k].dump());
      type = rp[k].get<std::string>();
      type_key = k;
      break;
    }
  }
  if (type == "default") {
    c->rope_scaling.reset();
    return Status::Ok();
  }
  if (type != "yarn")
    return InvalidArgument(source + ": " + key + "." + type_key + ": expected \"yarn\" or \"default\" (DeepSeek-V3 RoPE), got \"" +
                           type + "\"");
  // Null values read as absent (transformers uses dict.get); rope_theta was consumed above.
  json rest = json::object();
  for (auto& [k, v] : rp.items())
    if (!v.is_null() && k != "rope_theta") rest[k] = v;
  if (!rp.contains("factor"))
    return InvalidArgument(source + ": " + key + ".factor: required for rope_type \"yarn\"");
  RopeScaling r;
  K2_RETURN_IF_ERROR(config::Reader::Read(rest, r, key, source, /*allow_unknown=*/true));
  if (!rest.contains("original_max_position_embeddings"))
    r.original_max_position_embeddings = c->max_position_embeddings;
  if (rp["factor"].is_null())
    r.factor = static_cast<double>(c->max_position_embeddings) / static_cast<double>(r.original_max_position_embeddings);
  if (!(r.factor >= 1.0)) return InvalidArgument(source + ": " + key + ".factor: expected >= 1, got " + ShowDefault(r.factor));
  if (!rest.contains("beta_fast")) r.beta_fast = 32.0;
  if (!rest.contains("beta_slow")) r.beta_slow = 1.0;
  c->rope_scaling = std::move(r);
  return Status::Ok();
}

}  // namespace

Expected<ModelConfig> ReadModelConfigFields(const json& j, const std::string& source, std::vector<std::string>* taken) {
  if (!j.is_object()) return InvalidArgument(source + ": expected a JSON object (config.json)");
  ModelConfig c = DeepseekV3ConfigDefaults();
  // Everything but RoPE through the typed reader; RoPE by transformers' precedence rules below.
  json fields = j;
  for (const char* k : {"rope_theta", "rope_scaling", "rope_parameters"}) fields.erase(k);
  // DeepseekV3Config: num_key_value_heads None -> num_attention_heads.
  if (fields.contains("num_key_value_heads") && fields["num_key_value_heads"].is_null()) {
    fields["num_key_value_heads"] = fields.value("num_attention_heads", json(c.num_attention_heads));
  }
  K2_RETURN_IF_ERROR(config::Reader::Read(fields, c, "", source, /*allow_unknown=*/true));
  if (taken) {
    const json d = config::ToJson(DeepseekV3ConfigDefaults());
    for (const char* k : {"vocab_size", "hidden_size", "intermediate_size", "moe_intermediate_size",
                          "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "n_shared_experts",
                          "n_routed_experts", "routed_scaling_factor", "kv_lora_rank", "q_lora_rank",
                          "qk_rope_head_dim", "v_head_dim", "qk_nope_head_dim", "n_group", "topk_group",
                          "num_experts_per_tok", "first_k_dense_replace", "norm_topk_prob", "hidden_act",
                          "max_position_embeddings", "initializer_range", "rms_norm_eps", "tie_word_embeddings",
                          "rope_interleave", "attention_bias"})
      if (!j.contains(k)) taken->push_back(std::string(k) + "=" + ShowDefault(d[k]));
  }
  K2_RETURN_IF_ERROR(ResolveRope(j, source, &c, taken));
  return c;
}

Expected<ModelConfig> ModelConfigFromJson(const json& j, const std::string& source, std::vector<std::string>* taken) {
  K2_ASSIGN_OR_RETURN(ModelConfig c, ReadModelConfigFields(j, source, taken));
  K2_RETURN_IF_ERROR(ValidateModelConfig(c, source));
  return c;
}

Expected<ModelConfig> LoadModelConfig(const std::string& path, std::vector<std::string>* defaults_taken) {
  K2_ASSIGN_OR_RETURN(json j, ReadJsonFile(path));
  std::vector<std::string> taken;
  K2_ASSIGN_OR_RETURN(ModelConfig c, ModelConfigFromJson(j, path, &taken));
  if (!taken.empty() && defaults_taken == nullptr) {
    std::string line = path + ": absent fields take DeepseekV3Config defaults:";
    for (auto& t : taken) line += " " + t;
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  if (defaults_taken) *defaults_taken = std::move(taken);
  return c;
}

json ModelConfigToJson(const ModelConfig& c) {
  json j = config::ToJson(c);
  json rp = {{"rope_type", "default"}, {"rope_theta", c.rope_theta}};
  if (c.rope_scaling) {
    // Drop null optionals inside rope_scaling: HF reads absent keys with .get().
    json& r = j["rope_scaling"];
    for (auto it = r.begin(); it != r.end();) it = it->is_null() ? r.erase(it) : std::next(it);
    r.erase("type");
    r["rope_type"] = "yarn";
    r["type"] = "yarn";  // transformers 4 before rope_type
    rp = r;
    rp.erase("type");
    rp["rope_theta"] = c.rope_theta;
  }
  j["rope_parameters"] = rp;
  j["architectures"] = json::array({"DeepseekV3ForCausalLM"});
  j["model_type"] = "deepseek_v3";
  j["torch_dtype"] = "float32";
  return j;
}

Expected<std::optional<Fp8Quantization>> ReadQuantizationConfig(const json& config, const std::string& source) {
  if (!config.is_object() || !config.contains("quantization_config") || config["quantization_config"].is_null())
    return std::optional<Fp8Quantization>();
  const json& q = config["quantization_config"];
  const std::string where = source + ": quantization_config";
  if (!q.is_object()) return InvalidArgument(where + ": expected an object, got " + JsonTypeName(q));
  Fp8Quantization out;
  if (!q.contains("quant_method") || !q["quant_method"].is_string() || q["quant_method"] != "fp8")
    return InvalidArgument(where + ".quant_method: expected \"fp8\" (block-scaled FP8, as DeepSeek-V3/Kimi-K2 ship), got " +
                           (q.contains("quant_method") ? q["quant_method"].dump() : std::string("nothing")));
  if (q.contains("fmt") && !q["fmt"].is_null()) {
    if (!q["fmt"].is_string() || q["fmt"] != "e4m3")
      return InvalidArgument(where + ".fmt: expected \"e4m3\", got " + q["fmt"].dump());
  }
  if (q.contains("activation_scheme") && q["activation_scheme"].is_string())
    out.activation_scheme = q["activation_scheme"].get<std::string>();
  if (q.contains("weight_block_size") && !q["weight_block_size"].is_null()) {
    const json& b = q["weight_block_size"];
    auto ok = [](const json& v) {
      return v.is_number_integer() && v.get<int64_t>() >= 1 && v.get<int64_t>() <= (int64_t{1} << 20);
    };
    if (!b.is_array() || b.size() != 2 || !ok(b[0]) || !ok(b[1]))
      return InvalidArgument(where + ".weight_block_size: expected [rows, cols] of positive integers, got " + b.dump());
    out.block_rows = b[0].get<int64_t>();
    out.block_cols = b[1].get<int64_t>();
  } else {
    return InvalidArgument(where + ".weight_block_size: required (per-tensor FP8 scales are not supported)");
  }
  return std::optional<Fp8Quantization>(out);
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
