// The public face of the model engine: the DeepSeek-V3 / Kimi-K2 config (HF config.json field names),
// the CPU model (forward with loss, backward, QK-Clip statistics), MuonClip + AdamW, safetensors I/O
// and training checkpoints. Internals live in engine/ops_cpu.h and engine/detail/.
//
// Threading: a Model or Optimizer is used by one thread at a time; internally GEMMs run on OpenBLAS
// threads and elementwise loops on OpenMP. Failures that outside input can cause (configs, token ids,
// files) come back as Status; shape mismatches between a model and its own buffers are K2_CHECKs.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/config.h"
#include "core/json.h"
#include "core/status.h"
#include "engine/latent_cache.h"

namespace k2::engine {

// ---------------------------------------------------------------------------------------------------
// Model config: the fields of HF DeepseekV3Config / Kimi-K2 config.json. Reading a config.json
// (ModelConfigFromJson) follows transformers' DeepseekV3Config: absent fields take its defaults (the
// DeepSeek-V3 shape, listed by name), RoPE comes from `rope_scaling` or `rope_parameters` with
// transformers' precedence and is kept here in the normalized form below (rope_theta + rope_scaling,
// which is null for rope_type "default"). Foreign keys ("architectures", "quantization_config", ...)
// are ignored here; the fields below are typed and range-checked. Every variant is an explicit field
// (q_lora_rank null => q_proj path). The struct's own member defaults are k2gym's tiny-model values,
// used only by code that builds configs directly.
struct RopeScaling {
  std::optional<std::string> type;       // "yarn" (older files)
  std::optional<std::string> rope_type;  // "yarn" (newer files)
  double factor = 1.0;
  int64_t original_max_position_embeddings = 4096;  // absent in a file: max_position_embeddings (HF)
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  std::optional<double> mscale;          // absent/0 and mscale_all_dim absent/0: HF uses get_mscale(factor)
  std::optional<double> mscale_all_dim;  // absent/0: no softmax-scale correction
  std::optional<double> attention_factor;  // set: the cos/sin factor itself (overrides the mscale rule)
  std::optional<bool> truncate;            // false: fractional correction range (HF default true)
  template <class V> void Visit(V& v) {
    v("type", type, "scaling kind; only \"yarn\" is supported");
    v("rope_type", rope_type, "scaling kind (newer spelling); only \"yarn\" is supported");
    v("factor", factor, "context extension factor", {.min = 1.0});
    v("original_max_position_embeddings", original_max_position_embeddings, "pre-extension context",
      {.min = 1});
    v("beta_fast", beta_fast, "YaRN: rotations above which frequencies are kept", {.min = 0.0});
    v("beta_slow", beta_slow, "YaRN: rotations below which frequencies are interpolated", {.min = 0.0});
    v("mscale", mscale, "YaRN mscale (cos/sin factor numerator)", {.min = 0.0});
    v("mscale_all_dim", mscale_all_dim, "YaRN mscale for the softmax scale (null/0 = none)", {.min = 0.0});
    v("attention_factor", attention_factor, "YaRN cos/sin factor (null = from mscale/factor)", {.min = 0.0});
    v("truncate", truncate, "YaRN: floor/ceil the correction range (null = true)");
  }
};

struct ModelConfig {
  int64_t vocab_size = 256;
  int64_t hidden_size = 64;
  int64_t intermediate_size = 128;      // dense SwiGLU width (first_k_dense_replace layers)
  int64_t moe_intermediate_size = 32;   // routed expert width; shared expert = this * n_shared_experts
  int64_t num_hidden_layers = 2;
  int64_t num_attention_heads = 2;
  int64_t num_key_value_heads = 2;      // must equal num_attention_heads (MLA)
  int64_t n_shared_experts = 1;
  int64_t n_routed_experts = 4;
  double routed_scaling_factor = 1.0;
  int64_t kv_lora_rank = 16;
  std::optional<int64_t> q_lora_rank;   // null => q_proj
  int64_t qk_rope_head_dim = 8;
  int64_t qk_nope_head_dim = 16;
  int64_t v_head_dim = 16;
  std::string topk_method = "noaux_tc";
  int64_t n_group = 1;
  int64_t topk_group = 1;
  int64_t num_experts_per_tok = 2;
  int64_t first_k_dense_replace = 1;
  int64_t moe_layer_freq = 1;
  bool norm_topk_prob = true;
  std::string scoring_func = "sigmoid";
  std::string hidden_act = "silu";
  int64_t max_position_embeddings = 4096;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  std::optional<RopeScaling> rope_scaling;
  bool rope_interleave = true;          // HF default: q_pe/k_pe rotate adjacent pairs (released weights)
  bool tie_word_embeddings = false;
  bool attention_bias = false;
  double aux_loss_alpha = 0.001;        // kept for round-tripping; training uses its own alpha
  bool seq_aux = true;
  double initializer_range = 0.02;

