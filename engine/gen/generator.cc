// The continuous-batching Generator: request queue, admission with a KV page budget, one step loop
// (decode rows of running samples + prefill chunks of new prompts), sampling, sessions and forks.
// Everything that touches the KvCache or the decoder runs on the loop thread.
#include "engine/gen/generator.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <numeric>
#include <set>
#include <thread>

#include "core/determinism.h"
#include "core/rng.h"
#include "engine/gen/decoder.h"
#include "engine/gen/kv_cache.h"
#include "engine/text/tokenizer.h"

namespace k2::gen {

using I = int64_t;

// ---- sampling -------------------------------------------------------------------------------------

int32_t SampleToken(const float* logits, I V, const SamplingParams& p, double u, SampleScratch* sc, float* logprob,
                    float* policy_logprob) {
  // Policy distribution: log_softmax of the raw logits, in double.
  double m = -std::numeric_limits<double>::infinity();
  I arg = 0;
  for (I i = 0; i < V; ++i)
    if (logits[i] > m) m = logits[i], arg = i;
  double z = 0;
  for (I i = 0; i < V; ++i) z += std::exp(double(logits[i]) - m);
  const double lse = m + std::log(z);
  if (p.temperature <= 0) {
    *logprob = 0.0f;
    *policy_logprob = static_cast<float>(double(logits[arg]) - lse);
    return static_cast<int32_t>(arg);
  }
  // Sampling distribution: softmax(logits / T), then top-k, then top-p, renormalized.
  sc->probs.resize(static_cast<size_t>(V));
  double zt = 0;
  const double invT = 1.0 / p.temperature;
  for (I i = 0; i < V; ++i) zt += (sc->probs[i] = static_cast<float>(std::exp((double(logits[i]) - m) * invT)));
  for (I i = 0; i < V; ++i) sc->probs[i] = static_cast<float>(sc->probs[i] / zt);
  I keep = V;
  const bool filter = (p.top_k > 0 && p.top_k < V) || p.top_p < 1.0;
  if (filter) {
    sc->order.resize(static_cast<size_t>(V));
    std::iota(sc->order.begin(), sc->order.end(), 0);
    auto by_prob = [&](int32_t a, int32_t b) { return sc->probs[a] != sc->probs[b] ? sc->probs[a] > sc->probs[b] : a < b; };
    if (p.top_k > 0 && p.top_k < V) {
      keep = p.top_k;
      std::partial_sort(sc->order.begin(), sc->order.begin() + keep, sc->order.end(), by_prob);
    } else {
      std::sort(sc->order.begin(), sc->order.end(), by_prob);
    }
    if (p.top_p < 1.0) {
      double cum = 0;
      I k = 0;
      while (k < keep) {
        cum += sc->probs[sc->order[k]];
        ++k;
        if (cum >= p.top_p) break;  // smallest prefix with mass >= top_p
      }
      keep = std::max<I>(k, 1);
    }
  }
  double mass = 0;
  if (filter)
    for (I k = 0; k < keep; ++k) mass += sc->probs[sc->order[k]];
  else
    mass = 1.0;
  const double target = u * mass;
  double cum = 0;
  I pick = -1;
  for (I k = 0; k < keep; ++k) {
    const I id = filter ? sc->order[k] : k;
    cum += sc->probs[id];
    if (cum > target) {
      pick = id;
      break;
    }
  }
  if (pick < 0) {  // rounding left u*mass beyond the sum: take the last kept token with mass
    for (I k = keep - 1; k >= 0; --k) {
      const I id = filter ? sc->order[k] : k;
      if (sc->probs[id] > 0) {
        pick = id;
        break;
      }
    }
    if (pick < 0) pick = arg;
  }
  *logprob = static_cast<float>(std::log(double(sc->probs[pick]) / mass));
  *policy_logprob = static_cast<float>(double(logits[pick]) - lse);
  return static_cast<int32_t>(pick);
}

// ---- generator ------------------------------------------------------------------------------------

namespace {

struct Session {
  KvCache::SeqId seq = -1;
  std::vector<int32_t> pending;  // generated but not yet fed (the last sampled token)
  bool busy = false;             // a job is running on it
};

enum class Kind { kGenerate, kFork, kEnd, kEndAll, kLength };

struct Job {
  Kind kind = Kind::kGenerate;
  GenerateRequest req;
  std::string from, to;  // fork / end
  std::promise<Expected<Completion>> done;
  std::promise<Status> cmd_done;
  std::promise<Expected<int64_t>> len_done;
  size_t max_stop_len = 0;
  // Running state.
  Completion out;
  int64_t live_samples = 0;
  int64_t max_new = 0;
};

struct Running {
  Job* job = nullptr;
  int64_t sample = 0;
  KvCache::SeqId seq = -1;
  std::vector<int32_t> feed;  // prefill tokens (prompt) still to feed, from `fed`
  size_t fed = 0;
  bool prefilling = true;
  int32_t last = -1;          // sampled, not yet fed
  Rng rng;
  std::string text;           // decoded output so far (stop strings)
  std::map<int32_t, int> counts;  // generated ids so far (frequency/presence penalties only)
  std::unique_ptr<TokenConstraint> constraint;
  int64_t reserved_pages = 0; // pages it may still take from the pool (admission budget)
};

}  // namespace

struct Generator::Impl {
  engine::Model<float>* model = nullptr;
  GeneratorOptions opt;
  engine::ModelConfig cfg;
  std::optional<KvCache> kv;
  std::unique_ptr<CachedDecoder> dec;
  I max_context = 0;

