#!/usr/bin/python3
"""Writes tiny Hugging Face style MoE checkpoints, one folder per family variant.

    /usr/bin/python3 make_tiny_hf.py OUTDIR [--variants mixtral,olmoe,...] [--n-tokens 300]

Each OUTDIR/<variant>/ gets config.json (the keys the released configs of the family use),
model.safetensors (written by hand here: no safetensors package needed) and tokens.txt (random
token ids). Tensor names are the ones the released checkpoints use. Weights are drawn from fixed
seeds; BF16 variants store the bf16-rounded values (round to nearest even), the F32 ones the
float32 values; deepseek_v3 stores the linear layers of attention and MLPs as F8_E4M3 (float8
e4m3fn bytes encoded here) with one F32 `<name>_scale_inv` per weight_block_size block, as
DeepSeek-V3 ships them, plus a multi-token-prediction layer model.layers.<num_hidden_layers>.*.

Only numpy is needed.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np

# ----------------------------------------------------------------------------------------------
# number formats


def bf16_bits(values):
    """float32 -> bf16 bit patterns (uint16), round to nearest even (NaN not expected)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def bf16_values(bits):
    return (bits.astype(np.uint32) << 16).view(np.float32)


def _fp8_e4m3fn_table():
    """The 256 float8 e4m3fn codes decoded (NaN for 0x7F and 0xFF)."""
    out = np.zeros(256, dtype=np.float64)
    for code in range(256):
        sign = -1.0 if code & 0x80 else 1.0
        exp = (code >> 3) & 0xF
        man = code & 0x7
        if exp == 0xF and man == 0x7:
            out[code] = np.nan
        elif exp == 0:
            out[code] = sign * (man / 8.0) * 2.0 ** -6
        else:
            out[code] = sign * (1.0 + man / 8.0) * 2.0 ** (exp - 7)
    return out


FP8_TABLE = _fp8_e4m3fn_table()
FP8_MAX = 448.0
_POS_CODES = np.arange(0, 0x7F)            # 0x00..0x7E: every finite non-negative value, ascending
_POS_VALUES = FP8_TABLE[_POS_CODES]


def fp8_e4m3fn_encode(values):
    """float -> e4m3fn codes (uint8), round to nearest, ties to even mantissa, saturating at 448."""
    v = np.asarray(values, dtype=np.float64)
    mag = np.minimum(np.abs(v), FP8_MAX)
    hi = np.searchsorted(_POS_VALUES, mag, side="left")          # first value >= mag
    hi = np.clip(hi, 0, len(_POS_VALUES) - 1)
    lo = np.clip(hi - 1, 0, len(_POS_VALUES) - 1)
    d_hi = _POS_VALUES[hi] - mag
    d_lo = mag - _POS_VALUES[lo]
    pick_lo = (d_lo < d_hi) | ((d_lo == d_hi) & ((_POS_CODES[lo] & 1) == 0))
    code = np.where(pick_lo, _POS_CODES[lo], _POS_CODES[hi]).astype(np.uint8)
    code = np.where(np.signbit(v) & (code != 0), code | 0x80, code)
    return code.astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# safetensors writer