  template <class V> void Visit(V& v) {
    v("vocab_size", vocab_size, "vocabulary size", {.min = 1});
    v("hidden_size", hidden_size, "model width D", {.min = 1});
    v("intermediate_size", intermediate_size, "dense SwiGLU width", {.min = 1});
    v("moe_intermediate_size", moe_intermediate_size, "routed expert width", {.min = 1});
    v("num_hidden_layers", num_hidden_layers, "decoder layers", {.min = 1});
    v("num_attention_heads", num_attention_heads, "attention heads H", {.min = 1});
    v("num_key_value_heads", num_key_value_heads, "must equal num_attention_heads", {.min = 1});
    v("n_shared_experts", n_shared_experts, "shared experts (one MLP of width moe_intermediate_size*n)",
      {.min = 0});
    v("n_routed_experts", n_routed_experts, "routed experts E", {.min = 1});
    v("routed_scaling_factor", routed_scaling_factor, "combine-weight multiplier", {.min = 0.0});
    v("kv_lora_rank", kv_lora_rank, "KV latent width", {.min = 1});
    v("q_lora_rank", q_lora_rank, "query latent width; null = plain q_proj", {.min = 1});
    v("qk_rope_head_dim", qk_rope_head_dim, "rotary dims per head (even)", {.min = 2});
    v("qk_nope_head_dim", qk_nope_head_dim, "non-rotary q/k dims per head", {.min = 1});
    v("v_head_dim", v_head_dim, "value dims per head", {.min = 1});
    v("topk_method", topk_method, "router selection", {.choices = {"noaux_tc"}});
    v("n_group", n_group, "expert groups for group-limited routing", {.min = 1});
    v("topk_group", topk_group, "groups kept per token", {.min = 1});
    v("num_experts_per_tok", num_experts_per_tok, "routed experts per token K", {.min = 1});
    v("first_k_dense_replace", first_k_dense_replace, "leading layers with a dense MLP", {.min = 0});
    v("moe_layer_freq", moe_layer_freq, "must be 1", {.min = 1, .max = 1});
    v("norm_topk_prob", norm_topk_prob, "normalize the chosen experts' scores");
    v("scoring_func", scoring_func, "router score", {.choices = {"sigmoid"}});
    v("hidden_act", hidden_act, "MLP activation", {.choices = {"silu"}});
    v("max_position_embeddings", max_position_embeddings, "longest supported sequence", {.min = 1});
    v("rms_norm_eps", rms_norm_eps, "RMSNorm epsilon", {.min = 0.0});
    v("rope_theta", rope_theta, "RoPE base", {.min = 1.0});
    v("rope_scaling", rope_scaling, "YaRN scaling or null");
    v("rope_interleave", rope_interleave, "rotate adjacent pairs (true, released weights) or halves");
    v("tie_word_embeddings", tie_word_embeddings, "must be false");
    v("attention_bias", attention_bias, "must be false");
    v("aux_loss_alpha", aux_loss_alpha, "legacy field; pretrain.aux_loss_alpha is used", {.min = 0.0});
    v("seq_aux", seq_aux, "legacy field (sequence-wise aux loss)");
    v("initializer_range", initializer_range, "std of the normal init", {.min = 0.0});
  }