  mutable std::mutex mu;
  std::condition_variable work_cv, idle_cv;
  std::deque<std::unique_ptr<Job>> queue;
  bool stop = false;
  std::thread loop;
  GeneratorStats st;

  // Loop-thread state.
  std::map<std::string, Session> sessions;
  std::vector<std::unique_ptr<Job>> active;
  std::vector<std::unique_ptr<Running>> running;
  SampleScratch scratch;
  std::vector<float> adjusted;     // processed logits of one row
  std::vector<int32_t> top_order;  // top_logprobs selection
  I sample_vocab = 0;              // ids >= this (the tokenizer's size) are never sampled
  std::vector<CachedDecoder::Chunk> chunks;
  std::vector<Running*> chunk_owner;

  int64_t ReservedPages() const {
    int64_t r = 0;
    for (auto& x : running) r += x->reserved_pages;
    return r;
  }

  // Appends n tokens to a running sample's sequence, charging its reservation.
  Status Grow(Running& r, I n) {
    const int64_t before = kv->free_pages();
    K2_RETURN_IF_ERROR(kv->Append(r.seq, n));
    r.reserved_pages = std::max<int64_t>(0, r.reserved_pages - (before - kv->free_pages()));
    return Status::Ok();
  }

  void Finish(Running& r, const std::string& reason, const std::string& stop_str = "") {
    Job& j = *r.job;
    Sample& s = j.out.samples[static_cast<size_t>(r.sample)];
    s.finish_reason = reason;
    s.matched_stop = stop_str;
    if (!j.req.session.empty()) {
      Session& ses = sessions[j.req.session];
      ses.seq = r.seq;
      ses.pending.clear();
      if (r.last >= 0) ses.pending.push_back(r.last);
      ses.busy = false;
    } else {
      kv->Free(r.seq);
    }
    r.seq = -1;
    if (--j.live_samples == 0) {
      j.done.set_value(std::move(j.out));
      for (auto it = active.begin(); it != active.end(); ++it)
        if (it->get() == &j) {
          active.erase(it);
          break;
        }
    }
  }

  void FailJob(Job& j, Status s) {
    if (j.kind == Kind::kGenerate) j.done.set_value(std::move(s));
    else if (j.kind == Kind::kLength) j.len_done.set_value(std::move(s));
    else j.cmd_done.set_value(std::move(s));
  }

  static std::set<std::string> Touches(const Job& j) {
    if (j.kind == Kind::kGenerate) return j.req.session.empty() ? std::set<std::string>{} : std::set<std::string>{j.req.session};
    if (j.kind == Kind::kEndAll) return {"*"};
    if (j.kind == Kind::kLength) return {j.from};
    return {j.from, j.to};
  }

