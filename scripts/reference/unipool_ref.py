#!/usr/bin/python3
"""UniPool reference implementation in plain PyTorch (eager, CPU), following /work/shared/SPEC.md.

Modes (each prints one JSON object on stdout; selftest lives in ref_selftest.py):
  eval     --checkpoint F.safetensors --text F --seq S [--random-layers 3,4] [--seed 0]
  bench    (--config F.json | --preset default) --batch B --seq S --steps N --threads T
  selftest

Written the obvious way on purpose: one nn.Parameter per expert, a python loop over the
experts of a layer's group, tokens gathered per expert with nonzero (dropless).
"""
import argparse, json, math, os, struct, sys, tempfile, time

# Debian's torch does its GEMMs in OpenBLAS, whose own thread pool torch.set_num_threads does
# not limit: by default it takes every core even at --threads 1, and at --threads 2 it fights
# torch's OpenMP threads (3x slower). Pin it to 1 unless the caller sets it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import torch
import torch.nn as nn
import torch.nn.functional as F

PRESETS = {"default": dict(
    vocab_size=256, d_model=128, n_layers=6, n_heads=4, n_kv_heads=2, expert_hidden=256,
    layers_per_group=6, experts_per_group=24, top_k=1, router="norm", router_c=2.62,
    renormalize_gates=False, balance="pool", aux_coef=0.01, z_coef=0.0, rope_theta=10000.0,
    norm_eps=1e-5, max_seq_len=1024)}