  int64_t qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  bool is_moe_layer(int64_t l) const { return l >= first_k_dense_replace; }
  // Softmax scale: qk_head_dim^-0.5 * m^2 with m = 0.1*mscale_all_dim*ln(factor)+1 (HF rule: whenever
  // rope_scaling is yarn and mscale_all_dim != 0).
  double softmax_scale() const;
  // YaRN-adjusted inverse frequencies [qk_rope_head_dim/2] and HF's cos/sin factor.
  std::vector<double> inv_freq() const;
  double rope_attention_factor() const;
};

// Reads a config.json the way transformers' DeepseekV3Config does (see above) and validates the
// cross-field invariants. Errors name the file and field. `defaults_taken` (optional) receives
// "field=value" for each field that was absent and took DeepseekV3Config's default; LoadModelConfig
// prints them as one line on stderr when there are any.
Expected<ModelConfig> LoadModelConfig(const std::string& path, std::vector<std::string>* defaults_taken = nullptr);
Expected<ModelConfig> ModelConfigFromJson(const json& j, const std::string& source,
                                          std::vector<std::string>* defaults_taken = nullptr);
// The same without the cross-field validation (tests of the defaults; `model info` of odd files).
Expected<ModelConfig> ReadModelConfigFields(const json& j, const std::string& source,
                                            std::vector<std::string>* defaults_taken = nullptr);
// transformers' DeepseekV3Config() values (the DeepSeek-V3 671B shape, rope_theta 10000, no scaling).
ModelConfig DeepseekV3ConfigDefaults();
Status ValidateModelConfig(const ModelConfig& c, const std::string& source);
// HF-compatible config.json (with "architectures"): RoPE as transformers 5 writes it
// (`rope_parameters` with rope_theta and rope_type), plus `rope_theta`/`rope_scaling` that say the same
// for transformers 4 readers (transformers 5 gives `rope_scaling` precedence; the two agree).
json ModelConfigToJson(const ModelConfig& c);

// `quantization_config` of a released checkpoint: FP8 weights with one inverse scale per block
// (DeepSeek-V3 / Kimi-K2: quant_method "fp8", fmt "e4m3", weight_block_size [128, 128]).
struct Fp8Quantization {
  std::string fmt = "e4m3";
  int64_t block_rows = 128, block_cols = 128;
  std::string activation_scheme = "dynamic";
};
// nullopt when `config` has no quantization_config (or null). InvalidArgument naming
// source: quantization_config.FIELD for methods or formats other than fp8/e4m3, or a bad block size.
Expected<std::optional<Fp8Quantization>> ReadQuantizationConfig(const json& config, const std::string& source);

// Parameter and FLOP counts (`k2gym model info`).
struct ModelStats {
  int64_t total_params = 0;
  int64_t activated_params = 0;      // per token: dense parts + K routed + shared experts
  int64_t embedding_params = 0;      // embed_tokens (a lookup, not matmul FLOPs)
  double flops_per_token_fwd = 0;    // 2 * matmul params activated + attention at `context`
  double flops_per_token_train = 0;  // 3x forward
  int64_t context = 0;
};
ModelStats ComputeModelStats(const ModelConfig& c, int64_t context);

// ---------------------------------------------------------------------------------------------------
// One named parameter (HF tensor name). Row-major; a Linear weight is [out, in] like torch.nn.Linear.
template <class T>
struct Param {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<T> w;
  std::vector<T> g;       // same size as w; empty for non-trainable (the router correction bias)
  bool trainable = true;
  bool muon = false;      // 2-D hidden matrix: updated by Muon; else AdamW
  int64_t numel() const { return static_cast<int64_t>(w.size()); }
};

// A batch of B rows of T tokens: inputs, next-token targets and per-token loss weights
// (0 = ignored). All [B*T], row-major by row.
//
// Packing (SFT): a row may hold several documents. `segment_ids` (empty = one segment per row) gives
// each token's document; a query attends only to earlier-or-same keys OF ITS OWN SEGMENT, so a packed
// row computes exactly what the documents would compute run separately. `positions` (empty = 0..T-1 in
// every row) are the RoPE positions, e.g. restarting at 0 for each document; each must lie in
// [0, max_position_embeddings). The MoE sequence-wise aux loss still treats a row as one sequence.
struct Batch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> tokens;
  std::vector<int32_t> targets;
  std::vector<float> weights;
  std::vector<int32_t> positions;    // optional [B*T]
  std::vector<int32_t> segment_ids;  // optional [B*T]
  // Optional [B*T] (needs segment_ids), -1 = none: a segment whose keys this position also sees, all of
  // them — a shared prefix (RL: a group's prompt once, its continuations after it, each with positions
  // continuing the prompt's). Rules: contiguous segments, one parent per segment, the parent wholly
  // earlier in the row and without a parent of its own (ops::CheckSharedPrefix). Each continuation then
  // computes exactly what it would with its own copy of the prefix; the prefix's gradient is the sum.
  std::vector<int32_t> segment_parents;
};

