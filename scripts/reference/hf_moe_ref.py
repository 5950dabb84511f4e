#!/usr/bin/python3
"""Independent fp32 reference forward pass for Hugging Face MoE checkpoints.

    /usr/bin/python3 hf_moe_ref.py --checkpoint DIR --token-ids FILE --seq S [--out expected.json]

Families (config.json "model_type"): mixtral, olmoe, qwen2_moe, qwen3_moe, deepseek_v2, deepseek_v3.
Reads config.json and model.safetensors (or model.safetensors.index.json shards) itself: BF16, F16,
F32 and F8_E4M3 (+ `<weight>_scale_inv` blocks of quantization_config.weight_block_size) become fp32
torch tensors. Every computation runs in fp32, following transformers' modeling code (see README.md
for the function each formula comes from).

Evaluation (UniPool SPEC section 7 on token ids): windows start at 0, S, 2S, ...; a window takes
inputs ids[i..i+S) and targets ids[i+1..i+S+1); a last window without S+1 ids is dropped; each window
is an independent sequence with positions 0..S-1.

Output JSON: loss (mean CE, nats), n_targets, accuracy, moe_layers, top_k, n_experts, counts,
routes, margins (+ group_margins for grouped routers, + diagnostics). logits_first.json (first
window, first 4 positions) is written next to --out (or in the current folder).
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

torch.set_grad_enabled(False)
torch.set_default_dtype(torch.float32)

# ----------------------------------------------------------------------------------------------
# safetensors reading


def _fp8_e4m3fn_lut():
    lut = np.zeros(256, dtype=np.float32)
    for code in range(256):
        sign = -1.0 if code & 0x80 else 1.0
        exp = (code >> 3) & 0xF
        man = code & 0x7
        if exp == 0xF and man == 0x7:
            lut[code] = np.nan
        elif exp == 0:
            lut[code] = sign * (man / 8.0) * 2.0 ** -6
        else:
            lut[code] = sign * (1.0 + man / 8.0) * 2.0 ** (exp - 7)
    return lut


def _fp8_e5m2_lut():
    lut = np.zeros(256, dtype=np.float32)
    for code in range(256):
        sign = -1.0 if code & 0x80 else 1.0
        exp = (code >> 2) & 0x1F
        man = code & 0x3
        if exp == 0x1F:
            lut[code] = np.nan if man else sign * np.inf
        elif exp == 0:
            lut[code] = sign * (man / 4.0) * 2.0 ** -14
        else:
            lut[code] = sign * (1.0 + man / 4.0) * 2.0 ** (exp - 15)
    return lut


FP8_LUT = {"F8_E4M3": _fp8_e4m3fn_lut(), "F8_E5M2": _fp8_e5m2_lut()}


def read_safetensors_file(path):
    """name -> float32 numpy array (raw FP8 values decoded, not yet scaled)."""
    with open(path, "rb") as f:
        buf = f.read()
    (hlen,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8:8 + hlen].decode("utf-8"))
    base = 8 + hlen
    out, dtypes = {}, {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt, shape = info["dtype"], tuple(info["shape"])
        b, e = info["data_offsets"]
        raw = buf[base + b:base + e]
        n = int(np.prod(shape)) if shape else 1
        size = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1,
                "F8_E4M3": 1, "F8_E5M2": 1}.get(dt)
        if size is not None and (len(raw) != n * size or base + e > len(buf)):
            raise ValueError(f"{path}: tensor {name}: {len(raw)} bytes for shape {shape} of {dt}")
        if dt == "F32":
            a = np.frombuffer(raw, dtype="<f4", count=n)
        elif dt == "F16":
            a = np.frombuffer(raw, dtype="<f2", count=n).astype(np.float32)
        elif dt == "BF16":
            a = (np.frombuffer(raw, dtype="<u2", count=n).astype(np.uint32) << 16).view(np.float32)
        elif dt == "F64":
            a = np.frombuffer(raw, dtype="<f8", count=n).astype(np.float32)
        elif dt in FP8_LUT:
            a = FP8_LUT[dt][np.frombuffer(raw, dtype=np.uint8, count=n)]
        elif dt in ("I64", "I32", "U8", "BOOL"):
            a = np.frombuffer(raw, dtype={"I64": "<i8", "I32": "<i4", "U8": "u1", "BOOL": "u1"}[dt],
                              count=n).astype(np.float32)
        else:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {dt}")
        out[name] = np.array(a, dtype=np.float32).reshape(shape)
        dtypes[name] = dt
    return out, dtypes


def load_checkpoint(ckpt_dir, cfg):
    idx = os.path.join(ckpt_dir, "model.safetensors.index.json")
    files = []
    if os.path.exists(idx):
        with open(idx) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    elif os.path.exists(os.path.join(ckpt_dir, "model.safetensors")):
        files = ["model.safetensors"]
    else:
        files = sorted(x for x in os.listdir(ckpt_dir) if x.endswith(".safetensors"))
    arrays, dtypes = {}, {}
    for fn in files:
        a, d = read_safetensors_file(os.path.join(ckpt_dir, fn))
        arrays.update(a)
        dtypes.update(d)
    qc = cfg.get("quantization_config") or {}
    block = qc.get("weight_block_size")
    weights = {}
    n_fp8 = 0
    for name, a in arrays.items():
        if name.endswith("_scale_inv"):
            continue
        if dtypes[name] in FP8_LUT:
            sname = name + "_scale_inv"
            if sname not in arrays:
                raise ValueError(f"FP8 tensor {name} has no {sname}")
            s = arrays[sname]
            rows, cols = a.shape
            if block is None:
                br, bc = math.ceil(rows / s.shape[0]), math.ceil(cols / s.shape[1])
            else:
                br, bc = block
            if s.shape != (math.ceil(rows / br), math.ceil(cols / bc)):
                raise ValueError(f"{sname} has shape {s.shape}, blocks {br}x{bc} of {a.shape} need "
                                 f"{(math.ceil(rows / br), math.ceil(cols / bc))}")
            full = np.repeat(np.repeat(s, br, axis=0), bc, axis=1)[:rows, :cols]
            a = (a * full).astype(np.float32)      # W = fp8 value * scale_inv of its block
            n_fp8 += 1
        weights[name] = torch.from_numpy(np.ascontiguousarray(a))
    return weights, dtypes, n_fp8


# ----------------------------------------------------------------------------------------------
# building blocks (fp32)


def rms_norm(x, w, eps):
    # LlamaRMSNorm / MixtralRMSNorm: variance in fp32, x * rsqrt(var + eps), times weight
    var = x.pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def linear(x, w, b=None):
    y = x.matmul(w.t())
    return y if b is None else y + b


def silu(x):
    return x * torch.sigmoid(x)


def swiglu(x, W, prefix, names=("gate_proj", "up_proj", "down_proj")):
    g, u, d = names
    return linear(silu(linear(x, W[f"{prefix}.{g}.weight"])) * linear(x, W[f"{prefix}.{u}.weight"]),
                  W[f"{prefix}.{d}.weight"])


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope_half(x, cos_h, sin_h):
    """rotate-half RoPE; cos_h/sin_h: (S, dim/2) already times attention_factor; x (..., S, dim)."""
    cos = torch.cat((cos_h, cos_h), dim=-1)
    sin = torch.cat((sin_h, sin_h), dim=-1)
    return x * cos + rotate_half(x) * sin


def rope_pairs(x, cos_h, sin_h):
    """DeepSeek's RoPE on adjacent pairs (2i, 2i+1) (a complex multiply); same output layout."""
    xe, xo = x[..., 0::2], x[..., 1::2]
    oe = xe * cos_h - xo * sin_h
    oo = xe * sin_h + xo * cos_h
    return torch.stack((oe, oo), dim=-1).flatten(-2)