  // Tries to start a queued job on the loop thread. Returns false when it must wait (pages, busy session).
  // On a permanent error it fulfils the job's promise and returns true.
  bool Admit(std::unique_ptr<Job>& jp) {
    Job& j = *jp;
    if (j.kind == Kind::kGenerate && j.req.cancel && j.req.cancel->load() && j.req.session.empty()) {
      FailJob(j, Cancelled("generator: request cancelled before it started"));
      return true;
    }
    if (j.kind == Kind::kEndAll) {
      for (auto& [name, s] : sessions)
        if (s.busy) return false;
      for (auto& [name, s] : sessions) kv->Free(s.seq);
      sessions.clear();
      j.cmd_done.set_value(Status::Ok());
      return true;
    }
    if (j.kind == Kind::kLength) {
      auto it = sessions.find(j.from);
      if (it == sessions.end()) {
        j.len_done.set_value(NotFound("generator: no session '" + j.from + "'"));
      } else {
        if (it->second.busy) return false;
        j.len_done.set_value(kv->length(it->second.seq) + static_cast<int64_t>(it->second.pending.size()));
      }
      return true;
    }
    if (j.kind == Kind::kEnd) {
      auto it = sessions.find(j.from);
      if (it != sessions.end()) {
        if (it->second.busy) return false;
        kv->Free(it->second.seq);
        sessions.erase(it);
      }
      j.cmd_done.set_value(Status::Ok());
      return true;
    }
    if (j.kind == Kind::kFork) {
      auto it = sessions.find(j.from);
      if (it == sessions.end()) {
        j.cmd_done.set_value(NotFound("generator: no session '" + j.from + "' to fork"));
        return true;
      }
      if (it->second.busy) return false;
      if (sessions.count(j.to)) {
        j.cmd_done.set_value(AlreadyExists("generator: session '" + j.to + "' exists"));
        return true;
      }
      auto child = kv->Fork(it->second.seq);
      if (!child.ok()) {
        if (!running.empty()) return false;
        j.cmd_done.set_value(child.status());
        return true;
      }
      Session s;
      s.seq = *child;
      s.pending = it->second.pending;
      sessions[j.to] = std::move(s);
      j.cmd_done.set_value(Status::Ok());
      return true;
    }
    // Generate.
    GenerateRequest& rq = j.req;
    Session* ses = nullptr;
    if (!rq.session.empty()) {
      auto it = sessions.find(rq.session);
      if (it != sessions.end()) {
        if (it->second.busy) return false;
        ses = &it->second;
      }
    }
    const I have = ses ? kv->length(ses->seq) : 0;
    std::vector<int32_t> feed = ses ? ses->pending : std::vector<int32_t>{};
    feed.insert(feed.end(), rq.tokens.begin(), rq.tokens.end());
    if (feed.empty()) {
      FailJob(j, InvalidArgument("generator: request has no tokens to condition on"));
      return true;
    }
    if (have + static_cast<I>(feed.size()) > max_context) {
      FailJob(j, InvalidArgument("generator: context of " + std::to_string(have + feed.size()) +
                                 " tokens exceeds max_context " + std::to_string(max_context)));
      return true;
    }
    j.max_new = std::min<I>(rq.sampling.max_new_tokens, max_context - have - static_cast<I>(feed.size()));
    // Page budget: the prompt now, plus worst-case growth of each sample (and one copy-on-write page).
    const I prompt_len = have + static_cast<I>(feed.size());
    const int64_t prompt_pages = kv->PagesFor(prompt_len) - kv->PagesFor(have) + 1;
    const int64_t per_sample = kv->PagesFor(prompt_len + j.max_new) - kv->PagesFor(prompt_len) + 1;
    const int64_t need = prompt_pages + rq.n * per_sample;
    int64_t pending_forks = 0;
    for (auto& x : running)
      if (x->prefilling) pending_forks += x->job->req.n - 1;
    const bool seq_slots = kv->live_sequences() + pending_forks + (ses ? 0 : 1) + (rq.n - 1) <= opt.max_sequences;
    if (need > kv->free_pages() - ReservedPages() || !seq_slots ||
        static_cast<I>(running.size()) + pending_forks + rq.n > opt.max_batch_sequences) {
      if (running.empty() && active.empty()) {
        FailJob(j, ResourceExhausted("generator: request needs " + std::to_string(need) + " KV pages and " +
                                     std::to_string(rq.n) + " sequences; the pool has " +
                                     std::to_string(kv->free_pages()) + " free pages"));
        return true;
      }
      return false;
    }
    KvCache::SeqId seq;
    if (ses) {
      seq = ses->seq;
      ses->busy = true;
      ses->pending.clear();
    } else {
      auto s = kv->NewSequence();
      if (!s.ok()) {
        FailJob(j, s.status());
        return true;
      }
      seq = *s;
      if (!rq.session.empty()) {
        Session ns;
        ns.seq = seq;
        ns.busy = true;
        sessions[rq.session] = ns;
      }
    }
    j.out.samples.assign(static_cast<size_t>(rq.n), Sample{});
    for (auto& ss : rq.sampling.stop_strings) j.max_stop_len = std::max(j.max_stop_len, ss.size());
    j.out.cached_tokens = have;
    j.out.prompt_tokens = static_cast<I>(feed.size());
    j.live_samples = rq.n;
    auto r = std::make_unique<Running>();
    r->job = &j;
    r->seq = seq;
    r->feed = std::move(feed);
    r->rng = Rng(rq.sampling.seed).Fork(0);
    r->reserved_pages = prompt_pages + rq.n * per_sample;
    running.push_back(std::move(r));
    active.push_back(std::move(jp));
    return true;
  }

