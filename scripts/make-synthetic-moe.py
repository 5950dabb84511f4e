#!/usr/bin/python3
"""Writes a synthetic sharded MoE checkpoint in the Mixtral layout (random BF16 values), for the
benchmark of opening big checkpoints (scripts/moe-bench.sh) and the README's picture.

Mixtral-8x7B's shapes (hidden 4096, expert hidden 14336, 8 experts) with fewer layers: 8 layers
are ~24 GB. Some structure is planted so the similarity view has something to find: experts
0-3 of each layer after the first are 0.8 x an expert of the layer before plus 0.6 x fresh noise
(cosine ~0.8 with it). Values come from one random block read at random offsets, so the script
runs at disk speed. Needs Debian's python3-numpy (a dependency of python3-torch).

  scripts/make-synthetic-moe.py OUT_DIR [--layers 8] [--shard-gb 5]
"""
import argparse
import json
import os
import struct
import zlib

import numpy as np


def bf16(values):
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)  # round to nearest even


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=4096)
    ap.add_argument("--inter", type=int, default=14336)
    ap.add_argument("--shard-gb", type=float, default=5.0)
    a = ap.parse_args()
    H, I, E, L = a.hidden, a.inter, a.experts, a.layers
    rng = np.random.default_rng(2605)
    block = (rng.standard_normal(1 << 26, dtype=np.float32) * 0.02).astype(np.float32)
    block = np.concatenate([block, block])  # any offset can read a whole slice

    def fresh(n, key):
        picks = np.random.default_rng(key).integers(0, 1 << 26, size=(n >> 26) + 1)
        parts, left = [], n
        for off in picks:  # tensors above the block's size are pieced together
            take = min(left, 1 << 26)
            parts.append(block[int(off):int(off) + take])
            left -= take
            if left == 0:
                break
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    tensors = [("model.embed_tokens.weight", (32000, H), None), ("lm_head.weight", (32000, H), None),
               ("model.norm.weight", (H,), "ones")]
    for l in range(L):
        p = f"model.layers.{l}."
        tensors += [(p + "input_layernorm.weight", (H,), "ones"),
                    (p + "post_attention_layernorm.weight", (H,), "ones"),
                    (p + "self_attn.q_proj.weight", (H, H), None),
                    (p + "self_attn.k_proj.weight", (1024, H), None),
                    (p + "self_attn.v_proj.weight", (1024, H), None),
                    (p + "self_attn.o_proj.weight", (H, H), None),
                    (p + "block_sparse_moe.gate.weight", (E, H), None)]
        for e in range(E):
            for w, shape in (("w1", (I, H)), ("w2", (H, I)), ("w3", (I, H))):
                tensors.append((f"{p}block_sparse_moe.experts.{e}.{w}.weight", shape, (l, e, w)))

    def values(name, shape, kind):
        n = int(np.prod(shape))
        if kind == "ones":
            return np.ones(n, np.float32)
        if kind is None:
            return fresh(n, zlib.crc32(name.encode()))
        l, e, w = kind
        own = fresh(n, (l * 1000 + e * 10 + "w1w2w3".index(w)) + 1)
        if l == 0 or e >= 4:
            return own
        src = fresh(n, ((l - 1) * 1000 + ((e + 1) % E) * 10 + "w1w2w3".index(w)) + 1)
        return 0.8 * src + 0.6 * own

    # Shards of about --shard-gb each, tensors in order.
    shards, current, size = [], [], 0
    for t in tensors:
        nbytes = int(np.prod(t[1])) * 2
        if current and size + nbytes > a.shard_gb * 1e9:
            shards.append(current)
            current, size = [], 0
        current.append(t)
        size += nbytes
    shards.append(current)
    os.makedirs(a.out, exist_ok=True)
    weight_map, total = {}, 0
    for k, shard in enumerate(shards):
        name = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        header, offset = {"__metadata__": {"format": "pt"}}, 0
        for tname, shape, _ in shard:
            nbytes = int(np.prod(shape)) * 2
            header[tname] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
            offset += nbytes
            weight_map[tname] = name
        text = json.dumps(header).encode()
        text += b" " * (-len(text) % 8)
        with open(os.path.join(a.out, name), "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for tname, shape, kind in shard:
                f.write(bf16(values(tname, shape, kind)).tobytes())
        total += offset
        print(f"wrote {name}: {offset / 1e9:.2f} GB", flush=True)
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f)
    config = {"model_type": "mixtral", "architectures": ["MixtralForCausalLM"],
              "num_hidden_layers": L, "hidden_size": H, "intermediate_size": I,
              "num_local_experts": E, "num_experts_per_tok": 2, "vocab_size": 32000,
              "num_attention_heads": 32, "num_key_value_heads": 8}
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    print(f"total {total / 1e9:.2f} GB in {len(shards)} shards")


if __name__ == "__main__":
    main()