struct ForwardOptions {
  double aux_loss_alpha = 0.0;  // sequence-wise balance loss (0 = aux-loss-free only)
  // > 0: ce_loss = sum_t w_t * (-log p_t) / loss_normalizer, and the weights may be any finite values,
  // negative or all zero (RL: w_t = advantage-derived coefficient; the normalizer is e.g. the number of
  // tokens of the whole global batch, so micro-batches sum to the full-batch gradient).
  // 0: ce_loss = weighted mean over tokens; weights must be >= 0 with a positive sum.
  double loss_normalizer = 0.0;
};

struct ForwardResult {
  double loss = 0;     // ce_loss + aux_loss
  double ce_loss = 0;  // sum_t w_t CE_t / (loss_normalizer if given, else weight_sum)
  double aux_loss = 0; // sum over MoE layers of the sequence-wise balance loss
  double weight_sum = 0;  // sum_t w_t (signed when a normalizer is given)
};

// The model. T = float for training and serving, double for finite-difference checks of the same code.
// Buffers are sized on the first Forward for a (B, T) shape and reused; a new shape reallocates.
template <class T>
class Model {
 public:
  // Random init: normal(0, initializer_range) for matrices, 1 for norms, 0 for the correction bias.
  static Expected<std::unique_ptr<Model>> Create(const ModelConfig& cfg, uint64_t seed);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const;
  std::vector<Param<T>>& params();
  const std::vector<Param<T>>& params() const;
  Param<T>* Find(const std::string& hf_name);

  // Forward with loss. Stores what Backward needs. Errors: token/target out of range, T too long,
  // bad shapes, bad positions/segment_ids, no positive weight (without a loss_normalizer), negative or
  // non-finite weights (non-finite always; negative only without a loss_normalizer).
  Expected<ForwardResult> Forward(const Batch& batch, const ForwardOptions& opt = {});
  // Accumulates d(loss)/d(param) into Param::g for the last Forward (call ZeroGrad between steps).
  void Backward();
  // Replaces the per-token loss weights of the last Forward before its Backward, with the rules of
  // Batch::weights under that Forward's options (signed weights only with a loss_normalizer). For
  // weights that depend on that Forward's own token_logprobs (RL: one pass instead of score + train).
  // The Forward's ForwardResult keeps the loss of the weights it was given. No allocation.
  Status SetLossWeights(std::span<const float> weights);
  void ZeroGrad();

  // [B*T, vocab] logits of the last Forward.
  const std::vector<T>& logits() const;
  // [B*T] log p(targets[t]) under the softmax of the last Forward's logits (T=1, no top-p/k): the
  // policy log-probs of RL objectives. 0 where the target is outside [0, vocab) (only allowed at
  // weight 0). Computed for every token whatever its weight.
  const std::vector<T>& token_logprobs() const;
  // [B*T] entropy (nats) of each token's next-token distribution of the last Forward (RL metric).
  const std::vector<T>& token_entropy() const;
  // Per layer and head: the largest scaled pre-softmax logit of the last Forward ([L][H]).
  const std::vector<std::vector<double>>& max_logits() const;
  // Per layer: tokens routed to each expert in the last Forward (empty vector for dense layers).
  const std::vector<std::vector<int64_t>>& expert_load() const;
  // Per layer: the chosen experts [B*T, num_experts_per_tok] of the last Forward (empty for dense layers).
  std::vector<int32_t> router_choice(int64_t layer) const;
  // A named intermediate of the last Forward ("layers.0.attn.q", "logits", ...), nullptr if unknown.
  const std::vector<T>* Intermediate(const std::string& name) const;
  std::vector<std::string> IntermediateNames() const;

