#!/usr/bin/env python3
"""Parity of k2gym's CPU engine with Hugging Face transformers' DeepseekV3ForCausalLM.

Needs python3 with torch and transformers (>= 4.48, which ships DeepseekV3) — any machine with PyTorch.
Builds a tiny random DeepseekV3ForCausalLM (configs/models/tiny.json by default; random norms and
router correction biases so neither hides behind 1 or 0), writes its weights with HF per-expert tensor
names (splitting fused expert tensors if the installed transformers keeps them fused) plus config.json,
runs `k2gym model grad` on the same random tokens and compares logits, loss and every parameter
gradient. Prints max abs error per tensor, exits 1 on a mismatch (0 = parity).

  python3 tools/hf_parity.py --k2gym build/default/apps/k2gym [--model configs/models/tiny.json]

`--reference golden` runs the same pipeline against the repository's independent PyTorch model
(tests/golden/make_golden.py, plain torch, no transformers): a self-check of this script and of the
`k2gym model grad` command on machines without transformers (e.g. Debian's python3-torch:
/usr/bin/python3 tools/hf_parity.py --reference golden --k2gym build/default/apps/k2gym).
"""
import argparse
import importlib.util
import json
import os
import re
import struct
import subprocess
import sys
import tempfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------- safetensors (no external package needed)
def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous().cpu()
        b = t.numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


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
        arr = np.frombuffer(data[8 + n + b:8 + n + e], dtype={"F32": np.float32}[v["dtype"]]).reshape(v["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


# ------------------------------------------------------------- HF names
FUSED_GATE_UP = re.compile(r"^(model\.layers\.\d+\.mlp\.experts)\.gate_up_proj$")
FUSED_DOWN = re.compile(r"^(model\.layers\.\d+\.mlp\.experts)\.down_proj$")


def to_per_expert(name, t, cfg):
    """Maps one HF tensor to {k2gym/HF-checkpoint name: tensor}: newer transformers may hold the routed
    experts fused ([E, 2I, D] gate_up_proj, [E, D, I] down_proj); checkpoints name them per expert."""
    m = FUSED_GATE_UP.match(name)
    if m:
        E, I = t.shape[0], cfg["moe_intermediate_size"]
        if t.shape[1] != 2 * I:  # some versions store [E, D, 2I]
            t = t.transpose(1, 2)
        return {f"{m.group(1)}.{e}.{w}": part for e in range(E)
                for w, part in (("gate_proj.weight", t[e, :I]), ("up_proj.weight", t[e, I:]))}
    m = FUSED_DOWN.match(name)
    if m:
        D = cfg["hidden_size"]
        if t.shape[1] != D:
            t = t.transpose(1, 2)
        return {f"{m.group(1)}.{e}.down_proj.weight": t[e] for e in range(t.shape[0])}
    return {name: t}


# ------------------------------------------------------------- references
def hf_reference(cfg_fields, ids, seed):
    """transformers' DeepseekV3ForCausalLM: (weights by name, logits [B*T,V], loss, grads by name)."""
    from transformers import DeepseekV3Config, DeepseekV3ForCausalLM
    torch.manual_seed(seed)
    fields = dict(cfg_fields)
    fields.pop("architectures", None)
    fields.pop("model_type", None)
    cfg = DeepseekV3Config(**fields)
    cfg._attn_implementation = "eager"
    model = DeepseekV3ForCausalLM(cfg).float()
    with torch.no_grad():
        for _, p in model.named_parameters():
            if p.ndim == 1:
                p.copy_(1 + 0.1 * torch.randn_like(p))
        for name, b in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                b.copy_(0.05 * torch.randn_like(b))
    model.train()
    logits = model(input_ids=ids).logits
    V = cfg_fields["vocab_size"]
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V).float(), ids[:, 1:].reshape(-1))
    loss.backward()
    weights, grads = {}, {}
    for name, p in model.named_parameters():
        weights.update(to_per_expert(name, p.detach(), cfg_fields))
        grads.update(to_per_expert(name, p.grad if p.grad is not None else torch.zeros_like(p), cfg_fields))
    for name, b in model.named_buffers():
        if name.endswith("e_score_correction_bias"):
            weights[name] = b.detach()
    return weights, logits.detach().reshape(-1, V), loss.detach(), grads


