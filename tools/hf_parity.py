#!/usr/bin/env python3
"""Parity of k2gym's CPU engine with Hugging Face transformers' DeepseekV3ForCausalLM.

Needs python3 with torch and transformers (>= 4.57, which ships DeepseekV3) — any machine with PyTorch.
Builds a tiny random DeepseekV3ForCausalLM (configs/models/tiny.json by default), saves it with
save_pretrained (safetensors, float32), runs `k2gym model grad` on the same tokens, and compares logits,
loss and every parameter gradient. Prints the max abs/rel error per group and exits 1 on a mismatch.

  python3 tools/hf_parity.py --k2gym build/default/apps/k2gym [--model configs/models/tiny.json]
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import torch


def load_safetensors(path):
    import numpy as np
    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        b, e = v["data_offsets"]
        arr = np.frombuffer(data[8 + n + b:8 + n + e], dtype={"F32": np.float32}[v["dtype"]]).reshape(v["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k2gym", required=True, help="path to the k2gym binary")
    ap.add_argument("--model", default=os.path.join(os.path.dirname(__file__), "..", "configs/models/tiny.json"))
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rtol", type=float, default=1e-3)
    a = ap.parse_args()
    from transformers import DeepseekV3Config, DeepseekV3ForCausalLM

    torch.manual_seed(a.seed)
    fields = json.load(open(a.model))
    fields.pop("architectures", None)
    fields.pop("model_type", None)
    cfg = DeepseekV3Config(**fields)
    cfg._attn_implementation = "eager"
    model = DeepseekV3ForCausalLM(cfg).float()
    with torch.no_grad():  # random norms and correction biases, so neither can hide behind 1 or 0
        for name, p in model.named_parameters():
            if p.ndim == 1:
                p.copy_(1 + 0.1 * torch.randn_like(p))
        for name, b in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                b.copy_(0.05 * torch.randn_like(b))
    model.train()
    tmp = tempfile.mkdtemp(prefix="k2gym_hf_parity_")
    model.save_pretrained(tmp, safe_serialization=True)
    ids = torch.randint(0, cfg.vocab_size, (a.batch, a.seq))
    json.dump(ids.tolist(), open(os.path.join(tmp, "tokens.json"), "w"))

    logits = model(input_ids=ids).logits
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, cfg.vocab_size).float(), ids[:, 1:].reshape(-1))
    loss.backward()

    out = os.path.join(tmp, "k2gym_grad.safetensors")
    subprocess.run([a.k2gym, "model", "grad", "--model", os.path.join(tmp, "config.json"), "--weights",
                    os.path.join(tmp, "model.safetensors"), "--tokens", os.path.join(tmp, "tokens.json"),
                    "--out", out], check=True)
    k = load_safetensors(out)
    ok = True

    def compare(name, got, ref):
        nonlocal ok
        err = (got - ref).abs().max().item()
        scale = ref.abs().max().item()
        good = err <= a.rtol * max(scale, 1e-6)
        ok &= good
        print(f"{'ok ' if good else 'BAD'} {name:70s} max|err| {err:.3e}  max|ref| {scale:.3e}")

    compare("logits", k["logits"], logits.detach().reshape(-1, cfg.vocab_size))
    compare("loss", k["loss"], loss.detach().view(1))
    for name, p in model.named_parameters():
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        compare("grad." + name, k["grad." + name], p.grad)
    print("PARITY OK" if ok else "PARITY FAILED", "files in", tmp)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