  // Absorbed-MLA attention for layer `l` on the last Forward's q, c_kv and k_pe: returns the
  // per-head outputs [B*T, H*v_head_dim] that the naive route stored as "layers.l.attn.o".
  std::vector<T> AbsorbedAttention(int64_t layer) const;

  // QK-Clip of one layer's heads: those with max_logits[h] > tau are rescaled by gamma = tau/max (q_nope
  // and k_nope rows x sqrt(gamma), q_rope rows x gamma; the shared k_pe untouched). Returns the count.
  // No allocation.
  int64_t ClipQkHeads(int64_t layer, const std::vector<double>& max_logits, double tau);
  // Post-update QK-Clip (OptimizerConfig::qk_clip_measure = "post_update"): runs the last Forward's batch
  // again through the CURRENT weights layer by layer, clips each layer's heads whose max logit exceeds
  // tau and recomputes that layer before the next one sees it, so on this batch every head ends <= tau.
  // Costs about one forward (no lm_head, no loss). Leaves logits()/token_logprobs()/max_logits()/
  // expert_load() of the real Forward untouched; replayed_max_logits() holds the post-clip maxima.
  // Backward is invalid afterwards (needs a new Forward). Returns the number of clipped heads; 0 without
  // a Forward.
  int64_t ReplayClipQk(double tau);
  const std::vector<std::vector<double>>& replayed_max_logits() const;

  // Aux-loss-free balancing: bias_e += gamma * sign(mean_load - load_e) for every MoE layer, using the
  // loads of the last Forward.
  void UpdateRouterBias(double gamma);

  // Data parallelism (engine/dist): optional callbacks inside a step, run on the calling thread.
  //  grad_ready(i): during Backward, params()[i].g is final for this Backward (never written again
  //    before the next ZeroGrad), so its bucket can be all-reduced while backward continues. Called
  //    once per trainable parameter, in backward order (lm_head first, embed_tokens last).
  //  reduce_stats(max_logits, load): at the end of Forward, to turn this rank's per-head max logits
  //    and per-expert loads into the global ones (max / sum over ranks) before anyone reads them.
  //  reduce_layer_max(head_max): in ReplayClipQk, a layer's per-head maxima before they are compared
  //    with tau, so every rank clips the same heads.
  struct DistHooks {
    std::function<void(int64_t param_index)> grad_ready;
    std::function<void(std::vector<std::vector<double>>& max_logits, std::vector<std::vector<int64_t>>& load)>
        reduce_stats;
    std::function<void(std::vector<double>& head_max)> reduce_layer_max;
  };
  void SetDistHooks(DistHooks hooks);  // empty hooks = single process

  // Weights as safetensors with HF names (dtype "F32" or "BF16") and the config.json beside them.
  Status SaveSafetensors(const std::string& path, const std::string& dtype = "F32") const;
  // Loads every parameter by name; missing/extra tensors and shape mismatches are errors. A directory
  // loads as a Hugging Face checkpoint (LoadHfWeights: shards, FP8 per config.json).
  Status LoadSafetensors(const std::string& path);

  struct Impl;

 private:
  template <class U>
  friend class CachedForward;
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Generation's forward: the model's layer sequence on its absorbed route. Each call runs chunks of new
// tokens of many sequences (CachedChunk, each sequence at most once), writes their latents into a
// LatentCache and attends in latent space (q_nope W_UK against the cached c_kv, W_UV after) over each
// sequence's pages. Projections, norms, RoPE, router and MoE are the training forward's own code, so
// logits agree with Model::Forward to rounding (tested); the parameters are read in place, so training
// updates are seen by the next call.
// Buffers are sized at construction for max_rows rows per call (max_chunk per chunk, max_context per
// sequence); Forward never allocates. Thread safety: one thread at a time per object; objects over
// one model may run beside each other and beside nothing that writes the parameters.
template <class T>
class CachedForward {
 public:
  CachedForward(Model<T>* model, int64_t max_rows, int64_t max_chunk, int64_t max_context);
  ~CachedForward();
  CachedForward(const CachedForward&) = delete;
  CachedForward& operator=(const CachedForward&) = delete;

  // Logits of the requested rows, in chunk order, land in logits() [logit_rows(), vocab]. InvalidArgument
  // for an empty or too long chunk, an out-of-vocabulary token, a sequence longer than max_context or too
  // many rows; FailedPrecondition when a chunk's sequence is shorter than the chunk (append first).
  Status Forward(const std::vector<CachedChunk>& chunks, LatentCache* cache);
  const T* logits() const;
  int64_t logit_rows() const;
  int64_t max_rows() const;