# ---------------------------------------------------------------- NormRouter constant (SPEC 3)
def norm_router_c(mg, k, samples=100_000, seed=0):
    """c = E[1 / sqrt(sum_{j<=k} y_(j)^2)], y = relu(x/||x||), x ~ N(0, I_mg); all-zero y skipped."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, mg, generator=g, dtype=torch.float64)      # (n, mg)
    y = torch.relu(x / x.norm(dim=1, keepdim=True))                     # (n, mg)
    top = y.topk(k, dim=1).values                                       # (n, k)
    s = top.pow(2).sum(1).sqrt()                                        # (n,)
    s = s[s > 0]
    return float((1.0 / s).mean())


# ---------------------------------------------------------------- model (SPEC 2, 3)
class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight, self.eps = nn.Parameter(torch.ones(d)), eps

    def forward(self, x):                                               # (..., d)
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x):                                                     # (..., hd)
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def rope_cos_sin(S, hd, theta, dtype):
    inv_freq = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)  # (hd/2,)
    ang = torch.arange(S, dtype=torch.float64)[:, None] * inv_freq[None]     # (S, hd/2)
    ang = torch.cat([ang, ang], dim=-1)                                      # (S, hd)
    return ang.cos().to(dtype), ang.sin().to(dtype)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, self.H, self.KV = cfg["d_model"], cfg["n_heads"], cfg["n_kv_heads"]
        self.hd, self.theta = d // self.H, float(cfg["rope_theta"])
        self.q_proj = nn.Linear(d, self.H * self.hd, bias=False)
        self.k_proj = nn.Linear(d, self.KV * self.hd, bias=False)
        self.v_proj = nn.Linear(d, self.KV * self.hd, bias=False)
        self.o_proj = nn.Linear(self.H * self.hd, d, bias=False)

    def forward(self, x):                                               # x: (B, S, d)
        B, S, _ = x.shape
        q = self.q_proj(x).view(B, S, self.H, self.hd).transpose(1, 2)  # (B, H, S, hd)
        k = self.k_proj(x).view(B, S, self.KV, self.hd).transpose(1, 2) # (B, KV, S, hd)
        v = self.v_proj(x).view(B, S, self.KV, self.hd).transpose(1, 2) # (B, KV, S, hd)
        cos, sin = rope_cos_sin(S, self.hd, self.theta, x.dtype)        # (S, hd)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = self.H // self.KV                       # query head j uses kv head j // rep
        k = k.repeat_interleave(rep, dim=1)                             # (B, H, S, hd)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd)            # (B, H, S, S)
        mask = torch.ones(S, S, dtype=torch.bool).triu(1)
        att = att.masked_fill(mask, float("-inf")).softmax(-1)
        o = (att @ v).transpose(1, 2).reshape(B, S, self.H * self.hd)   # (B, S, H*hd)
        return self.o_proj(o)


class Expert(nn.Module):
    """SwiGLU expert: w_down @ (silu(w_gate @ x) * (w_up @ x)); its own three Parameters."""
    def __init__(self, d, h):
        super().__init__()
        self.w_gate = nn.Parameter(torch.empty(h, d))                   # (h, d)
        self.w_up = nn.Parameter(torch.empty(h, d))                     # (h, d)
        self.w_down = nn.Parameter(torch.empty(d, h))                   # (d, h)

    def forward(self, x):                                               # (n, d) -> (n, d)
        return F.linear(F.silu(F.linear(x, self.w_gate)) * F.linear(x, self.w_up), self.w_down)


class MoE(nn.Module):
    """Router of layer l; the experts live in the model-wide pool and are passed in."""
    def __init__(self, cfg, layer):
        super().__init__()
        self.cfg, self.Mg, self.k = cfg, cfg["experts_per_group"], cfg["top_k"]
        self.base = (layer // cfg["layers_per_group"]) * self.Mg        # first global expert
        self.router = nn.Linear(cfg["d_model"], self.Mg, bias=False)    # weight (Mg, d)
        if cfg["router"] == "norm":
            self.router.scale = nn.Parameter(torch.ones(1))             # (1,)
        self.random = False                                             # random-routing probe
        self.gen = None                                                 # torch.Generator for it

    def forward(self, x, pool):                                         # x: (T, d)
        T, k, Mg = x.shape[0], self.k, self.Mg
        z = self.router(x)                                              # (T, Mg)
        if self.cfg["router"] == "norm":
            s = self.router.scale * self.cfg["router_c"] * torch.relu(
                z / (z.norm(dim=-1, keepdim=True) + 1e-8))              # (T, Mg)
        else:
            s = z.softmax(-1)
        # TopK; ties (e.g. several zero NormRouter scores) go to the lowest index
        gate, idx = s.sort(dim=-1, descending=True, stable=True)
        gate, idx = gate[:, :k], idx[:, :k]                             # (T, k)
        if self.cfg["renormalize_gates"]:
            # all selected NormRouter scores zero would give 0/0: keep those gates at 0
            gate = gate / gate.sum(-1, keepdim=True).clamp_min(torch.finfo(gate.dtype).tiny)
        if self.random:   # k distinct uniform experts; each gate = (sum of learned gates) / k
            idx = torch.rand(T, Mg, generator=self.gen, dtype=torch.float64).argsort(-1)[:, :k]
            gate = (gate.sum(-1, keepdim=True) / k).expand(T, k)
        flat_e, flat_g = idx.reshape(-1), gate.reshape(-1)              # (T*k,)
        tok = torch.arange(T).repeat_interleave(k)                      # (T*k,) token of each slot
        out = torch.zeros_like(x)                                       # (T, d)
        for e in range(Mg):                                             # loop over local experts
            sel = (flat_e == e).nonzero().squeeze(1)                    # slots routed to e
            if sel.numel() == 0:
                continue
            t = tok[sel]
            y = pool[self.base + e](x[t]) * flat_g[sel, None]           # (n_e, d)
            out = out.index_add(0, t, y)
        stats = dict(counts=torch.bincount(flat_e, minlength=Mg),      # (Mg,) not differentiable
                     P=s.mean(0),                                       # (Mg,) differentiable
                     z2=torch.logsumexp(z, -1).pow(2).mean())           # scalar
        return out, stats


class Block(nn.Module):
    def __init__(self, cfg, layer):
        super().__init__()
        self.attn_norm = RMSNorm(cfg["d_model"], cfg["norm_eps"])
        self.attn = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg["d_model"], cfg["norm_eps"])
        self.moe = MoE(cfg, layer)

    def forward(self, x, pool):                                         # (B, S, d)
        x = x + self.attn(self.attn_norm(x))
        B, S, d = x.shape
        m, stats = self.moe(self.ffn_norm(x).reshape(B * S, d), pool)
        return x + m.view(B, S, d), stats


class UniPool(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        L, G, Mg = cfg["n_layers"], cfg["layers_per_group"], cfg["experts_per_group"]
        assert L % G == 0 and cfg["d_model"] % cfg["n_heads"] == 0
        assert cfg["n_heads"] % cfg["n_kv_heads"] == 0
        self.cfg, self.N = cfg, (L // G) * Mg
        d, h, V = cfg["d_model"], cfg["expert_hidden"], cfg["vocab_size"]
        self.embed = nn.Embedding(V, d)                                 # (V, d)
        self.layers = nn.ModuleList(Block(cfg, l) for l in range(L))
        self.pool = nn.ModuleList(Expert(d, h) for _ in range(self.N))  # N experts, separate params
        self.final_norm = RMSNorm(d, cfg["norm_eps"])
        self.lm_head = nn.Linear(d, V, bias=False)                      # (V, d), not tied
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, tokens):                                          # (B, S) int64
        x = self.embed(tokens)                                          # (B, S, d)
        stats = []
        for blk in self.layers:
            x, st = blk(x, self.pool)
            stats.append(st)
        return self.lm_head(self.final_norm(x)), stats                  # (B, S, V), L dicts


def aux_losses(cfg, stats, T):
    """aux (balance) and z-loss of SPEC 4 from the per-layer stats of one batch of T tokens."""
    L, G, Mg, k = cfg["n_layers"], cfg["layers_per_group"], cfg["experts_per_group"], cfg["top_k"]
    f = torch.stack([st["counts"] for st in stats]).to(stats[0]["P"].dtype) / (T * k)  # (L, Mg)
    P = torch.stack([st["P"] for st in stats])                                          # (L, Mg)
    if cfg["balance"] == "pool":
        fb, Pb = f.view(L // G, G, Mg).mean(1), P.view(L // G, G, Mg).mean(1)          # (n_groups, Mg)
        aux = cfg["aux_coef"] * (Mg * (fb * Pb).sum(-1)).sum()  # every group's loss added
    elif cfg["balance"] == "layer":
        aux = cfg["aux_coef"] * (Mg * (f * P).sum(-1)).sum()  # full coefficient per layer
    else:
        aux = P.sum() * 0.0
    z = cfg["z_coef"] * torch.stack([st["z2"] for st in stats]).mean()
    return aux, z


# ---------------------------------------------------------------- safetensors (SPEC 6)
DT = {"F32": (torch.float32, 4), "F64": (torch.float64, 8), "F16": (torch.float16, 2),
      "BF16": (None, 2), "I64": (torch.int64, 8), "I32": (torch.int32, 4)}


def load_safetensors(path):
    with open(path, "rb") as fh:
        raw = fh.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {}) or {}
    data, out = bytearray(raw[8 + n:]), {}
    for name, info in header.items():
        dtype, size = DT[info["dtype"]]
        a, b = info["data_offsets"]
        shape = info["shape"]
        if b == a:
            out[name] = torch.zeros(shape, dtype=dtype or torch.float32)
        elif dtype is None:   # BF16: upper 16 bits of an f32
            u = torch.frombuffer(data, dtype=torch.int16, count=(b - a) // 2, offset=a)
            out[name] = ((u.to(torch.int32) & 0xFFFF) << 16).view(torch.float32).reshape(shape)
        else:
            out[name] = torch.frombuffer(data, dtype=dtype, count=(b - a) // size,
                                         offset=a).clone().reshape(shape)
    return out, meta


def save_safetensors(path, tensors, meta, bf16=False):
    """Writer for the selftest (F32, or BF16 by round-to-nearest-even)."""
    header, blobs, off = {"__metadata__": meta}, [], 0
    for name, t in tensors.items():
        t = t.detach().to(torch.float32).contiguous()
        if bf16:
            u = t.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
            u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF
            b = u.to(torch.int32).to(torch.int16).numpy().tobytes()
        else:
            b = t.numpy().tobytes()
        header[name] = {"dtype": "BF16" if bf16 else "F32", "shape": list(t.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def to_checkpoint(model):
    """Module -> SPEC 6 tensor names (experts stacked into pool.w_gate/w_up/w_down)."""
    sd = {k: v for k, v in model.state_dict().items() if not k.startswith("pool.")}
    sd = {k.replace(".moe.router.", ".router."): v for k, v in sd.items()}
    for w in ("w_gate", "w_up", "w_down"):
        sd["pool." + w] = torch.stack([getattr(e, w).detach() for e in model.pool])
    return sd


def from_checkpoint(model, tensors):
    sd = {k.replace(".router.", ".moe.router."): v for k, v in tensors.items()
          if not k.startswith("pool.")}
    for w in ("w_gate", "w_up", "w_down"):
        for e in range(model.N):
            sd["pool.%d.%s" % (e, w)] = tensors["pool." + w][e]
    model.load_state_dict(sd, strict=True)


# ---------------------------------------------------------------- eval (SPEC 7)
@torch.no_grad()
def evaluate(model, data, S, chunk=16):
    """data: (n,) int64 bytes. Returns (mean CE, n_targets, counts (L, Mg) int64)."""
    cfg = model.cfg
    n_win = (len(data) - 1) // S                  # windows at 0, S, 2S, ... with S+1 bytes
    counts = torch.zeros(cfg["n_layers"], cfg["experts_per_group"], dtype=torch.int64)
    ce_sum, n_tgt = 0.0, 0
    for w0 in range(0, n_win, chunk):
        starts = torch.arange(w0, min(w0 + chunk, n_win)) * S           # (b,)
        pos = starts[:, None] + torch.arange(S + 1)[None]               # (b, S+1)
        win = data[pos]
        logits, stats = model(win[:, :-1])                              # (b, S, V)
        ce_sum += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                        win[:, 1:].reshape(-1), reduction="sum"))
        n_tgt += win[:, 1:].numel()
        counts += torch.stack([st["counts"] for st in stats])
    return ce_sum / max(n_tgt, 1), n_tgt, counts


def load_model(path, dtype=torch.float64):
    tensors, meta = load_safetensors(path)
    cfg = json.loads(meta["config"])
    if cfg["router"] == "norm" and cfg.get("router_c") is None:
        cfg["router_c"] = norm_router_c(cfg["experts_per_group"], cfg["top_k"])
    model = UniPool(cfg)
    from_checkpoint(model, tensors)
    return model.to(dtype).eval()


def cmd_eval(a):
    model = load_model(a.checkpoint)
    if a.random_layers:
        g = torch.Generator().manual_seed(a.seed)
        for l in (int(s) for s in a.random_layers.split(",") if s.strip()):
            model.layers[l].moe.random, model.layers[l].moe.gen = True, g
    with open(a.text, "rb") as fh:
        raw = fh.read()
    data = torch.frombuffer(bytearray(raw), dtype=torch.uint8).to(torch.int64) if raw else \
        torch.zeros(0, dtype=torch.int64)
    loss, n, counts = evaluate(model, data, a.seq)
    print(json.dumps({"loss": loss, "n_targets": n, "counts": counts.tolist(),
                      "router_c": model.cfg.get("router_c")}))


# ---------------------------------------------------------------- bench (training loop)
def cmd_bench(a):
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.config:
        with open(a.config) as fh:
            cfg = json.load(fh)
    else:
        cfg = dict(PRESETS[a.preset])
    if cfg["router"] == "norm" and cfg.get("router_c") is None:
        cfg["router_c"] = norm_router_c(cfg["experts_per_group"], cfg["top_k"])
    model = UniPool(cfg).train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]    # no decay: norms, scales
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    total, warm = 3 + a.steps, max(1, (3 + a.steps) // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warm if s < warm else
        0.1 + 0.45 * (1 + math.cos(math.pi * (s - warm) / max(1, total - warm))))
    B, S, V = a.batch, a.seq, cfg["vocab_size"]

    def step():
        batch = torch.randint(0, V, (B, S + 1))                         # random bytes
        logits, stats = model(batch[:, :-1])                            # (B, S, V)
        ce = F.cross_entropy(logits.reshape(-1, V), batch[:, 1:].reshape(-1))
        aux, zl = aux_losses(cfg, stats, B * S)
        loss = ce + aux + zl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        return float(loss)

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        last = step()
    dt = time.perf_counter() - t0
    print(json.dumps({"train_tokens_per_s": B * S * a.steps / dt,
                      "ms_per_step": 1000 * dt / a.steps, "threads": a.threads,
                      "batch": B, "seq": S, "torch": torch.__version__,
                      "openblas_threads": os.environ["OPENBLAS_NUM_THREADS"], "last_loss": last}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("eval")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--text", required=True)
    e.add_argument("--seq", type=int, required=True)
    e.add_argument("--random-layers", default="")
    e.add_argument("--seed", type=int, default=0)
    b = sub.add_parser("bench")
    g = b.add_mutually_exclusive_group(required=True)
    g.add_argument("--config")
    g.add_argument("--preset", choices=sorted(PRESETS))
    b.add_argument("--batch", type=int, default=16)
    b.add_argument("--seq", type=int, default=128)
    b.add_argument("--steps", type=int, default=10)
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--lr", type=float, default=1e-3)
    sub.add_parser("selftest")
    a = ap.parse_args()
    if a.cmd == "selftest":
        import ref_selftest  # the model's own checks live beside it (ref_selftest.py)
        ref_selftest.cmd_selftest(a)
        return
    {"eval": cmd_eval, "bench": cmd_bench}[a.cmd](a)


if __name__ == "__main__":
    main()
