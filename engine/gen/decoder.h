// The cached forward of the generator: runs chunks of new tokens of many sequences through a live
// Model<float>'s weights (read in place by HF name), writes their MLA latents into the paged KvCache
// and attends in the absorbed form (q_nope·W_UK in latent space, W_UV after) over each sequence's pages.
//
// Buffers are sized at construction for max_rows rows per call and the longest context; Forward never
// allocates. Thread safety: one thread at a time (the generator's loop). Routing, norms and RoPE are
// the same ops as Model::Forward, so logits agree with the full forward to fp32 rounding (tested).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "core/status.h"
#include "engine/engine.h"
#include "engine/gen/kv_cache.h"

namespace k2::gen {

class CachedDecoder {
 public:
  struct Chunk {
    KvCache::SeqId seq = -1;
    const int32_t* tokens = nullptr;  // the last n tokens of the sequence (already Appended in the cache)
    int64_t n = 0;
    bool all_logits = false;          // logits for every row of the chunk, else for its last row only
  };

  // max_rows: rows (tokens) per Forward; max_context: longest sequence; max_chunk: longest chunk.
  CachedDecoder(engine::Model<float>* model, KvCache* kv, int64_t max_rows, int64_t max_chunk, int64_t max_context);

  // Runs the chunks (each sequence at most once per call). Logits of the requested rows, in chunk
  // order, land in logits() [logit_rows(), vocab]. InvalidArgument for an out-of-vocabulary token or
  // too many rows; FailedPrecondition when a chunk's sequence does not end with its n tokens.
  Status Forward(const std::vector<Chunk>& chunks);
  const float* logits() const { return logits_.data(); }
  int64_t logit_rows() const { return logit_rows_; }
  int64_t max_rows() const { return max_rows_; }

 private:
  struct Mlp {
    const float* gate = nullptr;  // [W, D]
    const float* up = nullptr;
    const float* down = nullptr;  // [D, W]
    int64_t width = 0;
  };
  struct Layer {
    engine::Param<float>* in_norm = nullptr;
    engine::Param<float>* q_a = nullptr;
    engine::Param<float>* q_a_norm = nullptr;
    engine::Param<float>* q_b = nullptr;
    engine::Param<float>* q = nullptr;
    engine::Param<float>* kv_a = nullptr;
    engine::Param<float>* kv_a_norm = nullptr;
    engine::Param<float>* kv_b = nullptr;
    engine::Param<float>* o = nullptr;
    engine::Param<float>* post_norm = nullptr;
    bool moe = false;
    std::vector<engine::Param<float>*> dense;     // gate, up, down
    engine::Param<float>* router = nullptr;
    engine::Param<float>* bias = nullptr;
    std::vector<std::vector<engine::Param<float>*>> experts;
    std::vector<engine::Param<float>*> shared;
  };
  void RunMlp(const std::vector<engine::Param<float>*>& m, const float* x, int64_t N, float* y);
  void Attention(int64_t l, const std::vector<Chunk>& chunks, int64_t N);
  void DecodeRowAttention(int64_t l, KvCache::SeqId seq, int64_t row, float* S);
  void Moe(int64_t l, int64_t N);

  engine::Model<float>* model_;
  KvCache* kv_;
  engine::ModelConfig cfg_;
  int64_t max_rows_, max_chunk_, max_context_;
  std::vector<Layer> layers_;
  engine::Param<float>* embed_ = nullptr;
  engine::Param<float>* final_norm_ = nullptr;
  engine::Param<float>* lm_head_ = nullptr;
  std::vector<double> inv_freq_;
  double attn_factor_ = 1, scale_ = 1;

  // Scratch, sized at construction. N = max_rows.
  std::vector<float> x_, xn_, rstd_, qa_, qa_n_, q_, kva_, ckv_, qlat_, olat_, o_;  // [N, ...]
  std::vector<float> g_, u_, a_;                                              // [N, max MLP width]
  std::vector<float> rlog_, sb_, scores_;                                     // [N, E]
  std::vector<int32_t> idx_;                                                  // [N, K]
  std::vector<float> wts_;                                                    // [N, K]
  std::vector<int64_t> cnt_, offs_, fill_, row_of_slot_;
  std::vector<float> xe_, ye_, ffn_;                                          // [N*K, D], [N*K, D], [N, D]
  std::vector<float> keys_;                                                   // [max_context, rkv+dr]
  std::vector<float> s_;                                                      // [max_chunk*H, max_context]
  std::vector<int32_t> pos_;                                                  // [N]
  std::vector<int64_t> logit_src_;                                            // rows whose logits are wanted
  std::vector<float> hsel_, logits_;                                          // [N, D], [N, V]
  int threads_ = 1;                                                           // OpenMP threads at construction
  std::vector<float> dec_s_;                                                  // [threads, max_context]
  std::vector<std::pair<KvCache::SeqId, int64_t>> decode_rows_;               // (sequence, batch row)
  int64_t logit_rows_ = 0;
};

}  // namespace k2::gen