def get_mscale(scale, mscale=1.0):
    # modeling_rope_utils._compute_yarn_parameters.get_mscale / deepseek yarn_get_mscale
    if scale <= 1:
        return 1.0
    return 0.1 * mscale * math.log(scale) + 1.0


def rope_params(cfg, family):
    """(rope dict, rope_type, theta) from config.json in either the rope_scaling or rope_parameters form."""
    rp = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    rp = dict(rp)
    rtype = rp.get("rope_type", rp.get("type", "default")) or "default"
    default_theta = {"mixtral": 1e6}.get(family, 10000.0)
    theta = rp.get("rope_theta", cfg.get("rope_theta", default_theta))
    return rp, rtype, float(theta)


def inv_freq_and_factor(cfg, family, dim):
    """inverse frequencies (dim/2,) fp32 and attention_factor, as modeling_rope_utils computes them."""
    rp, rtype, base = rope_params(cfg, family)
    if rtype == "default":
        inv = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).to(torch.float32) / dim))
        return inv, 1.0, {"rope_type": "default", "theta": base}
    if rtype != "yarn":
        raise NotImplementedError(f"rope type {rtype!r} is not implemented in this reference")
    factor = rp.get("factor")
    orig = rp.get("original_max_position_embeddings") or cfg["max_position_embeddings"]
    if factor is None:
        factor = cfg["max_position_embeddings"] / orig
    factor = float(factor)
    attention_factor = rp.get("attention_factor")
    mscale, mscale_all_dim = rp.get("mscale"), rp.get("mscale_all_dim")
    if attention_factor is None:
        if mscale and mscale_all_dim:
            attention_factor = float(get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim))
        else:
            attention_factor = get_mscale(factor)
    beta_fast = rp.get("beta_fast") or 32
    beta_slow = rp.get("beta_slow") or 1
    truncate = rp.get("truncate", True)

    def corr_dim(num_rot):
        return (dim * math.log(orig / (num_rot * 2 * math.pi))) / (2 * math.log(base))

    low, high = corr_dim(beta_fast), corr_dim(beta_slow)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, dim - 1)
    if low == high:
        high += 0.001
    ramp = torch.clamp((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low), 0, 1)
    pos_freqs = base ** (torch.arange(0, dim, 2).to(torch.float32) / dim)
    inv_extra = 1.0 / pos_freqs
    inv_inter = 1.0 / (factor * pos_freqs)
    extra_factor = 1 - ramp
    inv = inv_inter * (1 - extra_factor) + inv_extra * extra_factor
    info = {"rope_type": "yarn", "theta": base, "factor": factor, "original_max_position_embeddings": orig,
            "attention_factor": attention_factor, "low": low, "high": high,
            "inv_freq": [float(v) for v in inv], "inv_freq_default": [float(v) for v in inv_extra]}
    return inv, float(attention_factor), info


