"""Self-checks of the PyTorch reference (unipool_ref.py selftest): the SPEC formulas it
implements, checked against their definitions. Kept apart so each file stays short."""
import json, os, sys, tempfile

import torch
import torch.nn.functional as F

from unipool_ref import MoE, PRESETS, UniPool, aux_losses, evaluate, load_model, norm_router_c, rope_cos_sin, rotate_half, save_safetensors, to_checkpoint


def cmd_selftest(a):
    torch.manual_seed(0)
    res = {}
    def check(name, ok, val=None):
        res[name] = {"ok": bool(ok), "value": val}

    # 1. NormRouter constant (SPEC 3 reference values, within 1%)
    for mg, k, ref in [(24, 1, 2.62), (48, 1, 3.19), (24, 2, 2.04)]:
        c = norm_router_c(mg, k)
        check("router_c_%d_%d" % (mg, k), abs(c / ref - 1) < 0.01, c)

    small = dict(PRESETS["default"], d_model=32, n_layers=4, n_heads=4, n_kv_heads=2,
                 expert_hidden=48, layers_per_group=2, experts_per_group=6, top_k=2)
    small["router_c"] = norm_router_c(6, 2)
    # 2. dense config: G=1, Mg=1, top_k 1, softmax -> gate 1, MoE == the single expert
    dense = dict(small, layers_per_group=1, experts_per_group=1, top_k=1, router="softmax")
    m = UniPool(dense).double()
    x = torch.randn(10, 32, dtype=torch.float64)
    out, _ = m.layers[2].moe(x, m.pool)
    check("dense_moe_equals_ffn", torch.allclose(out, m.pool[2](x)), None)
    logits, _ = m(torch.randint(0, 256, (2, 16)))
    check("dense_runs", torch.isfinite(logits).all(), list(logits.shape))

    # 3. causality: changing token 10 leaves logits 0..9 unchanged
    m = UniPool(small).double().eval()
    for p in m.parameters():      # larger weights so routing is not trivial
        if p.dim() >= 2:
            p.data.normal_(0, 0.2)
    tok = torch.randint(0, 256, (1, 20))
    tok2 = tok.clone(); tok2[0, 10] = (tok[0, 10] + 1) % 256
    l1, _ = m(tok); l2, _ = m(tok2)
    d_before, d_after = (l1[:, :10] - l2[:, :10]).abs().max(), (l1[:, 10:] - l2[:, 10:]).abs().max()
    check("causal", d_before == 0 and d_after > 0, [float(d_before), float(d_after)])

    # 4. RoPE: q.k depends only on the position offset
    cos, sin = rope_cos_sin(12, 8, 10000.0, torch.float64)
    q, k = torch.randn(8, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    r = lambda v, p: v * cos[p] + rotate_half(v) * sin[p]
    check("rope_relative", abs(r(q, 5) @ r(k, 2) - r(q, 9) @ r(k, 6)) < 1e-12, None)

    # 5. group ownership: layer l only calls experts g(l)*Mg .. g(l)*Mg+Mg-1
    called = set()
    hooks = [e.register_forward_hook(lambda mod, i, o, j=j: called.add(j)) for j, e in enumerate(m.pool)]
    owned = True
    for l, blk in enumerate(m.layers):
        called.clear()
        blk.moe(torch.randn(200, 32, dtype=torch.float64), m.pool)
        g = l // small["layers_per_group"]
        owned &= bool(called) and called <= set(range(g * 6, g * 6 + 6))
    for h in hooks:
        h.remove()
    check("group_ownership", owned, None)

    # 6. balance: softmax router with zero weights -> aux_coef per pool (pool) or per layer
    #    (layer), summed (SPEC 4)
    for bal in ("pool", "layer"):
        c2 = dict(small, router="softmax", balance=bal)
        m2 = UniPool(c2).double()
        for blk in m2.layers:
            blk.moe.router.weight.data.zero_()
        _, st = m2(torch.randint(0, 256, (2, 16)))
        aux, _ = aux_losses(c2, st, 32)
        terms = c2["n_layers"] // c2["layers_per_group"] if bal == "pool" else c2["n_layers"]
        check("aux_uniform_" + bal, abs(float(aux) - terms * c2["aux_coef"]) < 1e-12, float(aux))

    # 7. checkpoint round trip (F32 and BF16) + eval windows vs a direct forward
    with tempfile.TemporaryDirectory() as td:
        meta = {"format": "unipool", "format_version": "1", "config": json.dumps(small),
                "step": "0", "tokenizer": "bytes"}
        text = bytes(torch.randint(0, 256, (3 * 16 + 5,)).tolist())
        m32 = UniPool(small)
        for p in m32.parameters():
            if p.dim() >= 2:
                p.data.normal_(0, 0.2)
        for bf16 in (False, True):
            path = os.path.join(td, "m.safetensors")
            save_safetensors(path, to_checkpoint(m32), meta, bf16=bf16)
            ref = UniPool(small)
            sd = {k: (v.to(torch.bfloat16).float() if bf16 else v) for k, v in m32.state_dict().items()}
            ref.load_state_dict(sd)
            ref = ref.double().eval()
            data = torch.tensor(list(text))
            win = torch.stack([data[i * 16:i * 16 + 17] for i in range(3)])    # 3 windows
            with torch.no_grad():
                lg, st = ref(win[:, :-1])
            ce = float(F.cross_entropy(lg.reshape(-1, 256), win[:, 1:].reshape(-1)))
            cnt = torch.stack([s["counts"] for s in st])
            loss, n, counts = evaluate(load_model(path), data, 16)
            check("roundtrip_" + ("bf16" if bf16 else "f32"),
                  abs(loss - ce) < 1e-12 and n == 48 and torch.equal(counts, cnt), [loss, ce, n])

    # 8. random routing: picks k distinct experts, gate = mean of learned gates
    moe = m.layers[0].moe
    x = torch.randn(300, 32, dtype=torch.float64)
    _, st0 = moe(x, m.pool)
    moe.random, moe.gen = True, torch.Generator().manual_seed(1)
    _, st1 = moe(x, m.pool)
    moe.random = False
    check("random_routing_counts", int(st1["counts"].sum()) == 600 and
          not torch.equal(st0["counts"], st1["counts"]), st1["counts"].tolist())

    ok = all(v["ok"] for v in res.values())
    print(json.dumps({"ok": ok, "checks": res}))
    sys.exit(0 if ok else 1)


