// The rollout generator: a thread-safe continuous-batching Generator over a live engine::Model<float>
// (weights read in place, never copied), with sessions that keep their KV pages between calls, forks
// for n samples sharing prefix pages, and sampling that returns both logprob streams RL needs.
//
// Model: Submit() from any thread queues a request and returns a future; one background thread runs
// steps: admit queued requests (allocate KV pages), build one batch of rows — prefill chunks of new
// sequences (at most prefill_chunk tokens each, max_batch_tokens in all) plus one decode row per
// running sequence — run the cached forward (MLA in the absorbed form over the paged latent cache),
// sample, and retire finished sequences (their futures are fulfilled, their pages freed unless a
// session keeps them). Finished sequences leave and new ones join between any two steps.
//
// Weights: the generator holds a Model<float>* and reads Param::w at every step. The caller must not
// update weights while requests are in flight (call WaitIdle() before an optimizer step); the KV of
// live sessions was computed with the old weights — call EndAllSessions() after an update.
// Determinism: a sequence's samples depend only on its seed and its logits; greedy (temperature 0) and
// seeded sampling reproduce exactly for the same batch composition, and to fp32 rounding otherwise.
// Failure: bad requests (token outside the vocabulary, context longer than the model's
// max_position_embeddings, unknown session for fork) fulfil the future with an error Status; a request
// that can never fit the KV pool fails with ResourceExhausted; nothing throws.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "engine/engine.h"

namespace k2::text {
class Tokenizer;
}

namespace k2::gen {

struct SamplingParams {
  double temperature = 1.0;       // 0 = greedy (argmax; ties -> lowest id)
  double top_p = 1.0;             // nucleus mass in (0, 1]
  int64_t top_k = 0;              // 0 = off
  uint64_t seed = 0;              // sample i of a request uses Rng(seed).Fork(i)
  int64_t max_new_tokens = 256;
  std::vector<int32_t> stop_tokens;        // generation ends after emitting one (it is kept)
  std::vector<std::string> stop_strings;   // ends when the decoded output contains one (needs a tokenizer)
  // Logit processing before temperature/top-k/top-p (OpenAI semantics): bias added per id; the
  // frequency penalty times the id's count so far in this sample and the presence penalty once if it
  // occurred are subtracted.
  std::vector<std::pair<int32_t, float>> logit_bias;
  double frequency_penalty = 0, presence_penalty = 0;
  // >= 0: each token also gets its logprob and the `top_logprobs` most likely ids under the processed
  // logits at temperature 1 (what an API reports; Sample::api_logprobs / top_logprobs).
  int64_t top_logprobs = -1;
};

// Restricts which ids may come next (constrained decoding: a grammar, a JSON Schema). One instance per
// sample; called on the loop thread, so it must be quick.
class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // Sets logits[id] = -inf for every id in [0, V) that may not come next. It must leave at least one id.
  virtual void Mask(float* logits, int64_t V) = 0;
  // The id sampled (always one Mask allowed).
  virtual void Advance(int32_t token) = 0;
};

struct GenerateRequest {
  // Tokens to append: the whole prompt for a one-shot request, or the new part of a session's stream.
  std::vector<int32_t> tokens;
  SamplingParams sampling;
  int64_t n = 1;  // samples; n > 1 forks the prompt's pages (prefix shared, copy-on-write)
  // Non-empty: the sequence lives on after this request (n must be 1). Its stream is everything fed
  // plus everything generated; the next request on the session appends `tokens` after it without
  // recomputing the prefix.
  std::string session;
  // Streaming hook: called on the generator's loop thread right after each sampled token (sample
  // index, token id). It must be quick and must not call into the Generator (queue the token instead).
  std::function<void(int64_t sample, int32_t token)> on_token;
  // Set by another thread to stop a request without a session: waiting, it fails with Cancelled;
  // running, its samples end with finish_reason "cancelled" and their pages are freed at the next step.
  std::shared_ptr<std::atomic<bool>> cancel;
  // When set, called once per sample to constrain its tokens.
  std::function<std::unique_ptr<TokenConstraint>()> constraint;
};