  bool CheckStop(Running& r, int32_t tok) {
    Job& j = *r.job;
    Sample& s = j.out.samples[static_cast<size_t>(r.sample)];
    const SamplingParams& p = j.req.sampling;
    if (std::find(p.stop_tokens.begin(), p.stop_tokens.end(), tok) != p.stop_tokens.end()) {
      Finish(r, "stop");
      return true;
    }
    if (!p.stop_strings.empty() && opt.tokenizer) {
      const std::string& b = opt.tokenizer->TokenBytes(tok);
      const size_t from = r.text.size() > j.max_stop_len ? r.text.size() - j.max_stop_len : 0;
      r.text += b;
      for (const std::string& ss : p.stop_strings)
        if (!ss.empty() && r.text.find(ss, from) != std::string::npos) {
          Finish(r, "stop", ss);
          return true;
        }
    }
    if (static_cast<I>(s.tokens.size()) >= j.max_new) {
      Finish(r, "length");
      return true;
    }
    return false;
  }

  // Samples one token for r from logits row `lg`; false when the sample finished.
  bool Emit(Running& r, const float* lg) {
    Job& j = *r.job;
    Sample& s = j.out.samples[static_cast<size_t>(r.sample)];
    const SamplingParams& p = j.req.sampling;
    const I V = cfg.vocab_size;
    float lp = 0, plp = 0;
    const bool penalties = p.frequency_penalty != 0 || p.presence_penalty != 0;
    const float* use = lg;
    if (sample_vocab < V || !p.logit_bias.empty() || penalties || r.constraint || p.top_logprobs >= 0) {
      adjusted.assign(lg, lg + V);
      const float ninf = -std::numeric_limits<float>::infinity();
      for (I i = sample_vocab; i < V; ++i) adjusted[i] = ninf;
      for (auto [id, b] : p.logit_bias)
        if (id >= 0 && id < sample_vocab) adjusted[id] += b;
      if (penalties)
        for (auto [id, c] : r.counts)
          adjusted[id] -= static_cast<float>(c * p.frequency_penalty + (c > 0 ? p.presence_penalty : 0.0));
      if (r.constraint) r.constraint->Mask(adjusted.data(), V);
      bool any = false;
      for (I i = 0; i < sample_vocab && !any; ++i) any = adjusted[i] > ninf;
      if (!any) {  // a bias of -inf on every id, or a constraint with no way on: the sample ends here
        r.last = -1;
        Finish(r, "stop");
        return false;
      }
      use = adjusted.data();
    }
    const int32_t tok = SampleToken(use, V, p, r.rng.Uniform(), &scratch, &lp, &plp);
    if (use != lg) {  // the policy logprob is under the unmodified logits, as the trainer computes it
      double m = -std::numeric_limits<double>::infinity(), z = 0;
      for (I i = 0; i < V; ++i) m = std::max<double>(m, lg[i]);
      for (I i = 0; i < V; ++i) z += std::exp(double(lg[i]) - m);
      plp = static_cast<float>(double(lg[tok]) - m - std::log(z));
    }
    if (p.top_logprobs >= 0) {
      double m = -std::numeric_limits<double>::infinity(), z = 0;
      for (I i = 0; i < V; ++i) m = std::max<double>(m, use[i]);
      for (I i = 0; i < V; ++i) z += std::exp(double(use[i]) - m);
      const double lse = m + std::log(z);
      s.api_logprobs.push_back(static_cast<float>(double(use[tok]) - lse));
      const I k = std::min<I>(p.top_logprobs, sample_vocab);
      top_order.resize(static_cast<size_t>(sample_vocab));
      std::iota(top_order.begin(), top_order.end(), 0);
      std::partial_sort(top_order.begin(), top_order.begin() + k, top_order.end(),
                        [&](int32_t a, int32_t b) { return use[a] != use[b] ? use[a] > use[b] : a < b; });
      std::vector<std::pair<int32_t, float>> top;
      for (I i = 0; i < k; ++i)
        if (use[top_order[i]] > -std::numeric_limits<float>::infinity())
          top.push_back({top_order[i], static_cast<float>(double(use[top_order[i]]) - lse)});
      s.top_logprobs.push_back(std::move(top));
    }
    if (penalties) ++r.counts[tok];
    if (r.constraint) r.constraint->Advance(tok);
    if (s.tokens.empty()) {  // sized once, so the decode loop does not reallocate the outputs
      s.tokens.reserve(static_cast<size_t>(j.max_new));
      s.logprobs.reserve(static_cast<size_t>(j.max_new));
      s.policy_logprobs.reserve(static_cast<size_t>(j.max_new));
    }
    s.tokens.push_back(tok);
    s.logprobs.push_back(lp);
    s.policy_logprobs.push_back(plp);
    r.last = tok;
    if (j.req.on_token) j.req.on_token(r.sample, tok);
    return !CheckStop(r, tok);
  }

