#!/usr/bin/python3
"""Regenerates the engine's golden fixture with an independent PyTorch model (run with /usr/bin/python3).

Builds the tiny DeepseekV3 model of configs/models/tiny.json in plain PyTorch following the math of HF
transformers' modeling_deepseek_v3.py (no transformers import: written from the HF formulas), with
random weights it saves to tiny_model.safetensors (HF tensor names). It then runs one forward/backward
on fixed tokens and 3 MuonClip steps (Muon + torch.optim.AdamW + QK-Clip + aux-loss-free bias update)
and writes golden.safetensors, format "k2gym-golden" version 1:
  input.tokens/targets [B,T] I64, input.weights [B,T] F32, out.logits [B*T,V], out.loss/ce/aux [1],
  act.<intermediate> [B*T,...], max_logits [L,H], grad.<param>, step.loss [3], step.max_logits [3,L,H],
  step3.<param> (after 3 steps, correction biases included).
Usage: tests/golden/make_golden.py   (writes next to this script)
"""
import json
import math
import os
import struct

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FORMAT_VERSION = "1"
B, T = 2, 16
AUX_ALPHA = 0.01
OPT = dict(lr=0.01, weight_decay=0.1, momentum=0.95, nesterov=True, ns_steps=5, beta1=0.9, beta2=0.95,
           eps=1e-8, grad_clip=1.0, bias_update_speed=0.001)

# ---------------------------------------------------------------- safetensors (no external package)
DT = {torch.float32: "F32", torch.int64: "I64", torch.float64: "F64"}