struct Sample {
  std::vector<int32_t> tokens;          // generated ids (a stop token included)
  std::vector<float> logprobs;          // per token, under the sampling distribution (0 for greedy)
  std::vector<float> policy_logprobs;   // per token, log_softmax of the unmodified logits (T=1)
  std::vector<float> api_logprobs;      // when top_logprobs >= 0: log_softmax of the processed logits
  std::vector<std::vector<std::pair<int32_t, float>>> top_logprobs;  // ditto, most likely first
  std::string finish_reason;            // "stop" | "length" (max_new_tokens or context) | "cancelled"
  std::string matched_stop;             // the stop string that ended it, "" otherwise
};

struct Completion {
  std::vector<Sample> samples;  // n of them, in sample order
  int64_t prompt_tokens = 0;    // tokens computed for this request's prompt (prefill)
  int64_t cached_tokens = 0;    // session tokens reused from the cache
};

struct GeneratorOptions {
  int64_t page_size = 16;
  int64_t num_pages = 0;               // 0: max_sequences * pages for max_context / 2 ... see docs
  int64_t max_sequences = 64;          // sequences in the KV table (sessions + running samples)
  int64_t max_batch_sequences = 32;    // running sequences decoded per step
  int64_t max_batch_tokens = 512;      // rows per step (prefill + decode)
  int64_t prefill_chunk = 256;         // prefill tokens of one sequence per step
  int64_t max_context = 0;             // 0 = the model's max_position_embeddings
  // For stop strings (not owned). Also bounds sampling: ids at or past the tokenizer's vocab_size (a
  // checkpoint's padded vocabulary) are never sampled.
  const text::Tokenizer* tokenizer = nullptr;
};

struct GeneratorStats {
  int64_t steps = 0, prefill_tokens = 0, decode_tokens = 0, requests = 0, running = 0, queued = 0;
  int64_t sessions = 0, free_pages = 0, total_pages = 0;
  int64_t kv_bytes_per_token = 0;
};

class Generator {
 public:
  // Plans the KV pool (allocated here, never in the loop) and starts the step thread.
  static Expected<std::unique_ptr<Generator>> Create(engine::Model<float>* model, const GeneratorOptions& opt);
  ~Generator();  // stops the loop: pending futures get Cancelled
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;

  // Thread-safe. Requests of one session run in submission order.
  std::future<Expected<Completion>> Submit(GenerateRequest req);
  // The blocking form.
  Expected<Completion> Generate(GenerateRequest req);

  // Makes `to` a session sharing all of `from`'s pages (e.g. K rollouts of one prompt). Thread-safe;
  // waits for `from`'s queued requests. NotFound / AlreadyExists.
  Status ForkSession(const std::string& from, const std::string& to);
  // Frees the session's pages (after its queued requests). Unknown sessions are ignored.
  void EndSession(const std::string& session);
  void EndAllSessions();
  // Tokens in the session's stream (fed + generated), or NotFound.
  Expected<int64_t> SessionLength(const std::string& session);
  // Blocks until nothing is queued or running.
  void WaitIdle();

  GeneratorStats stats() const;
  const engine::ModelConfig& model_config() const;

  struct Impl;

 private:
  explicit Generator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---- sampling (exposed for tests) -----------------------------------------------------------------
// Picks a token from logits [V] with `p` and uniform `u` in [0,1); returns the id and fills the
// logprob under the sampling distribution and under log_softmax(logits). Scratch: [V] floats + ids.
struct SampleScratch {
  std::vector<float> probs;
  std::vector<int32_t> order;
};
int32_t SampleToken(const float* logits, int64_t V, const SamplingParams& p, double u, SampleScratch* scratch,
                    float* logprob, float* policy_logprob);

}  // namespace k2::gen