  void Step() {
    // Cancelled requests leave before the batch is built (their pages return to the pool now).
    for (auto& r : running) {
      Job& j = *r->job;
      if (!j.req.cancel || !j.req.cancel->load() || !j.req.session.empty()) continue;
      if (r->prefilling) j.live_samples -= j.req.n - 1;  // its forks were never made
      Finish(*r, "cancelled");
    }
    running.erase(std::remove_if(running.begin(), running.end(), [](auto& r) { return r->seq < 0; }), running.end());
    if (running.empty()) return;
    chunks.clear();
    chunk_owner.clear();
    I budget = opt.max_batch_tokens;
    // Decode rows first: every running sample past its prefill feeds its last token.
    for (auto& r : running) {
      if (r->prefilling || budget == 0) continue;
      Status g = Grow(*r, 1);
      K2_CHECK(g.ok()) << "generator: reserved page missing: " << g.ToString();
      chunks.push_back({r->seq, &r->last, 1, false});
      chunk_owner.push_back(r.get());
      --budget;
    }
    // Deterministic mode (core/determinism.h): a prompt is cut into the same chunks whatever else runs
    // (a chunk that does not fit this step waits for the next), so its attention products have the same
    // shapes and bits; otherwise the step's remaining budget may cut it shorter.
    const bool fixed_chunks = DeterministicMode();
    const I chunk = std::min<I>(opt.prefill_chunk, opt.max_batch_tokens);
    for (auto& r : running) {
      if (!r->prefilling || budget == 0) continue;
      const I whole = std::min<I>(chunk, static_cast<I>(r->feed.size() - r->fed));
      if (fixed_chunks && whole > budget) continue;
      const I n = std::min<I>(whole, budget);
      Status g = Grow(*r, n);
      K2_CHECK(g.ok()) << "generator: reserved page missing: " << g.ToString();
      chunks.push_back({r->seq, r->feed.data() + r->fed, n, false});
      chunk_owner.push_back(r.get());
      budget -= n;
    }
    if (chunks.empty()) return;
    Status fs = dec->Forward(chunks);
    // Tokens, lengths and rows were validated at admission: a failure here is a bug.
    K2_CHECK(fs.ok()) << "generator: decoder step failed: " << fs.ToString();
    I prefill = 0, decode = 0;
    std::vector<std::unique_ptr<Running>> spawned;
    for (size_t c = 0; c < chunks.size(); ++c) {
      Running& r = *chunk_owner[c];
      const float* lg = dec->logits() + static_cast<I>(c) * cfg.vocab_size;
      if (r.prefilling) {
        r.fed += static_cast<size_t>(chunks[c].n);
        prefill += chunks[c].n;
        if (r.fed < r.feed.size()) continue;
        r.prefilling = false;
        r.feed.clear();
        r.feed.shrink_to_fit();
        Job& j = *r.job;
        // The prompt is in the cache: fork the other samples off it (shared pages), then sample all.
        std::vector<Running*> samples = {&r};
        for (I k = 1; k < j.req.n; ++k) {
          auto child = kv->Fork(r.seq);
          K2_CHECK(child.ok()) << "generator: sequence slot reserved at admission missing";
          auto rr = std::make_unique<Running>();
          rr->job = &j;
          rr->sample = k;
          rr->seq = *child;
          rr->prefilling = false;
          rr->rng = Rng(j.req.sampling.seed).Fork(static_cast<uint64_t>(k));
          samples.push_back(rr.get());
          spawned.push_back(std::move(rr));
        }
        // Split the remaining reservation between the samples.
        const int64_t share = r.reserved_pages / j.req.n;
        for (Running* s : samples) s->reserved_pages = share;
        if (j.req.constraint)
          for (Running* s : samples) s->constraint = j.req.constraint();
        for (Running* s : samples) {
          if (j.max_new <= 0) Finish(*s, "length");
          else Emit(*s, lg);
        }
      } else {
        ++decode;
        Emit(r, lg);
      }
    }
    for (auto& s : spawned) running.push_back(std::move(s));
    running.erase(std::remove_if(running.begin(), running.end(), [](auto& r) { return r->seq < 0; }), running.end());
    std::lock_guard<std::mutex> lk(mu);
    st.steps++;
    st.prefill_tokens += prefill;
    st.decode_tokens += decode;
  }

