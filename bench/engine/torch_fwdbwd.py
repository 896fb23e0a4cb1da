#!/usr/bin/python3
"""Eager PyTorch reference for bench_engine_fwdbwd: fwd+bwd tokens/s of a model config with the
independent PyTorch transcription of HF DeepseekV3 in tests/golden/make_golden.py. Prints one JSON line."""
import argparse
import json
import os
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "golden"))
import make_golden  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    make_golden.AUX_ALPHA = 0.0
    cfg = json.load(open(a.model))
    cfg_shapes = {}
    g = torch.Generator().manual_seed(0)
    H, dn, dr, dv = cfg["num_attention_heads"], cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    D, V, E = cfg["hidden_size"], cfg["vocab_size"], cfg["n_routed_experts"]

    def add(n, shp):
        cfg_shapes[n] = shp

    add("model.embed_tokens.weight", [V, D]); add("model.norm.weight", [D]); add("lm_head.weight", [V, D])
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        add(p + "input_layernorm.weight", [D]); add(p + "post_attention_layernorm.weight", [D])
        rq, rkv = cfg.get("q_lora_rank"), cfg["kv_lora_rank"]
        if rq:
            add(p + "self_attn.q_a_proj.weight", [rq, D]); add(p + "self_attn.q_a_layernorm.weight", [rq])
            add(p + "self_attn.q_b_proj.weight", [H * (dn + dr), rq])
        else:
            add(p + "self_attn.q_proj.weight", [H * (dn + dr), D])
        add(p + "self_attn.kv_a_proj_with_mqa.weight", [rkv + dr, D]); add(p + "self_attn.kv_a_layernorm.weight", [rkv])
        add(p + "self_attn.kv_b_proj.weight", [H * (dn + dv), rkv]); add(p + "self_attn.o_proj.weight", [D, H * dv])

        def mlp(pre, w):
            add(pre + "gate_proj.weight", [w, D]); add(pre + "up_proj.weight", [w, D]); add(pre + "down_proj.weight", [D, w])

        if l < cfg["first_k_dense_replace"]:
            mlp(p + "mlp.", cfg["intermediate_size"])
        else:
            add(p + "mlp.gate.weight", [E, D]); add(p + "mlp.gate.e_score_correction_bias", [E])
            for e in range(E):
                mlp(p + f"mlp.experts.{e}.", cfg["moe_intermediate_size"])
            if cfg["n_shared_experts"]:
                mlp(p + "mlp.shared_experts.", cfg["moe_intermediate_size"] * cfg["n_shared_experts"])
    P = {}
    for n, s in cfg_shapes.items():
        if n.endswith("bias"):
            P[n] = torch.zeros(s)
        elif len(s) == 1:
            P[n] = torch.ones(s, requires_grad=True)
        else:
            P[n] = (0.02 * torch.randn(s, generator=g)).requires_grad_(True)
    model = make_golden.Tiny(cfg, P)
    tokens = torch.randint(0, V, (a.batch, a.seq), generator=g)
    targets = torch.randint(0, V, (a.batch, a.seq), generator=g)
    weights = torch.ones(a.batch, a.seq)

    def step():
        for t in P.values():
            t.grad = None
        _, ce, aux, _ = model.forward(tokens, targets, weights)
        (ce + aux).backward()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(a.iters):
        step()
    dt = time.perf_counter() - t0
    print(json.dumps({"tokens_per_s": a.batch * a.seq * a.iters / dt, "threads": torch.get_num_threads(),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