def cos_sin(inv_freq, S, attention_factor):
    pos = torch.arange(S, dtype=torch.float32)
    freqs = torch.outer(pos, inv_freq)         # (S, dim/2), fp32
    return freqs.cos() * attention_factor, freqs.sin() * attention_factor


def attn_mask(S, window=None):
    i = torch.arange(S)[:, None]
    j = torch.arange(S)[None, :]
    ok = j <= i                                  # masking_utils.causal_mask_function
    if window is not None:
        ok = ok & (j > i - window)               # masking_utils.sliding_window_overlay
    return ok


def sdpa(q, k, v, scaling, ok):
    """eager_attention_forward: q (B,H,S,d), k/v (B,H,S,d'); fp32 softmax."""
    s = q.matmul(k.transpose(-1, -2)) * scaling
    s = s.masked_fill(~ok, float("-inf"))
    p = torch.softmax(s, dim=-1)
    return p.matmul(v)


def repeat_kv(x, n):
    if n == 1:
        return x
    B, KV, S, d = x.shape
    return x[:, :, None].expand(B, KV, n, S, d).reshape(B, KV * n, S, d)


# ----------------------------------------------------------------------------------------------
# the model


class Model:
    def __init__(self, ckpt_dir, overrides=None):
        with open(os.path.join(ckpt_dir, "config.json")) as f:
            self.cfg = json.load(f)
        self.cfg.update(overrides or {})
        self.family = self.cfg["model_type"]
        if self.family not in ("mixtral", "olmoe", "qwen2_moe", "qwen3_moe", "deepseek_v2", "deepseek_v3"):
            raise NotImplementedError(f"model_type {self.family!r}")
        self.W, self.dtypes, self.n_fp8 = load_checkpoint(ckpt_dir, self.cfg)
        self.legacy_v2_scaling = False
        self.ablate = set()
        self.diag = {"clip_qkv_clamped": 0, "clip_qkv_total": 0, "group_fill_differs": 0}
        self._setup()

    # ---- configuration --------------------------------------------------------------------
    def _setup(self):
        c, fam = self.cfg, self.family
        self.L = c["num_hidden_layers"]
        self.H = c["hidden_size"]
        self.NH = c["num_attention_heads"]
        self.KV = c.get("num_key_value_heads") or self.NH
        self.eps = c.get("rms_norm_eps", 1e-5 if fam in ("mixtral", "olmoe") else 1e-6)
        self.mla = fam in ("deepseek_v2", "deepseek_v3")
        if fam == "olmoe":
            self.hd = self.H // self.NH      # OlmoeConfig has no head_dim; q_norm/k_norm widths assume it
        else:
            self.hd = c.get("head_dim") or self.H // self.NH
        if self.mla:
            self.rope_dim = c["qk_rope_head_dim"]
        else:
            self.rope_dim = int(self.hd * (c.get("partial_rotary_factor") or 1.0))
        # MoE layers and router parameters
        if fam == "mixtral":
            self.E, self.K = c["num_local_experts"], c["num_experts_per_tok"]
            self.moe_layers = list(range(self.L))
        elif fam == "olmoe":
            self.E, self.K = c["num_experts"], c["num_experts_per_tok"]
            self.moe_layers = list(range(self.L))
        elif fam in ("qwen2_moe", "qwen3_moe"):
            self.E, self.K = c["num_experts"], c["num_experts_per_tok"]
            mlp_only = c.get("mlp_only_layers") or []
            step = c.get("decoder_sparse_step", 1)
            self.moe_layers = [l for l in range(self.L)
                               if l not in mlp_only and self.E > 0 and (l + 1) % step == 0]
        else:
            self.E, self.K = c["n_routed_experts"], c["num_experts_per_tok"]
            fk = c.get("first_k_dense_replace", 0)
            self.moe_layers = [l for l in range(self.L) if l >= fk] if self.E else []
        # attention windows per layer
        self.windows = [None] * self.L
        if fam == "mixtral" and c.get("sliding_window") is not None:
            self.windows = [c["sliding_window"]] * self.L
        elif fam == "qwen3_moe" and c.get("use_sliding_window") and c.get("sliding_window") is not None:
            self.windows = [c["sliding_window"]] * self.L
        elif fam == "qwen2_moe" and c.get("use_sliding_window"):
            types = c.get("layer_types") or [
                "sliding_attention" if ((i + 1) % 2 and i < c.get("max_window_layers", 28)) else "full_attention"
                for i in range(self.L)]
            self.windows = [c["sliding_window"] if t == "sliding_attention" else None for t in types]
        # rope
        self.inv_freq, self.attn_factor, self.rope_info = inv_freq_and_factor(c, fam, self.rope_dim)
        # attention softmax scale
        if self.mla:
            self.qk_head = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
            self.scaling = self.qk_head ** -0.5
            rp, rtype, _ = rope_params(c, fam)
            self.softmax_mscale = 1.0
            if rtype != "default":
                mad = rp.get("mscale_all_dim", 0)
                if mad:
                    self.softmax_mscale = get_mscale(float(rp["factor"]), mad)
            self.scaling_no_mscale = self.scaling
            self.scaling = self.scaling * self.softmax_mscale ** 2
            self.rope_interleave = True if fam == "deepseek_v2" else c.get("rope_interleave", True)
            if self.KV != self.NH:
                raise ValueError("MLA needs num_key_value_heads == num_attention_heads")
        else:
            self.scaling = self.hd ** -0.5
        self.tied = bool(c.get("tie_word_embeddings", False))   # every family's config class defaults False
        self._check_weights()

    def _check_weights(self):
        W, fam = self.W, self.family
        need = ["model.embed_tokens.weight", "model.norm.weight"]
        if not self.tied:
            need.append("lm_head.weight")
        for l in range(self.L):
            p = f"model.layers.{l}"
            need += [f"{p}.input_layernorm.weight", f"{p}.post_attention_layernorm.weight"]
            if l in self.moe_layers:
                if fam == "mixtral":
                    need.append(f"{p}.block_sparse_moe.gate.weight")
                    need += [f"{p}.block_sparse_moe.experts.{e}.{n}.weight" for e in range(self.E)
                             for n in ("w1", "w2", "w3")]
                else:
                    need.append(f"{p}.mlp.gate.weight")
                    need += [f"{p}.mlp.experts.{e}.{n}.weight" for e in range(self.E)
                             for n in ("gate_proj", "up_proj", "down_proj")]
            else:
                need.append(f"{p}.mlp.gate_proj.weight")
        missing = [n for n in need if n not in W]
        if missing:
            raise ValueError(f"missing tensors: {missing[:8]}{' ...' if len(missing) > 8 else ''}")
        if fam == "qwen2_moe" and self.cfg.get("qkv_bias", True):
            for l in range(self.L):
                for n in ("q_proj", "k_proj", "v_proj"):
                    if f"model.layers.{l}.self_attn.{n}.bias" not in W:
                        raise ValueError(f"qwen2_moe with qkv_bias needs model.layers.{l}.self_attn.{n}.bias")

    # ---- attention ------------------------------------------------------------------------
    def _bias(self, name):
        c, fam = self.cfg, self.family
        if fam == "qwen2_moe":
            use = c.get("qkv_bias", True) and not name.endswith("o_proj")
        elif fam in ("olmoe", "qwen3_moe"):
            use = bool(c.get("attention_bias", False))
        else:
            use = False
        if use:
            return self.W[name + ".bias"]
        return None

    def attention(self, l, x, cs, ok):
        if self.mla:
            return self.mla_attention(l, x, cs, ok)
        W, fam = self.W, self.family
        p = f"model.layers.{l}.self_attn"
        B, S, _ = x.shape
        q = linear(x, W[f"{p}.q_proj.weight"], self._bias(f"{p}.q_proj"))
        k = linear(x, W[f"{p}.k_proj.weight"], self._bias(f"{p}.k_proj"))
        v = linear(x, W[f"{p}.v_proj.weight"], self._bias(f"{p}.v_proj"))
        if fam == "olmoe":
            # OlmoeAttention.forward: q_norm over the whole q projection, k_norm over the whole k
            q = rms_norm(q, W[f"{p}.q_norm.weight"], self.eps)
            k = rms_norm(k, W[f"{p}.k_norm.weight"], self.eps)
            clip = self.cfg.get("clip_qkv")
            if clip is not None and "clip" not in self.ablate:
                for t in (q, k, v):
                    self.diag["clip_qkv_clamped"] += int((t.abs() > clip).sum())
                    self.diag["clip_qkv_total"] += t.numel()
                q, k, v = q.clamp(-clip, clip), k.clamp(-clip, clip), v.clamp(-clip, clip)
        q = q.view(B, S, self.NH, self.hd)
        k = k.view(B, S, self.KV, self.hd)
        v = v.view(B, S, self.KV, self.hd)
        if fam == "qwen3_moe":
            # Qwen3Attention.forward: RMSNorm per head (width head_dim) after the head split, before RoPE
            q = rms_norm(q, W[f"{p}.q_norm.weight"], self.eps)
            k = rms_norm(k, W[f"{p}.k_norm.weight"], self.eps)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        cos_h, sin_h = cs
        if self.rope_dim == self.hd:
            q, k = rope_half(q, cos_h, sin_h), rope_half(k, cos_h, sin_h)
        else:  # partial rotary (not used by these families' released configs)
            r = self.rope_dim
            q = torch.cat((rope_half(q[..., :r], cos_h, sin_h), q[..., r:]), -1)
            k = torch.cat((rope_half(k[..., :r], cos_h, sin_h), k[..., r:]), -1)
        g = self.NH // self.KV
        o = sdpa(q, repeat_kv(k, g), repeat_kv(v, g), self.scaling, ok)
        o = o.transpose(1, 2).reshape(B, S, self.NH * self.hd)
        return linear(o, W[f"{p}.o_proj.weight"], self._bias(f"{p}.o_proj"))

    def mla_attention(self, l, x, cs, ok):
        W, c = self.W, self.cfg
        p = f"model.layers.{l}.self_attn"
        B, S, _ = x.shape
        nope, rope, vd = c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
        kvlr = c["kv_lora_rank"]
        ab = bool(c.get("attention_bias", False))
        if c.get("q_lora_rank") is None:
            q = linear(x, W[f"{p}.q_proj.weight"])
        else:
            qa = linear(x, W[f"{p}.q_a_proj.weight"], W[f"{p}.q_a_proj.bias"] if ab else None)
            # DeepseekV2RMSNorm(config.q_lora_rank): the class default eps 1e-6, not rms_norm_eps
            q = linear(rms_norm(qa, W[f"{p}.q_a_layernorm.weight"], 1e-6), W[f"{p}.q_b_proj.weight"])
        q = q.view(B, S, self.NH, nope + rope).transpose(1, 2)
        q_nope, q_pe = q[..., :nope], q[..., nope:]
        ckv = linear(x, W[f"{p}.kv_a_proj_with_mqa.weight"], W[f"{p}.kv_a_proj_with_mqa.bias"] if ab else None)
        c_kv, k_pe = ckv[..., :kvlr], ckv[..., kvlr:]
        kv = linear(rms_norm(c_kv, W[f"{p}.kv_a_layernorm.weight"], 1e-6), W[f"{p}.kv_b_proj.weight"])
        kv = kv.view(B, S, self.NH, nope + vd).transpose(1, 2)
        k_nope, v = kv[..., :nope], kv[..., nope:]
        k_pe = k_pe.view(B, 1, S, rope)
        cos_h, sin_h = cs
        if self.rope_interleave:
            q_pe, k_pe = rope_pairs(q_pe, cos_h, sin_h), rope_pairs(k_pe, cos_h, sin_h)
        else:
            q_pe, k_pe = rope_half(q_pe, cos_h, sin_h), rope_half(k_pe, cos_h, sin_h)
        k_pe = k_pe.expand(B, self.NH, S, rope)
        qs = torch.cat((q_nope, q_pe), -1)
        ks = torch.cat((k_nope, k_pe), -1)
        scaling = self.scaling_no_mscale if self.legacy_v2_scaling and self.family == "deepseek_v2" else self.scaling
        o = sdpa(qs, ks, v, scaling, ok)
        o = o.transpose(1, 2).reshape(B, S, self.NH * vd)
        return linear(o, W[f"{p}.o_proj.weight"], W[f"{p}.o_proj.bias"] if ab else None)

    # ---- routing --------------------------------------------------------------------------
    def route(self, l, x2):
        """x2 (T, H) -> idx (T,k) long, gates (T,k), margins (T,), group_margins (T,) or None."""
        W, c, fam = self.W, self.cfg, self.family
        k, E = self.K, self.E
        gname = (f"model.layers.{l}.block_sparse_moe.gate.weight" if fam == "mixtral"
                 else f"model.layers.{l}.mlp.gate.weight")
        logits = linear(x2, W[gname])                # fp32 (DeepSeek casts both to fp32 explicitly)
        gm = None
        if fam in ("mixtral", "olmoe", "qwen2_moe", "qwen3_moe"):
            probs = torch.softmax(logits, dim=-1)
            choice = probs
            val, idx = torch.topk(probs, k, dim=-1)
            renorm = True if fam == "mixtral" else bool(c.get("norm_topk_prob", False))
            if renorm:
                val = val / val.sum(-1, keepdim=True)
            gates = val
        elif fam == "deepseek_v2":
            probs = torch.softmax(logits, dim=-1)
            method = c.get("topk_method", "greedy")
            if method == "greedy":
                choice = probs
            elif method == "group_limited_greedy":
                G, TG = c["n_group"], c["topk_group"]
                T = probs.shape[0]
                gs = probs.view(T, G, E // G).max(dim=-1).values
                gm = self._margin(gs, TG)
                gidx = torch.topk(gs, TG, dim=-1)[1]
                keep = torch.zeros_like(gs).scatter_(1, gidx, 1.0).bool()
                keep = keep[:, :, None].expand(T, G, E // G).reshape(T, E)
                choice = probs.masked_fill(~keep, 0.0)
                self._fill_check(probs, keep, choice, k)
            else:
                raise NotImplementedError(f"topk_method {method!r}")
            val, idx = torch.topk(choice, k, dim=-1)
            gates = val * c.get("routed_scaling_factor", 1.0)   # no renormalisation in transformers V2
        else:  # deepseek_v3
            scores = torch.sigmoid(logits)
            bias = W[f"model.layers.{l}.mlp.gate.e_score_correction_bias"]
            if "bias" in self.ablate:
                bias = torch.zeros_like(bias)
            biased = scores + bias
            G, TG = c["n_group"], c["topk_group"]
            T = scores.shape[0]
            gs = biased.view(T, G, E // G).topk(2, dim=-1)[0].sum(dim=-1)
            gm = self._margin(gs, TG)
            gidx = torch.topk(gs, TG, dim=-1)[1]
            keep = torch.zeros_like(gs).scatter_(1, gidx, 1.0).bool()
            keep = keep[:, :, None].expand(T, G, E // G).reshape(T, E)
            choice = biased.masked_fill(~keep, 0.0)          # transformers fills 0.0 (DeepSeek: -inf)
            self._fill_check(biased, keep, choice, k)
            idx = torch.topk(choice, k, dim=-1)[1]
            val = scores.gather(1, idx)                      # gates from the unbiased scores
            if c.get("norm_topk_prob", True):
                val = val / (val.sum(-1, keepdim=True) + 1e-20)
            gates = val * c.get("routed_scaling_factor", 1.0)
        margins = self._margin(choice, k)
        return idx, gates, margins, gm, logits

    @staticmethod
    def _margin(scores, k):
        if scores.shape[-1] <= k:
            return None
        top = torch.topk(scores, k + 1, dim=-1)[0]
        return top[:, k - 1] - top[:, k]

    def _fill_check(self, base, keep, choice_zero_fill, k):
        ninf = base.masked_fill(~keep, float("-inf"))
        a = torch.topk(choice_zero_fill, k, dim=-1)[1].sort(-1)[0]
        b = torch.topk(ninf, k, dim=-1)[1].sort(-1)[0]
        self.diag["group_fill_differs"] += int((a != b).any(-1).sum())

    # ---- MLP blocks -----------------------------------------------------------------------
    def mlp(self, l, x, rec):
        W, fam = self.W, self.family
        if l not in self.moe_layers:
            return swiglu(x, W, f"model.layers.{l}.mlp")
        B, S, H = x.shape
        x2 = x.reshape(B * S, H)
        idx, gates, margins, gm, _ = self.route(l, x2)
        out = torch.zeros_like(x2)
        if fam == "mixtral":
            pre, names = f"model.layers.{l}.block_sparse_moe.experts", ("w1", "w3", "w2")
        else:
            pre, names = f"model.layers.{l}.mlp.experts", ("gate_proj", "up_proj", "down_proj")
        for e in range(self.E):
            tok, slot = torch.where(idx == e)
            if tok.numel() == 0:
                continue
            y = swiglu(x2[tok], W, f"{pre}.{e}", names) * gates[tok, slot, None]
            out.index_add_(0, tok, y)
        if fam == "qwen2_moe":
            sh = swiglu(x2, W, f"model.layers.{l}.mlp.shared_expert")
            g = torch.sigmoid(linear(x2, W[f"model.layers.{l}.mlp.shared_expert_gate.weight"]))
            out = out + g * sh
        elif fam in ("deepseek_v2", "deepseek_v3") and self.cfg.get("n_shared_experts"):
            out = out + swiglu(x2, W, f"model.layers.{l}.mlp.shared_experts")
        rec.append((idx, gates, margins, gm))
        return out.view(B, S, H)

    # ---- whole model ----------------------------------------------------------------------
    def forward(self, ids):
        """ids (B, S) long -> logits (B, S, V), routing records per MoE layer."""
        W = self.W
        B, S = ids.shape
        x = W["model.embed_tokens.weight"][ids]
        cs = cos_sin(self.inv_freq, S, self.attn_factor)
        recs = []
        for l in range(self.L):
            win = None if "window" in self.ablate else self.windows[l]
            ok = attn_mask(S, win)
            p = f"model.layers.{l}"
            x = x + self.attention(l, rms_norm(x, W[f"{p}.input_layernorm.weight"], self.eps), cs, ok)
            x = x + self.mlp(l, rms_norm(x, W[f"{p}.post_attention_layernorm.weight"], self.eps), recs)
        x = rms_norm(x, W["model.norm.weight"], self.eps)
        head = W["model.embed_tokens.weight"] if self.tied else W["lm_head.weight"]
        return linear(x, head), recs


def evaluate(model, ids, S):
    n = len(ids)
    starts = [i for i in range(0, n, S) if i + S + 1 <= n]
    if not starts:
        raise ValueError(f"need at least S+1 = {S + 1} ids, got {n}")
    inp = torch.tensor([ids[i:i + S] for i in starts], dtype=torch.long)
    tgt = torch.tensor([ids[i + 1:i + S + 1] for i in starts], dtype=torch.long)
    logits, recs = model.forward(inp)
    V = logits.shape[-1]
    lp = torch.log_softmax(logits.reshape(-1, V), dim=-1)
    nll = -lp.gather(1, tgt.reshape(-1, 1)).squeeze(1)
    loss = float(nll.double().mean())
    acc = float((logits.reshape(-1, V).argmax(-1) == tgt.reshape(-1)).double().mean())
    T = inp.numel()
    counts = []
    for idx, _, _, _ in recs:
        counts.append([int((idx == e).sum()) for e in range(model.E)])
    routes, margins, gmargins = [], [], []
    for t in range(T):
        rrow, mrow, grow = [], [], []
        for idx, gates, mg, gm in recs:
            order = torch.argsort(idx[t])
            rrow.append({"experts": [int(v) for v in idx[t][order]],
                         "gates": [float(v) for v in gates[t][order]]})
            mrow.append(None if mg is None else float(mg[t]))
            grow.append(None if gm is None else float(gm[t]))
        routes.append(rrow)
        margins.append(mrow)
        gmargins.append(grow)
    res = {
        "model_type": model.family,
        "seq": S,
        "n_windows": len(starts),
        "loss": loss,
        "n_targets": int(tgt.numel()),
        "accuracy": acc,
        "moe_layers": model.moe_layers,
        "top_k": model.K,
        "n_experts": model.E,
        "counts": counts,
        "routes": routes,
        "margins": margins,
    }
    if any(g is not None for row in gmargins for g in row):
        res["group_margins"] = gmargins
    all_m = [m for row in margins for m in row if m is not None]
    diag = {
        "min_margin": min(all_m) if all_m else None,
        "windows": model.windows,
        "softmax_scaling": model.scaling,
        "rope": {k: v for k, v in model.rope_info.items()},
        "fp8_tensors_dequantised": model.n_fp8,
        "stored_dtypes": sorted(set(model.dtypes.values())),
        "tied_embeddings": model.tied,
    }
    if model.family == "olmoe":
        diag["clip_qkv"] = model.cfg.get("clip_qkv")
        diag["clip_qkv_clamped"] = model.diag["clip_qkv_clamped"]
        diag["clip_qkv_total"] = model.diag["clip_qkv_total"]
    if model.mla:
        diag["softmax_mscale"] = model.softmax_mscale
        diag["rope_interleave"] = model.rope_interleave
        diag["legacy_v2_scaling"] = model.legacy_v2_scaling
    if model.family in ("deepseek_v2", "deepseek_v3"):
        diag["group_fill_differs"] = model.diag["group_fill_differs"]
    res["diagnostics"] = diag
    return res, logits


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--token-ids", required=True)
    ap.add_argument("--seq", type=int, required=True)
    ap.add_argument("--out", default=None)
    ap.add_argument("--legacy-v2-scaling", action="store_true",
                    help="deepseek_v2 only: softmax scale qk_head_dim^-0.5 without mscale^2, as transformers "
                         "did before PR #47435")
    ap.add_argument("--ablate", default="", help="comma list for self-checks only: window (no sliding window), clip (no clip_qkv), "
                         "bias (no e_score_correction_bias)")
    a = ap.parse_args(argv)
    with open(a.token_ids) as f:
        ids = [int(t) for t in f.read().split()]
    model = Model(a.checkpoint)
    model.legacy_v2_scaling = a.legacy_v2_scaling
    model.ablate = set(x for x in a.ablate.split(",") if x)
    V = model.cfg["vocab_size"]
    bad = [t for t in ids if not 0 <= t < V]
    if bad:
        raise ValueError(f"token ids outside [0, {V}): {bad[:5]}")
    res, logits = evaluate(model, ids, a.seq)
    text = json.dumps(res)
    outdir = os.path.dirname(os.path.abspath(a.out)) if a.out else os.getcwd()
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    with open(os.path.join(outdir, "logits_first.json"), "w") as f:
        json.dump({"window": 0, "positions": [0, 1, 2, 3],
                   "logits": [[float(v) for v in logits[0, p]] for p in range(min(4, a.seq))]}, f)
        f.write("\n")
    d = res["diagnostics"]
    print(f"{model.family}: loss {res['loss']:.6f} (ln V = {math.log(V):.4f}), acc {res['accuracy']:.4f}, "
          f"{res['n_targets']} targets, moe layers {res['moe_layers']}, min margin {d['min_margin']:.3g}")
    return res


if __name__ == "__main__":
    main()