def save_safetensors(path, tensors, metadata):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        b = t.numpy().tobytes()
        header[name] = {"dtype": DT[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    os.replace(tmp, path)


def load_safetensors(path):
    import numpy as np
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        b, e = v["data_offsets"]
        np_dt = {"F32": np.float32, "I64": np.int64, "F64": np.float64}[v["dtype"]]
        arr = np.frombuffer(data[8 + n + b:8 + n + e], dtype=np_dt).reshape(v["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


# ---------------------------------------------------------------- the model (HF DeepseekV3 math)
def rms_norm(x, w, eps):
    var = x.float().pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def get_mscale(scale, mscale=1.0):
    return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0


def rope_tables(cfg, T):
    d, base = cfg["qk_rope_head_dim"], cfg["rope_theta"]
    pos_freqs = base ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    inv_freq = 1.0 / pos_freqs
    attn_factor = 1.0
    rs = cfg.get("rope_scaling")
    if rs:
        factor = rs["factor"]
        L = rs["original_max_position_embeddings"]
        beta_fast, beta_slow = rs.get("beta_fast") or 32, rs.get("beta_slow") or 1

        def corr(rot):
            return d * math.log(L / (rot * 2 * math.pi)) / (2 * math.log(base))

        low, high = max(math.floor(corr(beta_fast)), 0), min(math.ceil(corr(beta_slow)), d - 1)
        if low == high:
            high += 0.001
        ramp = ((torch.arange(d // 2, dtype=torch.float64) - low) / (high - low)).clamp(0, 1)
        extrap_factor = 1 - ramp
        inv_freq = (inv_freq / factor) * (1 - extrap_factor) + inv_freq * extrap_factor
        ms, msa = rs.get("mscale"), rs.get("mscale_all_dim")
        attn_factor = get_mscale(factor, ms) / get_mscale(factor, msa) if ms and msa else get_mscale(factor)
    t = torch.arange(T, dtype=torch.float64)
    freqs = torch.outer(t, inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    return (emb.cos() * attn_factor).float(), (emb.sin() * attn_factor).float()


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x, cos, sin, interleave):
    if interleave:  # HF apply_rotary_pos_emb_interleave: de-interleave, then rotate_half
        b, h, s, d = x.shape
        x = x.view(b, h, s, d // 2, 2).transpose(4, 3).reshape(b, h, s, d)
    return x * cos + rotate_half(x) * sin


def softmax_scale(cfg):
    s = (cfg["qk_nope_head_dim"] + cfg["qk_rope_head_dim"]) ** -0.5
    rs = cfg.get("rope_scaling")
    if rs and rs.get("mscale_all_dim", 0):
        m = get_mscale(rs["factor"], rs["mscale_all_dim"])
        s = s * m * m
    return s


class Tiny:
    def __init__(self, cfg, P):
        self.cfg, self.P = cfg, P

    def mlp(self, pre, x):
        P = self.P
        return F.linear(F.silu(F.linear(x, P[pre + "gate_proj.weight"])) * F.linear(x, P[pre + "up_proj.weight"]),
                        P[pre + "down_proj.weight"])

    def attention(self, l, x, cos, sin, stats):
        c, P = self.cfg, self.P
        p = f"model.layers.{l}.self_attn."
        H, dn, dr, dv = c["num_attention_heads"], c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
        b, s, _ = x.shape
        if c.get("q_lora_rank"):
            q = F.linear(rms_norm(F.linear(x, P[p + "q_a_proj.weight"]), P[p + "q_a_layernorm.weight"],
                                  c["rms_norm_eps"]), P[p + "q_b_proj.weight"])
        else:
            q = F.linear(x, P[p + "q_proj.weight"])
        q = q.view(b, s, H, dn + dr).transpose(1, 2)
        q_pass, q_rot = torch.split(q, [dn, dr], dim=-1)
        ckv = F.linear(x, P[p + "kv_a_proj_with_mqa.weight"])
        k_pass, k_rot = torch.split(ckv, [c["kv_lora_rank"], dr], dim=-1)
        k_pass = F.linear(rms_norm(k_pass, P[p + "kv_a_layernorm.weight"], c["rms_norm_eps"]),
                          P[p + "kv_b_proj.weight"]).view(b, s, H, dn + dv).transpose(1, 2)
        k_pass, v = torch.split(k_pass, [dn, dv], dim=-1)
        k_rot = k_rot.view(b, 1, s, dr)
        q_rot = apply_rope(q_rot, cos, sin, c.get("rope_interleave", True))
        k_rot = apply_rope(k_rot, cos, sin, c.get("rope_interleave", True))
        k_rot = k_rot.expand(*k_pass.shape[:-1], -1)
        qs = torch.cat((q_pass, q_rot), dim=-1)
        ks = torch.cat((k_pass, k_rot), dim=-1)
        scores = torch.matmul(qs, ks.transpose(2, 3)) * softmax_scale(c)
        mask = torch.triu(torch.ones(s, s, dtype=torch.bool), diagonal=1)
        with torch.no_grad():
            stats["max_logits"].append(scores.masked_fill(mask, -float("inf")).amax(dim=(0, 2, 3)).double())
        scores = scores.masked_fill(mask, -float("inf"))
        attn = torch.softmax(scores.float(), dim=-1).to(qs.dtype)
        o = torch.matmul(attn, v).transpose(1, 2).reshape(b, s, H * dv)
        stats["acts"][f"layers.{l}.attn.o"] = o.reshape(b * s, -1)
        return F.linear(o, P[p + "o_proj.weight"])

    def moe(self, l, x, stats):
        c, P = self.cfg, self.P
        p = f"model.layers.{l}.mlp."
        E, K, G, TG = c["n_routed_experts"], c["num_experts_per_tok"], c["n_group"], c["topk_group"]
        b, s, D = x.shape
        h = x.view(-1, D)
        logits = F.linear(h.float(), P[p + "gate.weight"].float())
        scores = logits.sigmoid()
        with torch.no_grad():
            sfc = scores + P[p + "gate.e_score_correction_bias"]
            gs = sfc.view(-1, G, E // G).topk(2, dim=-1)[0].sum(dim=-1)
            gidx = torch.topk(gs, k=TG, dim=-1, sorted=False)[1]
            gmask = torch.zeros_like(gs).scatter_(1, gidx, 1)
            smask = gmask.unsqueeze(-1).expand(-1, G, E // G).reshape(-1, E)
            sfc = sfc.masked_fill(~smask.bool(), 0.0)
            idx = torch.topk(sfc, k=K, dim=-1, sorted=False)[1]
        w = scores.gather(1, idx)
        if c["norm_topk_prob"]:
            w = w / (w.sum(dim=-1, keepdim=True) + 1e-20)
        w = w * c["routed_scaling_factor"]
        out = torch.zeros_like(h)
        for e in range(E):
            tok, slot = torch.where(idx == e)
            if tok.numel() == 0:
                continue
            out = out.index_add(0, tok, self.mlp(p + f"experts.{e}.", h[tok]) * w[tok, slot, None])
        if c["n_shared_experts"] > 0:
            out = out + self.mlp(p + "shared_experts.", h)
        stats["load"][l] = torch.bincount(idx.flatten(), minlength=E)
        aux = torch.zeros((), dtype=torch.float32)
        if AUX_ALPHA > 0:  # sequence-wise balance loss (DeepSeek-V3 eq. 17-20), averaged over sequences
            sn = (scores / scores.sum(-1, keepdim=True)).view(b, s, E)
            cnt = F.one_hot(idx, E).sum(1).view(b, s, E).sum(1).float()
            f = cnt * E / (K * s)
            aux = AUX_ALPHA * (f * sn.mean(1)).sum(-1).mean()
        return out.view(b, s, D), aux

    def forward(self, tokens, targets, weights):
        c, P = self.cfg, self.P
        b, s = tokens.shape
        cos, sin = rope_tables(c, s)
        stats = {"max_logits": [], "acts": {}, "load": {}}
        h = F.embedding(tokens, P["model.embed_tokens.weight"])
        stats["acts"]["embed"] = h.reshape(b * s, -1)
        aux = torch.zeros((), dtype=torch.float32)
        for l in range(c["num_hidden_layers"]):
            p = f"model.layers.{l}."
            h = h + self.attention(l, rms_norm(h, P[p + "input_layernorm.weight"], c["rms_norm_eps"]), cos, sin, stats)
            stats["acts"][f"layers.{l}.h_mid"] = h.reshape(b * s, -1)
            x = rms_norm(h, P[p + "post_attention_layernorm.weight"], c["rms_norm_eps"])
            if l < c["first_k_dense_replace"]:
                h = h + self.mlp(p + "mlp.", x)
            else:
                y, a = self.moe(l, x, stats)
                h = h + y
                aux = aux + a
            stats["acts"][f"layers.{l}.out"] = h.reshape(b * s, -1)
        h = rms_norm(h, P["model.norm.weight"], c["rms_norm_eps"])
        logits = F.linear(h, P["lm_head.weight"]).view(b * s, -1)
        ce = (F.cross_entropy(logits.float(), targets.view(-1), reduction="none") * weights.view(-1)).sum() / weights.sum()
        return logits, ce, aux, stats


# ---------------------------------------------------------------- MuonClip
def newton_schulz(G, steps):
    a, b, c = 3.4445, -4.7750, 2.0315
    X = G.float()
    tall = G.size(0) > G.size(1)
    if tall:
        X = X.T
    X = X / (X.norm() + 1e-7)
    for _ in range(steps):
        A = X @ X.T
        Bm = b * A + c * A @ A
        X = a * X + Bm @ X
    return X.T if tall else X


def is_muon(name, t):
    return t.ndim == 2 and name not in ("model.embed_tokens.weight", "lm_head.weight")


def run_steps(cfg, model, P, trainable, step_forward, tau):
    H, dn, dr, dv = cfg["num_attention_heads"], cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    adam_params = [P[n] for n in trainable if not is_muon(n, P[n])]
    adam = torch.optim.AdamW(adam_params, lr=OPT["lr"], betas=(OPT["beta1"], OPT["beta2"]), eps=OPT["eps"],
                             weight_decay=OPT["weight_decay"])
    momentum = {n: torch.zeros_like(P[n]) for n in trainable if is_muon(n, P[n])}
    losses, mls = [], []
    for step in range(3):
        logits, ce, aux, loss, stats = step_forward()
        losses.append(float(loss))
        ml = torch.stack(stats["max_logits"])
        mls.append(ml.float())
        rel = ((ml - tau).abs() / tau).min()
        if rel <= 0.01:
            return False, None, None
        torch.nn.utils.clip_grad_norm_([P[n] for n in trainable], OPT["grad_clip"])
        with torch.no_grad():
            for n, buf in momentum.items():
                g = P[n].grad
                buf.mul_(OPT["momentum"]).add_(g)
                u = g + OPT["momentum"] * buf if OPT["nesterov"] else buf
                o = newton_schulz(u, OPT["ns_steps"]) * 0.2 * math.sqrt(max(P[n].shape))
                P[n].mul_(1 - OPT["lr"] * OPT["weight_decay"]).add_(o, alpha=-OPT["lr"])
        adam.step()
        with torch.no_grad():
            for l in range(cfg["num_hidden_layers"]):  # QK-Clip
                p = f"model.layers.{l}.self_attn."
                for h in range(H):
                    smax = float(ml[l, h])
                    if smax <= tau:
                        continue
                    g = tau / smax
                    qb = P[p + "q_b_proj.weight"].view(H, dn + dr, -1)
                    qb[h, :dn] *= math.sqrt(g)
                    qb[h, dn:] *= g
                    P[p + "kv_b_proj.weight"].view(H, dn + dv, -1)[h, :dn] *= math.sqrt(g)
            for l, load in stats["load"].items():  # aux-loss-free bias update
                bias = P[f"model.layers.{l}.mlp.gate.e_score_correction_bias"]
                bias += OPT["bias_update_speed"] * torch.sign(load.float().mean() - load.float())
    return True, losses, mls


def main():
    cfg = json.load(open(os.path.join(ROOT, "configs/models/tiny.json")))
    torch.manual_seed(20260101)
    gen = torch.Generator().manual_seed(1234)
    std = cfg["initializer_range"]
    H, dn, dr, dv = cfg["num_attention_heads"], cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    D, V, E = cfg["hidden_size"], cfg["vocab_size"], cfg["n_routed_experts"]
    shapes = {"model.embed_tokens.weight": [V, D], "model.norm.weight": [D], "lm_head.weight": [V, D]}
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        shapes[p + "input_layernorm.weight"] = [D]
        shapes[p + "post_attention_layernorm.weight"] = [D]
        rq, rkv = cfg["q_lora_rank"], cfg["kv_lora_rank"]
        shapes[p + "self_attn.q_a_proj.weight"] = [rq, D]
        shapes[p + "self_attn.q_a_layernorm.weight"] = [rq]
        shapes[p + "self_attn.q_b_proj.weight"] = [H * (dn + dr), rq]
        shapes[p + "self_attn.kv_a_proj_with_mqa.weight"] = [rkv + dr, D]
        shapes[p + "self_attn.kv_a_layernorm.weight"] = [rkv]
        shapes[p + "self_attn.kv_b_proj.weight"] = [H * (dn + dv), rkv]
        shapes[p + "self_attn.o_proj.weight"] = [D, H * dv]

        def mlp(pre, w):
            shapes[pre + "gate_proj.weight"] = [w, D]
            shapes[pre + "up_proj.weight"] = [w, D]
            shapes[pre + "down_proj.weight"] = [D, w]

        if l < cfg["first_k_dense_replace"]:
            mlp(p + "mlp.", cfg["intermediate_size"])
        else:
            shapes[p + "mlp.gate.weight"] = [E, D]
            shapes[p + "mlp.gate.e_score_correction_bias"] = [E]
            for e in range(E):
                mlp(p + f"mlp.experts.{e}.", cfg["moe_intermediate_size"])
            mlp(p + "mlp.shared_experts.", cfg["moe_intermediate_size"] * cfg["n_shared_experts"])
    P = {}
    for name in sorted(shapes):
        shp = shapes[name]
        if name.endswith("e_score_correction_bias"):
            P[name] = (torch.rand(shp, generator=gen) - 0.5) * 0.1
        elif len(shp) == 1:  # norms: around 1 so a wrong norm weight shows
            P[name] = 1.0 + 0.1 * torch.randn(shp, generator=gen)
        else:
            P[name] = std * torch.randn(shp, generator=gen)
    save_safetensors(os.path.join(HERE, "tiny_model.safetensors"), P, {"format": "pt"})
    P = load_safetensors(os.path.join(HERE, "tiny_model.safetensors"))  # exactly what C++ reads

    tokens = torch.randint(0, V, (B, T), generator=gen)
    targets = torch.randint(0, V, (B, T), generator=gen)
    weights = (torch.rand(B, T, generator=gen) + 0.5).float()
    weights[:, :2] = 0.0  # ignored positions

    trainable = [n for n in P if not n.endswith("e_score_correction_bias")]
    for n in trainable:
        P[n].requires_grad_(True)
    model = Tiny(cfg, P)
    out = {"input.tokens": tokens, "input.targets": targets, "input.weights": weights}

    def step_forward():
        for n in trainable:
            P[n].grad = None
        logits, ce, aux, stats = model.forward(tokens, targets, weights)
        loss = ce + aux
        loss.backward()
        for n in trainable:  # an expert that got no token has a zero gradient (k2gym still decays it)
            if P[n].grad is None:
                P[n].grad = torch.zeros_like(P[n])
        return logits, ce, aux, loss, stats

    logits, ce, aux, loss, stats = step_forward()
    out["out.logits"] = logits.detach()
    out["out.loss"] = loss.detach().view(1)
    out["out.ce_loss"] = ce.detach().view(1)
    out["out.aux_loss"] = aux.detach().view(1)
    out["max_logits"] = torch.stack(stats["max_logits"]).float()
    for k, v in stats["acts"].items():
        out["act." + k] = v.detach()
    for n in trainable:
        out["grad." + n] = P[n].grad.detach().clone()

    # Tau between two of the first step's head max logits, so some heads clip; a candidate is rejected
    # when any head sits within 1% of tau at any step (an fp32 wobble must not change which heads clip).
    s0 = out["max_logits"]
    vals = sorted(float(v) for v in s0.flatten())
    mid = len(vals) // 2
    cands = [(vals[i] + vals[i + 1]) / 2 for i in sorted(range(len(vals) - 1), key=lambda i: abs(i - mid))]
    init = {n: P[n].detach().clone() for n in P}
    for tau in cands:
        with torch.no_grad():
            for n in P:
                P[n].copy_(init[n])
        ok, losses, mls = run_steps(cfg, model, P, trainable, step_forward, tau)
        if ok:
            break
    else:
        raise SystemExit("no tau keeps every head 1% away from it; change the seed")
    out["qk_clip_tau"] = torch.tensor([tau], dtype=torch.float64)
    out["step.loss"] = torch.tensor(losses, dtype=torch.float32)
    out["step.max_logits"] = torch.stack(mls)
    for n in P:
        out["step3." + n] = P[n].detach().clone()
    meta = {"format": "k2gym-golden", "version": FORMAT_VERSION, "model": "configs/models/tiny.json",
            "aux_loss_alpha": repr(AUX_ALPHA), "qk_clip_tau": repr(tau), "torch": torch.__version__}
    meta.update({k: repr(v) for k, v in OPT.items()})
    save_safetensors(os.path.join(HERE, "golden.safetensors"), out, meta)
    print(f"wrote golden.safetensors: loss {losses}, tau {tau:.4f}, clipped heads at step 0: "
          f"{int((s0 > tau).sum())}")


if __name__ == "__main__":
    main()