def golden_reference(cfg_fields, ids, seed):
    """tests/golden/make_golden.py's independent torch model, same interface as hf_reference."""
    spec = importlib.util.spec_from_file_location("make_golden", os.path.join(ROOT, "tests/golden/make_golden.py"))
    mg = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mg)
    c = cfg_fields
    gen = torch.Generator().manual_seed(seed)
    H, dn, dr, dv = c["num_attention_heads"], c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
    D, V, E = c["hidden_size"], c["vocab_size"], c["n_routed_experts"]
    shapes = {"model.embed_tokens.weight": [V, D], "model.norm.weight": [D], "lm_head.weight": [V, D]}
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        shapes[p + "input_layernorm.weight"] = [D]
        shapes[p + "post_attention_layernorm.weight"] = [D]
        if c.get("q_lora_rank"):
            shapes[p + "self_attn.q_a_proj.weight"] = [c["q_lora_rank"], D]
            shapes[p + "self_attn.q_a_layernorm.weight"] = [c["q_lora_rank"]]
            shapes[p + "self_attn.q_b_proj.weight"] = [H * (dn + dr), c["q_lora_rank"]]
        else:
            shapes[p + "self_attn.q_proj.weight"] = [H * (dn + dr), D]
        shapes[p + "self_attn.kv_a_proj_with_mqa.weight"] = [c["kv_lora_rank"] + dr, D]
        shapes[p + "self_attn.kv_a_layernorm.weight"] = [c["kv_lora_rank"]]
        shapes[p + "self_attn.kv_b_proj.weight"] = [H * (dn + dv), c["kv_lora_rank"]]
        shapes[p + "self_attn.o_proj.weight"] = [D, H * dv]

        def mlp(pre, w):
            shapes[pre + "gate_proj.weight"] = [w, D]
            shapes[pre + "up_proj.weight"] = [w, D]
            shapes[pre + "down_proj.weight"] = [D, w]

        if l < c["first_k_dense_replace"]:
            mlp(p + "mlp.", c["intermediate_size"])
        else:
            shapes[p + "mlp.gate.weight"] = [E, D]
            shapes[p + "mlp.gate.e_score_correction_bias"] = [E]
            for e in range(E):
                mlp(p + f"mlp.experts.{e}.", c["moe_intermediate_size"])
            if c.get("n_shared_experts", 0):
                mlp(p + "mlp.shared_experts.", c["moe_intermediate_size"] * c["n_shared_experts"])
    P = {}
    for name in sorted(shapes):
        shp = shapes[name]
        if name.endswith("e_score_correction_bias"):
            P[name] = 0.05 * torch.randn(shp, generator=gen)
        elif len(shp) == 1:
            P[name] = 1.0 + 0.1 * torch.randn(shp, generator=gen)
        else:
            P[name] = c["initializer_range"] * torch.randn(shp, generator=gen)
        if not name.endswith("e_score_correction_bias"):
            P[name].requires_grad_(True)
    B, T = ids.shape
    targets = torch.cat([ids[:, 1:], torch.zeros(B, 1, dtype=ids.dtype)], dim=1)
    weights = torch.ones(B, T)
    weights[:, -1] = 0
    logits, ce, _aux, _stats = mg.Tiny(c, P).forward(ids, targets, weights)
    ce.backward()
    grads = {n: (t.grad if t.grad is not None else torch.zeros_like(t)) for n, t in P.items() if t.requires_grad}
    return {n: t.detach() for n, t in P.items()}, logits.detach(), ce.detach(), grads


# ------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--k2gym", required=True, help="path to the k2gym binary")
    ap.add_argument("--model", default=os.path.join(ROOT, "configs/models/tiny.json"), help="config.json")
    ap.add_argument("--reference", choices=["hf", "golden"], default="hf",
                    help="hf = transformers DeepseekV3ForCausalLM; golden = tests/golden/make_golden.py's model")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rtol", type=float, default=1e-3, help="max|err| <= rtol * max|ref| per tensor")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = ap.parse_args()

    with open(a.model) as f:
        cfg_fields = json.load(f)
    gen = torch.Generator().manual_seed(a.seed + 1)
    ids = torch.randint(0, cfg_fields["vocab_size"], (a.batch, a.seq), generator=gen)
    ref = hf_reference if a.reference == "hf" else golden_reference
    weights, logits, loss, grads = ref(cfg_fields, ids, a.seed)

    tmp = tempfile.mkdtemp(prefix="k2gym_parity_")
    save_safetensors(os.path.join(tmp, "model.safetensors"), weights)
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(cfg_fields, f, indent=1)
    with open(os.path.join(tmp, "tokens.json"), "w") as f:
        json.dump(ids.tolist(), f)
    out = os.path.join(tmp, "k2gym_grad.safetensors")
    subprocess.run([a.k2gym, "model", "grad", "--model", os.path.join(tmp, "config.json"), "--weights",
                    os.path.join(tmp, "model.safetensors"), "--tokens", os.path.join(tmp, "tokens.json"),
                    "--out", out], check=True)
    k = load_safetensors(out)
    ok = True
    worst = 0.0

    def compare(name, got, want):
        nonlocal ok, worst
        if got is None:
            ok = False
            print(f"BAD {name}: missing from k2gym's output")
            return
        if tuple(got.shape) != tuple(want.shape):
            ok = False
            print(f"BAD {name}: shape {tuple(got.shape)} vs {tuple(want.shape)}")
            return
        err = (got.double() - want.double()).abs().max().item()
        scale = want.abs().max().item()
        good = err <= a.rtol * max(scale, 1e-6)
        worst = max(worst, err / max(scale, 1e-6))
        ok &= good
        print(f"{'ok ' if good else 'BAD'} {name:70s} max|err| {err:.3e}  max|ref| {scale:.3e}")

    compare("logits", k.get("logits"), logits)
    compare("loss", k.get("loss"), loss.reshape(1))
    for name in sorted(grads):
        compare("grad." + name, k.get("grad." + name), grads[name])
    extra = sorted(n for n in k if n.startswith("grad.") and n[5:] not in grads)
    if extra:
        ok = False
        print("BAD k2gym has gradients the reference lacks:", ", ".join(extra[:5]))
    print(f"{'PARITY OK' if ok else 'PARITY FAILED'} ({a.reference}, {len(grads)} gradients, worst relative "
          f"error {worst:.2e}); files in {tmp}" if (a.keep or not ok) else
          f"{'PARITY OK' if ok else 'PARITY FAILED'} ({a.reference}, {len(grads)} gradients, worst relative "
          f"error {worst:.2e})")
    if ok and not a.keep:
        import shutil
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