 private:
  struct State;
  void Attend(int64_t layer, const std::vector<CachedChunk>& chunks, LatentCache& cache, int64_t rows);
  void AttendRow(int64_t layer, const LatentCache& cache, int32_t seq, int64_t row, T* scores);
  Model<T>* model_;
  std::unique_ptr<State> st_;
};

// Absorbed multi-head latent attention over contiguous latents (the computation of CachedForward's
// prefill chunks, for checks against the naive route).
// q: [Tq, H, dn+dr] (rope applied); ckv: [Tk, rkv] (normalized latent); kpe: [Tk, dr] (rope applied);
// w_kvb: kv_b_proj [H*(dn+dv), rkv]. Query i sits at position Tk-Tq+i and sees keys 0..that position.
// out: [Tq, H*dv]. Scores are q_nope·W_UK c_kv + q_pe·k_pe, times `scale`.
template <class T>
void MlaAbsorbedAttention(const T* q, const T* ckv, const T* kpe, const T* w_kvb, int64_t Tq, int64_t Tk,
                          int64_t H, int64_t dn, int64_t dr, int64_t dv, int64_t rkv, double scale, T* out);

// ---------------------------------------------------------------------------------------------------
// MuonClip (Muon for 2-D hidden matrices, AdamW for the rest) with QK-Clip, schedule and grad clipping.
struct OptimizerConfig {
  double lr = 2e-3;                  // peak learning rate (Muon and AdamW share it)
  std::string schedule = "cosine";   // after warmup: cosine | linear | constant
  int64_t warmup_steps = 0;
  int64_t total_steps = 1000;        // decay horizon
  double min_lr_ratio = 0.1;
  double weight_decay = 0.1;         // decoupled: W -= lr * wd * W (Muon and AdamW)
  double muon_momentum = 0.95;
  bool nesterov = true;
  int64_t ns_steps = 5;
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.95;
  double adam_eps = 1e-8;
  double adamw_lr_scale = 1.0;       // AdamW parameters (embeddings, lm_head, norms) step at lr * this
  double grad_clip = 1.0;            // global L2 norm; 0 = off
  bool qk_clip = true;
  double qk_clip_tau = 100.0;
  // Which max logits QK-Clip uses: "post_update" re-measures on the step's batch after the update (exact
  // bound on that batch, ~one extra forward), "step_forward" uses the step's own forward (K2 Algorithm 1,
  // free, can overshoot tau by one step's growth).
  std::string qk_clip_measure = "post_update";
  double bias_update_speed = 0.001;  // gamma of the aux-loss-free bias update; 0 = off
  template <class V> void Visit(V& v) {
    v("lr", lr, "peak learning rate", {.min = 0.0});
    v("schedule", schedule, "decay after warmup", {.choices = {"cosine", "linear", "constant"}});
    v("warmup_steps", warmup_steps, "linear warmup steps", {.min = 0});
    v("total_steps", total_steps, "decay horizon (steps)", {.min = 1});
    v("min_lr_ratio", min_lr_ratio, "final lr / peak lr", {.min = 0.0, .max = 1.0});
    v("weight_decay", weight_decay, "decoupled weight decay lambda", {.min = 0.0});
    v("muon_momentum", muon_momentum, "Muon momentum mu (sum form M = mu*M + G)", {.min = 0.0, .max = 1.0});
    v("nesterov", nesterov, "Muon uses G + mu*M");
    v("ns_steps", ns_steps, "Newton-Schulz iterations", {.min = 1, .max = 20});
    v("adam_beta1", adam_beta1, "AdamW beta1", {.min = 0.0, .max = 1.0});
    v("adam_beta2", adam_beta2, "AdamW beta2", {.min = 0.0, .max = 1.0});
    v("adam_eps", adam_eps, "AdamW epsilon", {.min = 0.0});
    v("adamw_lr_scale", adamw_lr_scale,
      "learning rate of the AdamW parameters (embeddings, lm_head, norms) relative to lr (0 = frozen)", {.min = 0.0});
    v("grad_clip", grad_clip, "global gradient-norm clip (0 = off)", {.min = 0.0});
    v("qk_clip", qk_clip, "apply QK-Clip after each step");
    v("qk_clip_tau", qk_clip_tau, "QK-Clip threshold tau on the max scaled logit", {.min = 0.0});
    v("qk_clip_measure", qk_clip_measure,
      "QK-Clip logits: post_update (re-measured after the update, exact) or step_forward (K2 Alg. 1)",
      {.choices = {"post_update", "step_forward"}});
    v("bias_update_speed", bias_update_speed, "aux-loss-free router bias step gamma", {.min = 0.0});
  }
};

double LearningRate(const OptimizerConfig& c, int64_t step);  // step counts from 0

struct StepStats {
  double lr = 0;
  double grad_norm = 0;       // before clipping
  int64_t clipped_heads = 0;  // QK-Clip rescaled heads this step
  double max_logit = 0;       // max over layers and heads of the last Forward
  double max_logit_after = 0; // post_update only: max after the clip on the step's batch (<= tau)
};

template <class T>
class Optimizer {
 public:
  Optimizer(Model<T>* model, OptimizerConfig cfg);
  // One update from the gradients in the model: clip, Muon/AdamW, router bias update (with the last
  // Forward's loads), QK-Clip (qk_clip_measure). `step` is the 0-based step index (schedule and bias
  // correction). Allocates nothing after construction. With post_update, Backward needs a new Forward.
  StepStats Step(int64_t step);
  const OptimizerConfig& config() const { return cfg_; }
  // Optimizer state by "<param>.m" / "<param>.v" (momentum / second moment), for checkpoints.
  std::vector<std::pair<std::string, std::vector<T>*>> StateTensors();