DTYPE_SIZE = {"F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1}


def write_safetensors(path, tensors, metadata=None):
    """tensors: dict name -> (dtype string, shape tuple, numpy array of the stored words)."""
    header = {}
    blobs = []
    offset = 0
    # as the safetensors library lays files out: larger element size first, then by name, so that
    # every tensor starts at a multiple of its element size
    for name in sorted(tensors, key=lambda n: (-DTYPE_SIZE[tensors[n][0]], n)):
        dtype, shape, arr = tensors[name]
        arr = np.ascontiguousarray(arr)
        want = {"F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
                "F8_E4M3": np.dtype("u1")}[dtype]
        arr = arr.astype(want, copy=False)
        assert arr.size == int(np.prod(shape)), name
        data = arr.tobytes(order="C")
        assert len(data) == arr.size * DTYPE_SIZE[dtype]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata is not None:
        header["__metadata__"] = metadata
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * ((8 - len(hbytes) % 8) % 8)   # the safetensors library pads the header to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hbytes)))
        f.write(hbytes)
        for b in blobs:
            f.write(b)


# ----------------------------------------------------------------------------------------------
# tensor collection


class Tensors:
    def __init__(self, seed, dtype):
        self.rng = np.random.default_rng(seed)
        self.dtype = dtype             # default storage dtype for float tensors: "BF16" or "F32"
        self.out = {}
        self.fp8_block = None          # (rows, cols) when linear layers go to F8_E4M3
        self.fp8_names = []

    def _store(self, name, values, dtype=None):
        dtype = dtype or self.dtype
        values = np.asarray(values, dtype=np.float32)
        if dtype == "BF16":
            self.out[name] = ("BF16", values.shape, bf16_bits(values))
        elif dtype == "F32":
            self.out[name] = ("F32", values.shape, values)
        elif dtype == "F16":
            self.out[name] = ("F16", values.shape, values.astype(np.float16))
        else:
            raise ValueError(dtype)

    def normal(self, name, shape, std, dtype=None):
        self._store(name, self.rng.standard_normal(shape) * std, dtype)

    def norm(self, name, width):
        self._store(name, 1.0 + 0.1 * self.rng.standard_normal(width))

    def linear(self, name, out_f, in_f, std=0.2, fp8=False):
        """name is the module path; writes name.weight (out_f, in_f)."""
        w = self.rng.standard_normal((out_f, in_f)) * std
        if fp8 and self.fp8_block is not None:
            self._store_fp8(name + ".weight", w)
        else:
            self._store(name + ".weight", w)

    def _store_fp8(self, wname, w):
        br, bc = self.fp8_block
        rows, cols = w.shape
        nr, nc = math.ceil(rows / br), math.ceil(cols / bc)
        scale = np.zeros((nr, nc), dtype=np.float32)
        codes = np.zeros((rows, cols), dtype=np.uint8)
        for i in range(nr):
            for j in range(nc):
                blk = w[i * br:(i + 1) * br, j * bc:(j + 1) * bc]
                s = np.float32(np.abs(blk).max() / FP8_MAX)
                if s == 0:
                    s = np.float32(1.0)
                # a per-block spread of scales, so that a reader that takes one scale for all blocks fails
                s = np.float32(s * (1.0 + 0.5 * ((i + 2 * j) % 3)))
                scale[i, j] = s
                codes[i * br:(i + 1) * br, j * bc:(j + 1) * bc] = fp8_e4m3fn_encode(blk / s)
        self.out[wname] = ("F8_E4M3", (rows, cols), codes)
        self.out[wname + "_scale_inv"] = ("F32", (nr, nc), scale)
        self.fp8_names.append(wname)


def swiglu(t, prefix, hidden, inter, names=("gate_proj", "up_proj", "down_proj"), fp8=False, std=0.2):
    g, u, d = names
    t.linear(f"{prefix}.{g}", inter, hidden, std, fp8)
    t.linear(f"{prefix}.{u}", inter, hidden, std, fp8)
    t.linear(f"{prefix}.{d}", hidden, inter, std, fp8)


# ----------------------------------------------------------------------------------------------
# variants


def cfg_common(model_type, arch, **kw):
    c = {"architectures": [arch], "model_type": model_type}
    c.update(kw)
    return c


def make_mixtral():
    V, H, L, NH, KV, I, E, K = 112, 48, 3, 4, 2, 32, 6, 2
    hd = H // NH
    cfg = cfg_common(
        "mixtral", "MixtralForCausalLM",
        attention_dropout=0.0, bos_token_id=1, eos_token_id=2, hidden_act="silu", hidden_size=H,
        initializer_range=0.02, intermediate_size=I, max_position_embeddings=4096,
        num_attention_heads=NH, num_experts_per_tok=K, num_hidden_layers=L, num_key_value_heads=KV,
        num_local_experts=E, output_router_logits=False, rms_norm_eps=1e-5, rope_theta=1000000.0,
        router_aux_loss_coef=0.02, sliding_window=8, tie_word_embeddings=False, torch_dtype="bfloat16",
        transformers_version="4.36.0.dev0", use_cache=True, vocab_size=V)
    t = Tensors(seed=1001, dtype="BF16")
    t.normal("model.embed_tokens.weight", (V, H), 0.3)
    for l in range(L):
        p = f"model.layers.{l}"
        t.norm(f"{p}.input_layernorm.weight", H)
        t.linear(f"{p}.self_attn.q_proj", NH * hd, H)
        t.linear(f"{p}.self_attn.k_proj", KV * hd, H)
        t.linear(f"{p}.self_attn.v_proj", KV * hd, H)
        t.linear(f"{p}.self_attn.o_proj", H, NH * hd)
        t.norm(f"{p}.post_attention_layernorm.weight", H)
        t.linear(f"{p}.block_sparse_moe.gate", E, H, 0.3)
        for e in range(E):
            swiglu(t, f"{p}.block_sparse_moe.experts.{e}", H, I, names=("w1", "w3", "w2"))
    t.norm("model.norm.weight", H)
    t.normal("lm_head.weight", (V, H), 0.1)
    return cfg, t


def make_olmoe():
    V, H, L, NH, KV, I, E, K = 100, 40, 3, 4, 2, 24, 8, 3
    hd = H // NH
    cfg = cfg_common(
        "olmoe", "OlmoeForCausalLM",
        attention_bias=False, attention_dropout=0.0, clip_qkv=2.0, eos_token_id=3, hidden_act="silu",
        hidden_size=H, initializer_range=0.02, intermediate_size=I, max_position_embeddings=4096,
        norm_topk_prob=False, num_attention_heads=NH, num_experts=E, num_experts_per_tok=K,
        num_hidden_layers=L, num_key_value_heads=KV, output_router_logits=False, pad_token_id=1,
        rms_norm_eps=1e-5, rope_scaling=None, rope_theta=10000.0, router_aux_loss_coef=0.01,
        tie_word_embeddings=False, torch_dtype="float32", transformers_version="4.43.0.dev0",
        use_cache=True, vocab_size=V)
    t = Tensors(seed=1002, dtype="F32")
    t.normal("model.embed_tokens.weight", (V, H), 0.3)
    for l in range(L):
        p = f"model.layers.{l}"
        t.norm(f"{p}.input_layernorm.weight", H)
        t.linear(f"{p}.self_attn.q_proj", NH * hd, H)
        t.linear(f"{p}.self_attn.k_proj", KV * hd, H)
        t.linear(f"{p}.self_attn.v_proj", KV * hd, H)
        t.linear(f"{p}.self_attn.o_proj", H, NH * hd)
        t.norm(f"{p}.self_attn.q_norm.weight", NH * hd)   # = hidden_size
        t.norm(f"{p}.self_attn.k_norm.weight", KV * hd)   # = (hidden/heads) * kv_heads
        t.norm(f"{p}.post_attention_layernorm.weight", H)
        t.linear(f"{p}.mlp.gate", E, H, 0.3)
        for e in range(E):
            swiglu(t, f"{p}.mlp.experts.{e}", H, I)
    t.norm("model.norm.weight", H)
    t.normal("lm_head.weight", (V, H), 0.1)
    return cfg, t


def make_qwen2_moe():
    V, H, L, NH, KV, I, MI, SI, E, K = 128, 32, 4, 4, 4, 40, 16, 24, 6, 2
    hd = H // NH
    step, mlp_only = 2, [3]
    cfg = cfg_common(
        "qwen2_moe", "Qwen2MoeForCausalLM",
        attention_dropout=0.0, bos_token_id=5, eos_token_id=5, hidden_act="silu", hidden_size=H,
        initializer_range=0.02, intermediate_size=I, max_position_embeddings=8192, max_window_layers=21,
        num_attention_heads=NH, num_hidden_layers=L, num_key_value_heads=KV, rms_norm_eps=1e-6,
        rope_theta=1000000.0, sliding_window=32768, tie_word_embeddings=False, torch_dtype="bfloat16",
        transformers_version="4.40.0.dev0", use_cache=True, use_sliding_window=False, vocab_size=V,
        decoder_sparse_step=step, moe_intermediate_size=MI, shared_expert_intermediate_size=SI,
        num_experts_per_tok=K, num_experts=E, norm_topk_prob=False, output_router_logits=False,
        router_aux_loss_coef=0.001, mlp_only_layers=mlp_only)
    t = Tensors(seed=1003, dtype="BF16")
    t.normal("model.embed_tokens.weight", (V, H), 0.3)
    for l in range(L):
        p = f"model.layers.{l}"
        t.norm(f"{p}.input_layernorm.weight", H)
        for nm, width in (("q_proj", NH * hd), ("k_proj", KV * hd), ("v_proj", KV * hd)):
            t.linear(f"{p}.self_attn.{nm}", width, H)
            t.normal(f"{p}.self_attn.{nm}.bias", (width,), 0.1)
        t.linear(f"{p}.self_attn.o_proj", H, NH * hd)
        t.norm(f"{p}.post_attention_layernorm.weight", H)
        moe = (l not in mlp_only) and E > 0 and (l + 1) % step == 0
        if moe:
            t.linear(f"{p}.mlp.gate", E, H, 0.3)
            for e in range(E):
                swiglu(t, f"{p}.mlp.experts.{e}", H, MI)
            swiglu(t, f"{p}.mlp.shared_expert", H, SI)
            t.linear(f"{p}.mlp.shared_expert_gate", 1, H, 0.3)
        else:
            swiglu(t, f"{p}.mlp", H, I)
    t.norm("model.norm.weight", H)
    t.normal("lm_head.weight", (V, H), 0.1)
    return cfg, t


def make_qwen3_moe():
    V, H, L, NH, KV, HD, I, MI, E, K = 120, 32, 4, 4, 2, 12, 48, 20, 8, 3
    mlp_only = [2]
    cfg = cfg_common(
        "qwen3_moe", "Qwen3MoeForCausalLM",
        attention_bias=False, attention_dropout=0.0, bos_token_id=6, eos_token_id=7,
        decoder_sparse_step=1, head_dim=HD, hidden_act="silu", hidden_size=H, initializer_range=0.02,
        intermediate_size=I, max_position_embeddings=40960, max_window_layers=L, mlp_only_layers=mlp_only,
        moe_intermediate_size=MI, norm_topk_prob=True, num_attention_heads=NH, num_experts=E,
        num_experts_per_tok=K, num_hidden_layers=L, num_key_value_heads=KV, output_router_logits=False,
        rms_norm_eps=1e-6, rope_scaling=None, rope_theta=1000000.0, router_aux_loss_coef=0.001,
        sliding_window=None, tie_word_embeddings=True, torch_dtype="float32",
        transformers_version="4.51.0", use_cache=True, use_sliding_window=False, vocab_size=V)
    t = Tensors(seed=1004, dtype="F32")
    t.normal("model.embed_tokens.weight", (V, H), 0.12)   # also the (tied) output head
    for l in range(L):
        p = f"model.layers.{l}"
        t.norm(f"{p}.input_layernorm.weight", H)
        t.linear(f"{p}.self_attn.q_proj", NH * HD, H)
        t.linear(f"{p}.self_attn.k_proj", KV * HD, H)
        t.linear(f"{p}.self_attn.v_proj", KV * HD, H)
        t.linear(f"{p}.self_attn.o_proj", H, NH * HD)
        t.norm(f"{p}.self_attn.q_norm.weight", HD)
        t.norm(f"{p}.self_attn.k_norm.weight", HD)
        t.norm(f"{p}.post_attention_layernorm.weight", H)
        if l not in mlp_only:
            t.linear(f"{p}.mlp.gate", E, H, 0.3)
            for e in range(E):
                swiglu(t, f"{p}.mlp.experts.{e}", H, MI)
        else:
            swiglu(t, f"{p}.mlp", H, I)
    t.norm("model.norm.weight", H)
    # tie_word_embeddings: no lm_head.weight in the file; the head is the embedding
    return cfg, t


def _deepseek_layers(t, cfg, n_layers, fp8=False, with_bias=False, mtp=False):
    H = cfg["hidden_size"]
    NH = cfg["num_attention_heads"]
    nope, rope, vd = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"]
    qlr, kvlr = cfg["q_lora_rank"], cfg["kv_lora_rank"]
    E, MI, I = cfg["n_routed_experts"], cfg["moe_intermediate_size"], cfg["intermediate_size"]
    nsh = cfg["n_shared_experts"]
    for l in n_layers:
        p = f"model.layers.{l}"
        t.norm(f"{p}.input_layernorm.weight", H)
        if qlr is None:
            t.linear(f"{p}.self_attn.q_proj", NH * (nope + rope), H, 0.2, fp8)
        else:
            t.linear(f"{p}.self_attn.q_a_proj", qlr, H, 0.2, fp8)
            t.norm(f"{p}.self_attn.q_a_layernorm.weight", qlr)
            t.linear(f"{p}.self_attn.q_b_proj", NH * (nope + rope), qlr, 0.2, fp8)
        t.linear(f"{p}.self_attn.kv_a_proj_with_mqa", kvlr + rope, H, 0.2, fp8)
        t.norm(f"{p}.self_attn.kv_a_layernorm.weight", kvlr)
        t.linear(f"{p}.self_attn.kv_b_proj", NH * (nope + vd), kvlr, 0.2, fp8)
        t.linear(f"{p}.self_attn.o_proj", H, NH * vd, 0.2, fp8)
        t.norm(f"{p}.post_attention_layernorm.weight", H)
        if l >= cfg["first_k_dense_replace"]:
            t.linear(f"{p}.mlp.gate", E, H, 0.3)   # the router stays BF16 in the FP8 release
            if with_bias:
                vals = t.rng.uniform(-0.05, 0.15, size=E)
                t._store(f"{p}.mlp.gate.e_score_correction_bias", vals, "F32")
            for e in range(E):
                swiglu(t, f"{p}.mlp.experts.{e}", H, MI, fp8=fp8)
            swiglu(t, f"{p}.mlp.shared_experts", H, MI * nsh, fp8=fp8)
        else:
            swiglu(t, f"{p}.mlp", H, I, fp8=fp8)
        if mtp:
            V = cfg["vocab_size"]
            t.normal(f"{p}.embed_tokens.weight", (V, H), 0.3)
            t.norm(f"{p}.enorm.weight", H)
            t.norm(f"{p}.hnorm.weight", H)
            t.linear(f"{p}.eh_proj", H, 2 * H, 0.2)
            t.norm(f"{p}.shared_head.norm.weight", H)
            t.normal(f"{p}.shared_head.head.weight", (V, H), 0.1)


def make_deepseek_v2():
    V, H, L = 104, 48, 4
    cfg = cfg_common(
        "deepseek_v2", "DeepseekV2ForCausalLM",
        attention_bias=False, attention_dropout=0.0, aux_loss_alpha=0.001, bos_token_id=0, eos_token_id=1,
        first_k_dense_replace=1, hidden_act="silu", hidden_size=H, initializer_range=0.02,
        intermediate_size=40, kv_lora_rank=32, max_position_embeddings=256, moe_intermediate_size=16,
        moe_layer_freq=1, n_group=4, n_routed_experts=8, n_shared_experts=2, norm_topk_prob=False,
        num_attention_heads=4, num_experts_per_tok=2, num_hidden_layers=L, num_key_value_heads=4,
        pretraining_tp=1, q_lora_rank=24, qk_nope_head_dim=16, qk_rope_head_dim=8, rms_norm_eps=1e-6,
        rope_scaling={"beta_fast": 32, "beta_slow": 1, "factor": 4, "mscale": 0.707,
                      "mscale_all_dim": 0.707, "original_max_position_embeddings": 64, "type": "yarn"},
        rope_theta=10000, routed_scaling_factor=1.5, scoring_func="softmax", seq_aux=True,
        tie_word_embeddings=False, topk_group=2, topk_method="group_limited_greedy",
        torch_dtype="bfloat16", transformers_version="4.39.3", use_cache=True, v_head_dim=12,
        vocab_size=V)
    t = Tensors(seed=1005, dtype="BF16")
    t.normal("model.embed_tokens.weight", (V, H), 0.3)
    _deepseek_layers(t, cfg, range(L))
    t.norm("model.norm.weight", H)
    t.normal("lm_head.weight", (V, H), 0.1)
    return cfg, t


def make_deepseek_v2_lite():
    V, H, L = 96, 40, 3
    cfg = cfg_common(
        "deepseek_v2", "DeepseekV2ForCausalLM",
        attention_bias=False, attention_dropout=0.0, aux_loss_alpha=0.001, bos_token_id=0, eos_token_id=1,
        first_k_dense_replace=1, hidden_act="silu", hidden_size=H, initializer_range=0.02,
        intermediate_size=32, kv_lora_rank=24, max_position_embeddings=2048, moe_intermediate_size=16,
        moe_layer_freq=1, n_group=1, n_routed_experts=6, n_shared_experts=2, norm_topk_prob=False,
        num_attention_heads=4, num_experts_per_tok=2, num_hidden_layers=L, num_key_value_heads=4,
        pretraining_tp=1, q_lora_rank=None, qk_nope_head_dim=12, qk_rope_head_dim=8, rms_norm_eps=1e-6,
        rope_scaling=None, rope_theta=10000, routed_scaling_factor=1.0, scoring_func="softmax",
        seq_aux=True, tie_word_embeddings=False, topk_group=1, topk_method="greedy",
        torch_dtype="bfloat16", transformers_version="4.33.1", use_cache=True, v_head_dim=12,
        vocab_size=V)
    t = Tensors(seed=1006, dtype="BF16")
    t.normal("model.embed_tokens.weight", (V, H), 0.3)
    _deepseek_layers(t, cfg, range(L))
    t.norm("model.norm.weight", H)
    t.normal("lm_head.weight", (V, H), 0.1)
    return cfg, t


def make_deepseek_v3():
    V, H, L = 128, 40, 3
    cfg = cfg_common(
        "deepseek_v3", "DeepseekV3ForCausalLM",
        attention_bias=False, attention_dropout=0.0, aux_loss_alpha=0.001, bos_token_id=0, eos_token_id=1,
        ep_size=1, first_k_dense_replace=1, hidden_act="silu", hidden_size=H, initializer_range=0.02,
        intermediate_size=48, kv_lora_rank=24, max_position_embeddings=256, moe_intermediate_size=20,
        moe_layer_freq=1, n_group=4, n_routed_experts=8, n_shared_experts=1, norm_topk_prob=True,
        num_attention_heads=4, num_experts_per_tok=3, num_hidden_layers=L, num_key_value_heads=4,
        num_nextn_predict_layers=1, pretraining_tp=1, q_lora_rank=20, qk_nope_head_dim=16,
        qk_rope_head_dim=8,
        quantization_config={"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                             "weight_block_size": [16, 16]},
        rms_norm_eps=1e-6,
        rope_scaling={"beta_fast": 32, "beta_slow": 1, "factor": 8, "mscale": 1.0, "mscale_all_dim": 0.8,
                      "original_max_position_embeddings": 32, "type": "yarn"},
        rope_theta=10000, routed_scaling_factor=2.5, scoring_func="sigmoid", seq_aux=True,
        tie_word_embeddings=False, topk_group=2, topk_method="noaux_tc", torch_dtype="bfloat16",
        transformers_version="4.33.1", use_cache=True, v_head_dim=16, vocab_size=V)
    t = Tensors(seed=1007, dtype="BF16")
    t.fp8_block = tuple(cfg["quantization_config"]["weight_block_size"])
    t.normal("model.embed_tokens.weight", (V, H), 0.3)
    _deepseek_layers(t, cfg, range(L), fp8=True, with_bias=True)
    # the multi-token-prediction layer (index num_hidden_layers), which the model ignores
    _deepseek_layers(t, cfg, [L], fp8=True, with_bias=True, mtp=True)
    t.norm("model.norm.weight", H)
    t.normal("lm_head.weight", (V, H), 0.1)
    return cfg, t


VARIANTS = {
    "mixtral": make_mixtral,
    "olmoe": make_olmoe,
    "qwen2_moe": make_qwen2_moe,
    "qwen3_moe": make_qwen3_moe,
    "deepseek_v2": make_deepseek_v2,
    "deepseek_v2_lite": make_deepseek_v2_lite,
    "deepseek_v3": make_deepseek_v3,
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--n-tokens", type=int, default=300)
    a = ap.parse_args()
    for i, name in enumerate(a.variants.split(",")):
        cfg, t = VARIANTS[name]()
        d = os.path.join(a.outdir, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
            f.write("\n")
        write_safetensors(os.path.join(d, "model.safetensors"), t.out, {"format": "pt"})
        rng = np.random.default_rng(7000 + list(VARIANTS).index(name))
        ids = rng.integers(0, cfg["vocab_size"], size=a.n_tokens)
        with open(os.path.join(d, "tokens.txt"), "w") as f:
            f.write(" ".join(str(int(x)) for x in ids) + "\n")
        dtypes = sorted({v[0] for v in t.out.values()})
        print(f"{name}: {len(t.out)} tensors ({', '.join(dtypes)}) -> {d}")


if __name__ == "__main__":
    sys.exit(main())
