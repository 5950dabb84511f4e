#!/usr/bin/python3
"""Writes a synthetic checkpoint with OLMoE-1B-7B's real shapes (config.json, sharded BF16
safetensors with an index), for `unipool bench --checkpoint DIR` (scripts/hf-bench.sh).

OLMoE-1B-7B-0924: vocab 50304, hidden 2048, 16 layers, 16 heads, 64 experts of width 1024,
top-8, q/k norms: 6.9 B parameters, ~13.8 GB in BF16. Values are random (N(0, 0.02) from one
block read at random offsets, so the script runs at disk speed); norms are ones. Synthetic
weights: a benchmark of speed and memory only. Needs Debian's python3-numpy.

  scripts/make-synthetic-olmoe.py OUT_DIR [--layers 16] [--shard-gb 5]
"""
import argparse
import json
import os
import struct

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=16)
    ap.add_argument("--shard-gb", type=float, default=5.0)
    a = ap.parse_args()
    V, H, I, E, L, heads = 50304, 2048, 1024, 64, a.layers, 16
    config = {"architectures": ["OlmoeForCausalLM"], "model_type": "olmoe", "vocab_size": V,
              "hidden_size": H, "intermediate_size": I, "num_hidden_layers": L,
              "num_attention_heads": heads, "num_key_value_heads": heads, "hidden_act": "silu",
              "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
              "attention_bias": False, "clip_qkv": None, "num_experts": E, "num_experts_per_tok": 8,
              "norm_topk_prob": False, "tie_word_embeddings": False, "torch_dtype": "bfloat16"}
    rng = np.random.default_rng(7)
    block = rng.standard_normal(1 << 25, dtype=np.float32) * 0.02
    bits = block.view(np.uint32)
    block16 = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    block16 = np.concatenate([block16, block16])
    one16 = np.array([0x3F80], dtype=np.uint16)  # 1.0 in BF16

    def values(n, ones):
        if ones:
            return np.repeat(one16, n)
        out, left = [], n
        while left:
            take = min(left, 1 << 25)
            off = int(rng.integers(0, 1 << 25))
            out.append(block16[off:off + take])
            left -= take
        return out[0] if len(out) == 1 else np.concatenate(out)

    tensors = [("model.embed_tokens.weight", (V, H), False), ("lm_head.weight", (V, H), False),
               ("model.norm.weight", (H,), True)]
    for l in range(L):
        p = f"model.layers.{l}."
        tensors += [(p + "input_layernorm.weight", (H,), True),
                    (p + "post_attention_layernorm.weight", (H,), True),
                    (p + "self_attn.q_norm.weight", (H,), True),
                    (p + "self_attn.k_norm.weight", (H,), True)]
        tensors += [(p + f"self_attn.{m}_proj.weight", (H, H), False) for m in "qkvo"]
        tensors += [(p + "mlp.gate.weight", (E, H), False)]
        for e in range(E):
            q = p + f"mlp.experts.{e}."
            tensors += [(q + "gate_proj.weight", (I, H), False), (q + "up_proj.weight", (I, H), False),
                        (q + "down_proj.weight", (H, I), False)]
    os.makedirs(a.out, exist_ok=True)
    limit = int(a.shard_gb * (1 << 30))
    shards, current, size = [], [], 0
    for t in tensors:
        n = int(np.prod(t[1])) * 2
        if current and size + n > limit:
            shards.append(current)
            current, size = [], 0
        current.append(t)
        size += n
    shards.append(current)
    weight_map = {}
    for i, shard in enumerate(shards):
        name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        header, offset = {"__metadata__": {"format": "pt"}}, 0
        for tname, shape, _ in shard:
            n = int(np.prod(shape)) * 2
            header[tname] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
            offset += n
            weight_map[tname] = name
        text = json.dumps(header).encode()
        text += b" " * ((8 - len(text) % 8) % 8)
        with open(os.path.join(a.out, name), "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text)
            for tname, shape, ones in shard:
                values(int(np.prod(shape)), ones).tofile(f)
        print(f"wrote {name} ({offset / 1e9:.2f} GB)", flush=True)
    json.dump({"metadata": {}, "weight_map": weight_map},
              open(os.path.join(a.out, "model.safetensors.index.json"), "w"))
    json.dump(config, open(os.path.join(a.out, "config.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