 private:
  Model<T>* model_;
  OptimizerConfig cfg_;
  std::vector<std::vector<T>> m_, v_;
  std::vector<T> ns_a_, ns_b_, ns_c_, ns_x_, ns_y_;  // Newton–Schulz scratch, sized once
};

// Newton–Schulz quintic orthogonalization of G [rows, cols] into out (same shape); exposed for tests.
template <class T>
void NewtonSchulz(const T* G, int64_t rows, int64_t cols, int64_t steps, T* out);

// QK-Clip on layer weights given per-head max logits; returns the number of heads rescaled.
template <class T>
int64_t ApplyQkClip(Model<T>* model, const std::vector<std::vector<double>>& max_logits, double tau);

// ---------------------------------------------------------------------------------------------------
// safetensors: https://github.com/huggingface/safetensors (8-byte LE header length, JSON header, data).
struct StTensor {
  std::string dtype;           // F32, F64, BF16, F16, F8_E4M3, I64, I32
  std::vector<int64_t> shape;
  std::string bytes;           // raw little-endian data
  int64_t numel() const;
};
struct StFile {
  std::map<std::string, StTensor> tensors;
  std::map<std::string, std::string> metadata;
};
Expected<StFile> ReadSafetensors(const std::string& path);
Status WriteSafetensors(const std::string& path, const StFile& f);  // atomic (temp + rename)
// Converts a tensor to doubles (any float dtype or integer); errors name the tensor and dtype.
Expected<std::vector<double>> StToDouble(const StTensor& t, const std::string& name);
StTensor StFromFloats(const std::vector<int64_t>& shape, const double* data, int64_t n,
                      const std::string& dtype);  // F32 | F64 | BF16 (round to nearest even)
int64_t StDtypeSize(const std::string& dtype);    // bytes per element; 0 for an unsupported dtype
// FP8 E4M3 (OCP "e4m3fn": bias 7, max 448, no infinities, 0x7f/0xff NaN) to float, and all 256 values.
float Fp8E4m3ToFloat(uint8_t b);
const std::array<float, 256>& Fp8E4m3Table();

// A header without the data: where each tensor lies in the data section. Parsing checks every shape
// product and byte count for 64-bit overflow and every range against `data_bytes` first.
struct StEntry {
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range within the data section
};
struct StHeader {
  std::map<std::string, StEntry> tensors;
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // file offset of the data section (8 + header length)
};
Expected<StHeader> ParseSafetensorsHeader(std::string_view header, uint64_t data_bytes, const std::string& path);
// Reads only the 8-byte length and the header of a file (for streaming loads of large shards).
Expected<StHeader> ReadSafetensorsHeader(const std::string& path);

// ---------------------------------------------------------------------------------------------------
// Hugging Face checkpoint directories (what DeepSeek-V3, Kimi-K2 and Moonlight ship): config.json plus
// model.safetensors, or shards listed by model.safetensors.index.json ({"weight_map": {name: file}}).
// Loading streams tensor by tensor (each read through mmap of its own byte range, unmapped after its
// conversion; pread where mmap fails) straight into the model's parameters, so peak memory is the
// model plus one tensor. FP8 E4M3 weights are dequantized on load with their `NAME_scale_inv`
// ("weight_scale_inv", one float per weight_block_size block, quantization_config). Tensors of layers
// >= num_hidden_layers (the multi-token-prediction layer of DeepSeek-V3 / Kimi-K2) are skipped and
// counted; any other unknown tensor, a missing one or a shape mismatch is an error naming it.
struct HfLoadStats {
  int64_t shards = 0;
  int64_t tensors = 0;        // parameters loaded
  int64_t fp8_tensors = 0;    // of which dequantized from FP8
  int64_t skipped = 0;        // MTP-layer tensors (and their scales) not used by this model
  std::map<std::string, int64_t> dtype_count;  // file dtype -> tensors
};
struct HfCheckpoint {
  ModelConfig config;
  std::optional<Fp8Quantization> quantization;
  std::vector<std::string> defaults_taken;  // "field=value" taken from DeepseekV3Config
  json raw;                                 // config.json as read
};
Expected<HfCheckpoint> ReadHfCheckpointConfig(const std::string& dir);
// Loads the weights of DIR into `model` (its config must match DIR's shapes).
template <class T>
Status LoadHfWeights(const std::string& dir, const std::optional<Fp8Quantization>& quant, Model<T>* model,
                     HfLoadStats* stats = nullptr);
// What a checkpoint directory holds, from its headers alone (`k2gym model info --ckpt`): per tensor
// class ("embedding", "lm_head", "attention", "norm", "router", "router_bias", "dense_mlp",
// "shared_experts", "routed_experts", "fp8_scales", "mtp" for layers >= num_hidden_layers, "other") the
// tensor count, elements, bytes on disk and dtypes.
struct TensorClassStats {
  int64_t tensors = 0, elements = 0, bytes = 0;
  std::map<std::string, int64_t> dtypes;  // dtype -> tensors
};
struct HfCheckpointSummary {
  int64_t shards = 0, bytes = 0;
  std::map<std::string, TensorClassStats> classes;
};
std::string TensorClassOf(const std::string& name, int64_t num_hidden_layers);
Expected<HfCheckpointSummary> SummarizeHfCheckpoint(const std::string& dir, int64_t num_hidden_layers);

// Writes DIR/config.json and the weights as shards of at most `max_shard_bytes` (a tensor larger than
// that gets a shard of its own) named model-0000K-of-0000N.safetensors, plus
// model.safetensors.index.json ({"metadata": {"total_size"}, "weight_map"}); a single shard is written
// as model.safetensors without an index. dtype F32 or BF16 (the router correction bias stays F32).
// One shard is held in memory at a time.
template <class T>
Status SaveHfCheckpoint(const Model<T>& model, const std::string& dir, const std::string& dtype = "BF16",
                        int64_t max_shard_bytes = int64_t{5} << 30);

// ---------------------------------------------------------------------------------------------------
// Training checkpoints: a directory with config.json, model.safetensors (F32), optimizer.safetensors
// and trainer_state.json. Written into DIR.tmp then renamed, so a crash leaves the old one intact.
struct TrainerState {
  int64_t step = 0;                  // steps completed
  int64_t data_position = 0;         // sequences consumed
  std::array<uint64_t, 4> rng{};     // data sampler RNG
  json extra = json::object();
};
Status SaveCheckpoint(const std::string& dir, const Model<float>& model, Optimizer<float>& opt,
                      const TrainerState& st);
Status LoadCheckpoint(const std::string& dir, Model<float>* model, Optimizer<float>* opt, TrainerState* st);

}  // namespace k2::engine
