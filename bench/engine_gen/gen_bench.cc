// Generation benchmark: prefill and decode tokens/s of a model (default `small`) at batch 1 and 32
// through the cached absorbed decoder, against the PyTorch reference's naive-cache decode
// (torch_decode.py) run in the same process tree with the same threads; KV bytes per token vs a naive
// K/V cache; pages saved by prefix sharing for 8 samples per prompt.
#include <sys/utsname.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "core/json.h"
#include "core/rng.h"
#include "engine/gen/decoder.h"
#include "engine/pretrain.h"
#include "engine/gen/generator.h"

using namespace k2;
using Clock = std::chrono::steady_clock;

namespace {

std::string Machine() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown cpu";
}

double Load() {
  std::ifstream f("/proc/loadavg");
  double l = 0;
  f >> l;
  return l;
}

struct Rates {
  double prefill = 0, decode = 0;
};

// Prefill B prompts of P tokens (one chunk each), then G greedy decode steps of B rows.
Rates RunOurs(engine::Model<float>* model, int64_t B, int64_t P, int64_t G, int reps) {
  const auto& c = model->config();
  gen::KvCacheConfig kc;
  kc.num_layers = c.num_hidden_layers;
  kc.kv_lora_rank = c.kv_lora_rank;
  kc.rope_dim = c.qk_rope_head_dim;
  kc.page_size = 16;
  kc.max_sequences = B;
  kc.max_tokens_per_sequence = P + G;
  kc.num_pages = B * ((P + G + 15) / 16);
  Rates best;
  for (int rep = 0; rep < reps; ++rep) {
    auto kv = gen::KvCache::Create(kc);
    K2_CHECK(kv.ok());
    gen::CachedDecoder dec(model, &*kv, B * P, P, P + G);
    Rng rng(1);
    std::vector<std::vector<int32_t>> prompts(static_cast<size_t>(B));
    std::vector<gen::CachedDecoder::Chunk> chunks;
    std::vector<int32_t> last(static_cast<size_t>(B));
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t t = 0; t < P; ++t) prompts[b].push_back(static_cast<int32_t>(rng.Below(static_cast<uint64_t>(c.vocab_size))));
      auto s = kv->NewSequence();
      K2_CHECK(s.ok() && kv->Append(*s, P).ok());
      chunks.push_back({*s, prompts[b].data(), P, false});
    }
    auto t0 = Clock::now();
    K2_CHECK(dec.Forward(chunks).ok());
    auto t1 = Clock::now();
    const int64_t V = c.vocab_size;
    for (int64_t g = 0; g < G; ++g) {
      for (int64_t b = 0; b < B; ++b) {
        const float* lg = dec.logits() + b * V;
        last[b] = static_cast<int32_t>(std::max_element(lg, lg + V) - lg);
        K2_CHECK(kv->Append(chunks[b].seq, 1).ok());
        chunks[b].tokens = &last[b];
        chunks[b].n = 1;
      }
      K2_CHECK(dec.Forward(chunks).ok());
    }
    auto t2 = Clock::now();
    best.prefill = std::max(best.prefill, B * P / std::chrono::duration<double>(t1 - t0).count());
    best.decode = std::max(best.decode, B * G / std::chrono::duration<double>(t2 - t1).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  k2::engine::ReexecWithPassiveOpenMpWait(argv);  // as k2gym does; the PyTorch child inherits the setting
  std::string cfg_path = std::string(K2GYM_SOURCE_DIR) + "/configs/models/small.json";
  int64_t P = 128, G = 32;
  int reps = 2;
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--model") cfg_path = argv[i + 1];
    else if (k == "--prompt") P = std::atoll(argv[i + 1]);
    else if (k == "--gen") G = std::atoll(argv[i + 1]);
    else if (k == "--reps") reps = std::atoi(argv[i + 1]);
    else if (k == "--threads") threads = std::atoi(argv[i + 1]);
  }
  // Same thread count for OpenBLAS/OpenMP here and torch in the reference.
  setenv("OPENBLAS_NUM_THREADS", std::to_string(threads).c_str(), 1);
  setenv("OMP_NUM_THREADS", std::to_string(threads).c_str(), 1);
  auto cfg = engine::LoadModelConfig(cfg_path);
  K2_CHECK(cfg.ok()) << cfg.status().ToString();
  auto model = engine::Model<float>::Create(*cfg, 1);
  K2_CHECK(model.ok());
  std::printf("engine_gen bench: %s | threads %d | load %.1f | model %s (L=%lld H=%lld rkv=%lld dr=%lld) prompt %lld gen %lld\n",
              Machine().c_str(), threads, Load(), cfg_path.c_str(), (long long)cfg->num_hidden_layers,
              (long long)cfg->num_attention_heads, (long long)cfg->kv_lora_rank, (long long)cfg->qk_rope_head_dim,
              (long long)P, (long long)G);
  double torch_kv = 0;
  for (int64_t B : {1, 32}) {
    Rates ours = RunOurs(model->get(), B, P, G, reps);
    std::string cmd = "/usr/bin/python3 " + std::string(K2GYM_SOURCE_DIR) + "/bench/engine_gen/torch_decode.py --config " +
                      cfg_path + " --batch " + std::to_string(B) + " --prompt " + std::to_string(P) + " --gen " +
                      std::to_string(G) + " --threads " + std::to_string(threads) + " --reps " + std::to_string(reps);
    std::string out;
    if (FILE* p = popen(cmd.c_str(), "r")) {
      char buf[4096];
      size_t n;
      while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
      pclose(p);
    }
    auto j = ParseJson(out, "torch_decode.py output");
    if (!j.ok()) {
      std::printf("batch %lld: ours prefill %.0f tok/s decode %.0f tok/s; torch reference failed: %s\n", (long long)B,
                  ours.prefill, ours.decode, out.c_str());
      continue;
    }
    const double tp = (*j)["prefill_tok_s"], td = (*j)["decode_tok_s"];
    torch_kv = (*j)["kv_bytes_per_token"];
    std::printf("batch %2lld: prefill %8.0f tok/s vs torch %8.0f (%.2fx) | decode %8.0f tok/s vs torch %8.0f (%.2fx)\n",
                (long long)B, ours.prefill, tp, ours.prefill / tp, ours.decode, td, ours.decode / td);
  }
  // KV bytes per token: ours (latent + k_pe per layer) vs the reference's measured naive cache.
  gen::KvCacheConfig kc;
  kc.num_layers = cfg->num_hidden_layers;
  kc.kv_lora_rank = cfg->kv_lora_rank;
  kc.rope_dim = cfg->qk_rope_head_dim;
  kc.page_size = 16;
  kc.num_pages = 8 * ((P + G + 15) / 16) + 1;
  kc.max_sequences = 16;
  kc.max_tokens_per_sequence = P + G;
  auto kv = gen::KvCache::Create(kc);
  K2_CHECK(kv.ok());
  const double ours_kv = static_cast<double>(kv->bytes_per_token());
  const double head_dim = (cfg->qk_head_dim() + cfg->v_head_dim) / 2.0;
  const double formula = double(cfg->kv_lora_rank + cfg->qk_rope_head_dim) / (2.0 * cfg->num_attention_heads * head_dim);
  std::printf("kv bytes/token: ours %.0f, naive K/V (torch, measured) %.0f, ratio %.4f, (rkv+dr)/(2*H*head_dim) = %.4f %s\n",
              ours_kv, torch_kv, torch_kv > 0 ? ours_kv / torch_kv : 0.0, formula,
              torch_kv > 0 && std::abs(ours_kv / torch_kv - formula) < 1e-12 ? "(equal)" : "(MISMATCH)");
  // Prefix sharing: 8 samples of one P-token prompt, each generating G tokens.
  const int64_t total = kv->free_pages();
  auto parent = kv->NewSequence();
  K2_CHECK(parent.ok() && kv->Append(*parent, P).ok());
  std::vector<gen::KvCache::SeqId> kids = {*parent};
  for (int k = 1; k < 8; ++k) kids.push_back(*kv->Fork(*parent));
  for (auto s : kids) K2_CHECK(kv->Append(s, G).ok());
  const int64_t shared = total - kv->free_pages();
  const int64_t unshared = 8 * kv->PagesFor(P + G);
  std::printf("prefix sharing, 8 samples x (%lld prompt + %lld generated): %lld pages (%.1f KiB) vs %lld unshared "
              "(%.1f KiB): %.1f%% saved\n", (long long)P, (long long)G, (long long)shared,
              shared * 16 * ours_kv / 1024.0, (long long)unshared, unshared * 16 * ours_kv / 1024.0,
              100.0 * (1.0 - double(shared) / double(unshared)));
  return 0;
}
