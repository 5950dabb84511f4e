#!/usr/bin/python3
"""Training-step benchmark of the PyTorch reference model (unipool_ref.py) on a GPU: eager and
torch.compile, fp32 and bf16 autocast, for the `default` preset and the paper's smallest scale.
Prints one JSON object per run and writes them all to --out (JSON lines).

MFU = model FLOPs per second / the bf16 matmul rate measured on the same device in this run
(3 x the forward FLOPs of core/src/training/bench.cpp: full S x S attention counted).

Runs on CPU too (smoke test with Debian's torch 1.13: tiny steps, no torch.compile there).
  gpu_bench.py [--device cuda] [--configs default,paper-small] [--steps 20] [--out F.jsonl]
"""
import argparse, datetime, json, math, os, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch
import torch.nn.functional as F
import unipool_ref as ref

# The paper's smallest scale (issue 4): 12 layers, d 768, 12 heads, 4 kv heads, h 3072,
# one pool of 96 experts, top-1, NormRouter, sequence 1024. router_c (96, 1) from SPEC 3.
PAPER_SMALL = dict(ref.PRESETS["default"], d_model=768, n_layers=12, n_heads=12, n_kv_heads=4,
                   expert_hidden=3072, layers_per_group=12, experts_per_group=96, top_k=1,
                   router="norm", router_c=4.02, max_seq_len=1024)
CONFIGS = {"default": (ref.PRESETS["default"], 16, 128), "paper-small": (PAPER_SMALL, 8, 1024)}


def forward_flops_per_token(c, seq):
    d, hd, h = c["d_model"], c["d_model"] // c["n_heads"], c["expert_hidden"]
    attn_proj = d * hd * (2.0 * c["n_heads"] + 2.0 * c["n_kv_heads"])
    router = c["experts_per_group"] * d
    experts = c["top_k"] * 3.0 * d * h
    scores = 2.0 * seq * hd * c["n_heads"]
    return 2.0 * (c["n_layers"] * (attn_proj + router + experts + scores) + c["vocab_size"] * d)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_tflops(device, dtype, n, iters):
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        a @ b
    sync(device)
    return 2.0 * n ** 3 * iters / (time.perf_counter() - t0) / 1e12


def make_step(cfg, model, B, S, device, autocast_bf16):
    V = cfg["vocab_size"]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)

    def step(fwd):
        batch = torch.randint(0, V, (B, S + 1), device=device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast_bf16):
            logits, stats = fwd(batch[:, :-1])
            ce = F.cross_entropy(logits.reshape(-1, V).float(), batch[:, 1:].reshape(-1))
            aux, zl = ref.aux_losses(cfg, stats, B * S)
            loss = ce + aux + zl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return loss.detach()

    return step


def run(name, cfg, B, S, device, mode, dtype, steps, peak_tflops):
    torch.manual_seed(0)
    if device.type == "cuda":
        torch.set_default_device(device)  # the reference model makes its masks and indices
    model = ref.UniPool(dict(cfg)).to(device).train()
    fwd = model
    if mode == "compile":
        if not hasattr(torch, "compile"):
            return dict(config=name, mode=mode, dtype=dtype, skipped="torch.compile not in torch " +
                        torch.__version__)
        fwd = torch.compile(model)
    step = make_step(cfg, model, B, S, device, dtype == "bf16")
    t0 = time.perf_counter()
    for _ in range(3):  # warm-up (and compilation)
        step(fwd)
    sync(device)
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        last = step(fwd)
    sync(device)
    dt = time.perf_counter() - t0
    tok_s = B * S * steps / dt
    flops = 3.0 * forward_flops_per_token(cfg, S) * tok_s
    out = dict(config=name, mode=mode, dtype=dtype, batch=B, seq=S, steps=steps,
               train_tokens_per_s=tok_s, ms_per_step=1000 * dt / steps,
               model_tflops=flops / 1e12, warmup_s=warm_s, last_loss=float(last))
    if peak_tflops:
        out["mfu_vs_measured_bf16_matmul"] = flops / 1e12 / peak_tflops
    if device.type == "cuda":
        out["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2 ** 30
        torch.cuda.reset_peak_memory_stats()
        torch.set_default_device("cpu")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--configs", default="default,paper-small")
    ap.add_argument("--modes", default="eager,compile")
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=0, help="override every config's batch")
    ap.add_argument("--seq", type=int, default=0, help="override every config's sequence")
    ap.add_argument("--smoke", action="store_true", help="CPU smoke test: 2 layers, d 64")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    device = torch.device(a.device)
    results = []
    head = dict(date=datetime.datetime.now().isoformat(timespec="seconds"), torch=torch.__version__,
                device=torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                command=" ".join(sys.argv))
    if device.type == "cuda":
        head["bf16_matmul_tflops"] = matmul_tflops(device, torch.bfloat16, 8192, 20)
        head["fp32_matmul_tflops"] = matmul_tflops(device, torch.float32, 8192, 5)
    print(json.dumps(head), flush=True)
    results.append(head)
    for name in a.configs.split(","):
        cfg, B, S = CONFIGS[name]
        if a.smoke:
            cfg = dict(cfg, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, expert_hidden=128,
                       layers_per_group=2)
        B, S = a.batch or B, a.seq or S
        for mode in a.modes.split(","):
            for dtype in a.dtypes.split(","):
                try:
                    r = run(name, cfg, B, S, device, mode, dtype, a.steps,
                            head.get("bf16_matmul_tflops"))
                except Exception as e:  # record and go on: one failing mode must not hide the rest
                    r = dict(config=name, mode=mode, dtype=dtype, error=repr(e)[:500])
                print(json.dumps(r), flush=True)
                results.append(r)
    if a.out:
        with open(a.out, "a") as fh:
            for r in results:
                fh.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
