#!/usr/bin/python3
# PyTorch reference for bench/engine_gen: a DeepSeek-V3/Kimi-K2 model (MLA with q_lora, routed MoE with
# a shared expert, sigmoid noaux_tc routing) with the usual HF-style cached decode: per layer a naive
# K/V cache of full per-head keys [B, H, T, dn+dr] and values [B, H, T, dv] after kv_b_proj.
# Prints one JSON line: prefill and decode tokens/s and the cache bytes per token.
import argparse, json, math, time
import torch

p = argparse.ArgumentParser()
p.add_argument("--config", required=True)
p.add_argument("--batch", type=int, default=1)
p.add_argument("--prompt", type=int, default=128)
p.add_argument("--gen", type=int, default=32)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--reps", type=int, default=1)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
c = json.load(open(a.config))
D, H, L, V = c["hidden_size"], c["num_attention_heads"], c["num_hidden_layers"], c["vocab_size"]
dn, dr, dv, rkv, rq = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"], c["kv_lora_rank"], c["q_lora_rank"]
E, K, Im, I = c["n_routed_experts"], c["num_experts_per_tok"], c["moe_intermediate_size"], c["intermediate_size"]
Is = Im * c["n_shared_experts"]
dq = dn + dr
scale = dq ** -0.5
std = c["initializer_range"]

def W(o, i): return torch.randn(o, i) * std

def rms(x, w, eps=1e-6): return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w

inv = 1.0 / (c["rope_theta"] ** (torch.arange(0, dr, 2, dtype=torch.float32) / dr))

def rope(x, pos):  # x [..., T, dr], interleaved pairs
    ang = pos[:, None].float() * inv[None, :]
    cos, sin = ang.cos(), ang.sin()
    x1, x2 = x[..., 0::2], x[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x1 * sin + x2 * cos
    return out

class Layer:
    def __init__(s, moe):
        s.n1, s.n2 = torch.ones(D), torch.ones(D)
        s.qa, s.qan, s.qb = W(rq, D), torch.ones(rq), W(H * dq, rq)
        s.kva, s.kvn, s.kvb, s.o = W(rkv + dr, D), torch.ones(rkv), W(H * (dn + dv), rkv), W(D, H * dv)
        s.moe = moe
        if moe:
            s.gate, s.bias = W(E, D), torch.zeros(E)
            s.eg, s.eu, s.ed = torch.randn(E, Im, D) * std, torch.randn(E, Im, D) * std, torch.randn(E, D, Im) * std
            s.sg, s.su, s.sd = W(Is, D), W(Is, D), W(D, Is)
        else:
            s.g, s.u, s.d = W(I, D), W(I, D), W(D, I)

    def attn(s, x, pos, cache):  # x [B, T, D]
        B, T, _ = x.shape
        h = rms(x, s.n1)
        q = (rms(h @ s.qa.T, s.qan) @ s.qb.T).view(B, T, H, dq).transpose(1, 2)  # [B,H,T,dq]
        kv = h @ s.kva.T
        ckv, kpe = rms(kv[..., :rkv], s.kvn), kv[..., rkv:]
        kpe = rope(kpe, pos)[:, None]                                              # [B,1,T,dr]
        q = torch.cat([q[..., :dn], rope(q[..., dn:], pos)], -1)
        kvh = (ckv @ s.kvb.T).view(B, T, H, dn + dv).transpose(1, 2)
        k = torch.cat([kvh[..., :dn], kpe.expand(B, H, T, dr)], -1)
        v = kvh[..., dn:]
        if cache is not None:
            if "k" in cache:
                k = torch.cat([cache["k"], k], 2)
                v = torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        Tk = k.shape[2]
        s_ = (q @ k.transpose(-1, -2)) * scale
        if T > 1:
            mask = torch.full((T, Tk), float("-inf")).triu(Tk - T + 1)
            s_ = s_ + mask
        o = (s_.softmax(-1) @ v).transpose(1, 2).reshape(B, T, H * dv)
        return x + o @ s.o.T

    def ffn(s, x):
        h = rms(x, s.n2)
        if not s.moe:
            return x + (torch.nn.functional.silu(h @ s.g.T) * (h @ s.u.T)) @ s.d.T
        B, T, _ = h.shape
        f = h.reshape(-1, D)
        sc = (f @ s.gate.T).sigmoid()
        idx = (sc + s.bias).topk(K, -1).indices
        w = sc.gather(1, idx)
        w = w / w.sum(-1, keepdim=True) * c["routed_scaling_factor"]
        out = (torch.nn.functional.silu(f @ s.sg.T) * (f @ s.su.T)) @ s.sd.T
        for e in range(E):
            rows, slot = (idx == e).nonzero(as_tuple=True)
            if rows.numel() == 0:
                continue
            xe = f[rows]
            ye = (torch.nn.functional.silu(xe @ s.eg[e].T) * (xe @ s.eu[e].T)) @ s.ed[e].T
            out.index_add_(0, rows, ye * w[rows, slot][:, None])
        return x + out.view(B, T, D)

layers = [Layer(l >= c["first_k_dense_replace"]) for l in range(L)]
emb, nf, head = torch.randn(V, D) * std, torch.ones(D), W(V, D)

def forward(tok, pos, caches):
    x = emb[tok]
    for l, ly in enumerate(layers):
        x = ly.ffn(ly.attn(x, pos, caches[l]))
    return rms(x[:, -1], nf) @ head.T

best = None
with torch.no_grad():
    for rep in range(a.reps):
        caches = [dict() for _ in range(L)]
        tok = torch.randint(0, V, (a.batch, a.prompt))
        t0 = time.perf_counter()
        lg = forward(tok, torch.arange(a.prompt), caches)
        t1 = time.perf_counter()
        for g in range(a.gen):
            nxt = lg.argmax(-1)[:, None]
            lg = forward(nxt, torch.tensor([a.prompt + g]), caches)
        t2 = time.perf_counter()
        r = (a.batch * a.prompt / (t1 - t0), a.batch * a.gen / (t2 - t1))
        best = r if best is None else (max(best[0], r[0]), max(best[1], r[1]))
    kv_bytes = sum(cc["k"][0].numel() + cc["v"][0].numel() for cc in caches) * 4 / (a.prompt + a.gen)
print(json.dumps({"prefill_tok_s": best[0], "decode_tok_s": best[1], "kv_bytes_per_token": kv_bytes,
                  "torch": torch.__version__, "threads": torch.get_num_threads()}))