  // Admission in arrival order; a session touched by an earlier waiting entry stays blocked, and a
  // one-shot request waiting for pages keeps later requests from overtaking it (no starvation).
  void AdmitWaiting() {
    std::set<std::string> blocked;
    bool all_blocked = false;
    for (auto it = waiting.begin(); it != waiting.end();) {
      auto t = Touches(**it);
      bool skip = all_blocked || blocked.count("*") > 0 || ((*it)->kind == Kind::kEndAll && !blocked.empty());
      for (auto& s : t) skip = skip || blocked.count(s) > 0;
      if (!skip && Admit(*it)) {
        it = waiting.erase(it);
        continue;
      }
      if (t.empty()) all_blocked = true;
      for (auto& s : t) blocked.insert(s);
      ++it;
    }
  }

  void Run() {
    while (true) {
      {
        std::unique_lock<std::mutex> lk(mu);
        for (auto& j : queue) waiting.push_back(std::move(j));
        queue.clear();
        if (stop) break;
        if (waiting.empty() && running.empty()) {
          idle = true;
          idle_cv.notify_all();
          work_cv.wait(lk, [&] { return stop || !queue.empty(); });
          continue;
        }
        idle = false;
      }
      AdmitWaiting();
      // With nothing running every waiting entry was either started or failed in Admit; anything
      // left would wait forever, so it fails here (never a hang).
      if (running.empty())
        for (auto& j : waiting) FailJob(*j, ResourceExhausted("generator: request cannot be scheduled"));
      if (running.empty()) waiting.clear();
      if (!running.empty()) Step();
      std::lock_guard<std::mutex> lk(mu);
      st.running = static_cast<int64_t>(running.size());
      st.queued = static_cast<int64_t>(waiting.size() + queue.size());
      st.sessions = static_cast<int64_t>(sessions.size());
      st.free_pages = kv->free_pages();
    }
    // Shutdown: fail everything still waiting or running.
    for (auto& j : waiting) FailJob(*j, Cancelled("generator stopped"));
    waiting.clear();
    for (auto& j : active) j->done.set_value(Cancelled("generator stopped"));
    active.clear();
    running.clear();
    std::lock_guard<std::mutex> lk(mu);
    idle = true;
    idle_cv.notify_all();
  }
  std::deque<std::unique_ptr<Job>> waiting;  // loop thread only: taken from `queue`, not yet started
  bool idle = true;                          // guarded by mu: nothing queued, waiting or running

  void Enqueue(std::unique_ptr<Job> j) {
    std::lock_guard<std::mutex> lk(mu);
    queue.push_back(std::move(j));
    st.requests++;
    idle = false;
    work_cv.notify_all();
  }
};

Generator::Generator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Generator::~Generator() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stop = true;
    impl_->work_cv.notify_all();
  }
  if (impl_->loop.joinable()) impl_->loop.join();
}

Expected<std::unique_ptr<Generator>> Generator::Create(engine::Model<float>* model, const GeneratorOptions& o) {
  if (model == nullptr) return InvalidArgument("generator: no model");
  auto impl = std::make_unique<Impl>();
  impl->model = model;
  impl->opt = o;
  impl->cfg = model->config();
  const engine::ModelConfig& c = impl->cfg;
  impl->max_context = o.max_context > 0 ? std::min(o.max_context, c.max_position_embeddings) : c.max_position_embeddings;
  if (o.page_size < 1 || o.max_sequences < 1 || o.max_batch_sequences < 1 || o.max_batch_tokens < 1 ||
      o.prefill_chunk < 1)
    return InvalidArgument("generator: page_size, max_sequences, max_batch_sequences, max_batch_tokens and "
                           "prefill_chunk must be >= 1");
  if (o.max_batch_tokens < o.max_batch_sequences)
    return InvalidArgument("generator: max_batch_tokens must be >= max_batch_sequences (one decode row each)");
  KvCacheConfig kc;
  kc.num_layers = c.num_hidden_layers;
  kc.kv_lora_rank = c.kv_lora_rank;
  kc.rope_dim = c.qk_rope_head_dim;
  kc.page_size = o.page_size;
  kc.max_sequences = o.max_sequences;
  kc.max_tokens_per_sequence = impl->max_context;
  // Default pool: every running sequence at full context, plus the same again for sessions' prefixes.
  kc.num_pages = o.num_pages > 0 ? o.num_pages
                                 : std::min<int64_t>(o.max_sequences, 2 * o.max_batch_sequences) *
                                       ((impl->max_context + o.page_size - 1) / o.page_size);
  K2_ASSIGN_OR_RETURN(KvCache kv, KvCache::Create(kc));
  impl->kv.emplace(std::move(kv));
  impl->dec = std::make_unique<CachedDecoder>(model, &*impl->kv, o.max_batch_tokens,
                                              std::min(o.prefill_chunk, o.max_batch_tokens), impl->max_context);
  impl->sample_vocab = o.tokenizer ? std::min<I>(o.tokenizer->vocab_size(), c.vocab_size) : c.vocab_size;
  impl->st.total_pages = kc.num_pages;
  impl->st.free_pages = kc.num_pages;
  impl->st.kv_bytes_per_token = impl->kv->bytes_per_token();
  Impl* p = impl.get();
  impl->loop = std::thread([p] { p->Run(); });
  return std::unique_ptr<Generator>(new Generator(std::move(impl)));
}

std::future<Expected<Completion>> Generator::Submit(GenerateRequest req) {
  auto j = std::make_unique<Job>();
  j->kind = Kind::kGenerate;
  auto fut = j->done.get_future();
  const engine::ModelConfig& c = impl_->cfg;
  Status bad;
  for (size_t i = 0; i < req.tokens.size() && bad.ok(); ++i)
    if (req.tokens[i] < 0 || req.tokens[i] >= c.vocab_size)
      bad = InvalidArgument("generator: tokens[" + std::to_string(i) + "] = " + std::to_string(req.tokens[i]) +
                            " outside [0, vocab_size=" + std::to_string(c.vocab_size) + ")");
  const SamplingParams& p = req.sampling;
  if (bad.ok() && (req.n < 1 || req.n > impl_->opt.max_batch_sequences))
    bad = InvalidArgument("generator: n must be in [1, max_batch_sequences=" +
                          std::to_string(impl_->opt.max_batch_sequences) + "], got " + std::to_string(req.n));
  if (bad.ok() && req.n > 1 && !req.session.empty())
    bad = InvalidArgument("generator: n > 1 with a session (fork the session instead)");
  if (bad.ok() && (!(p.temperature >= 0) || !std::isfinite(p.temperature)))
    bad = InvalidArgument("generator: temperature must be finite and >= 0");
  if (bad.ok() && !(p.top_p > 0 && p.top_p <= 1)) bad = InvalidArgument("generator: top_p must be in (0, 1]");
  if (bad.ok() && (p.top_k < 0 || p.max_new_tokens < 0))
    bad = InvalidArgument("generator: top_k and max_new_tokens must be >= 0");
  if (bad.ok() && (!std::isfinite(p.frequency_penalty) || !std::isfinite(p.presence_penalty) || p.top_logprobs > 1000))
    bad = InvalidArgument("generator: penalties must be finite and top_logprobs <= 1000");
  for (size_t i = 0; i < p.logit_bias.size() && bad.ok(); ++i)
    if (p.logit_bias[i].first < 0 || p.logit_bias[i].first >= c.vocab_size || std::isnan(p.logit_bias[i].second))
      bad = InvalidArgument("generator: logit_bias[" + std::to_string(i) + "]: id outside the vocabulary or NaN bias");
  if (bad.ok() && !p.stop_strings.empty() && impl_->opt.tokenizer == nullptr)
    bad = InvalidArgument("generator: stop strings need a tokenizer (GeneratorOptions::tokenizer)");
  if (!bad.ok()) {
    j->done.set_value(bad);
    return fut;
  }
  j->req = std::move(req);
  impl_->Enqueue(std::move(j));
  return fut;
}

Expected<Completion> Generator::Generate(GenerateRequest req) { return Submit(std::move(req)).get(); }

Status Generator::ForkSession(const std::string& from, const std::string& to) {
  if (from.empty() || to.empty()) return InvalidArgument("generator: session names must be non-empty");
  auto j = std::make_unique<Job>();
  j->kind = Kind::kFork;
  j->from = from;
  j->to = to;
  auto fut = j->cmd_done.get_future();
  impl_->Enqueue(std::move(j));
  return fut.get();
}

void Generator::EndSession(const std::string& session) {
  auto j = std::make_unique<Job>();
  j->kind = Kind::kEnd;
  j->from = session;
  auto fut = j->cmd_done.get_future();
  impl_->Enqueue(std::move(j));
  (void)fut.get();
}

void Generator::EndAllSessions() {
  auto j = std::make_unique<Job>();
  j->kind = Kind::kEndAll;
  auto fut = j->cmd_done.get_future();
  impl_->Enqueue(std::move(j));
  (void)fut.get();
}

Expected<int64_t> Generator::SessionLength(const std::string& session) {
  auto j = std::make_unique<Job>();
  j->kind = Kind::kLength;
  j->from = session;
  auto fut = j->len_done.get_future();
  impl_->Enqueue(std::move(j));
  return fut.get();
}

void Generator::WaitIdle() {
  std::unique_lock<std::mutex> lk(impl_->mu);
  impl_->idle_cv.wait(lk, [&] { return impl_->idle && impl_->queue.empty(); });
}

GeneratorStats Generator::stats() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  return impl_->st;
}

const engine::ModelConfig& Generator::model_config() const { return impl_->cfg; }

}  // namespace k2::gen
