#!/usr/bin/python3
"""The engine's forward pass of downloaded MoE models against the independent PyTorch reference.

    /usr/bin/python3 tests/hf_forward_check.py UNIPOOL_BINARY [--variants a,b] [--seq 32]

For each family variant, scripts/reference/make_tiny_hf.py writes a tiny random checkpoint in
the family's exact layout (config.json, safetensors, token ids), scripts/reference/hf_moe_ref.py
(written from transformers' modeling code) computes loss, accuracy, routing counts and per-token
routes, and `unipool eval` / `unipool routes` must agree: loss within 1e-4 relative, the same
accuracy, identical top-k on >= 99% of token-layer routes (all of them away from near-ties),
counts within the near-tie slack. Then bad inputs: each must exit 1 with a message naming the
problem. Synthetic weights: these say nothing about a real model's quality, only that our pass
computes what the families' modeling code computes.
"""
import argparse
import json
import os
import shutil
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "..", "scripts", "reference")
VARIANTS = ["mixtral", "olmoe", "qwen2_moe", "qwen3_moe", "deepseek_v2", "deepseek_v2_lite",
            "deepseek_v3"]
sys.path.insert(0, HERE)
from check_util import check, finish, run  # noqa: E402


def unipool_json(cmd):
    r = run(cmd)
    if r.returncode != 0:
        raise RuntimeError(" ".join(cmd) + " failed: " + r.stderr)
    return json.loads(r.stdout)


def compare_variant(unipool, folder, seq):
    name = os.path.basename(folder)
    ids = os.path.join(folder, "tokens.txt")
    expected_path = os.path.join(folder, "expected.json")
    r = run([sys.executable, os.path.join(REF, "hf_moe_ref.py"), "--checkpoint", folder,
             "--token-ids", ids, "--seq", str(seq), "--out", expected_path])
    if r.returncode != 0:
        raise RuntimeError("reference failed on " + name + ": " + r.stderr)
    exp = json.load(open(expected_path))
    got = unipool_json([unipool, "eval", "--checkpoint", folder, "--token-ids", ids,
                        "--seq", str(seq), "--threads", "1", "--json"])
    rel = abs(got["loss"] - exp["loss"]) / abs(exp["loss"])
    check(rel < 1e-4, f"{name}: loss {got['loss']:.8f} vs reference {exp['loss']:.8f} (rel {rel:.1e})")
    check(got["n_targets"] == exp["n_targets"], f"{name}: {got['n_targets']} targets")
    check(abs(got["accuracy"] - exp["accuracy"]) <= 1.0 / exp["n_targets"] + 1e-12,
          f"{name}: accuracy {got['accuracy']:.4f} vs {exp['accuracy']:.4f}")
    check(got["moe_layers"] == exp["moe_layers"], f"{name}: MoE layers {got['moe_layers']}")
    routes = unipool_json([unipool, "routes", "--checkpoint", folder, "--token-ids", ids,
                           "--seq", str(seq), "--threads", "1", "--json"])
    same = total = near_tie_diffs = clear_diffs = 0
    for t, layers in enumerate(exp["routes"]):
        for m, route in enumerate(layers):
            mine = routes["tokens"][t]["layers"][m]
            total += 1
            if mine["experts"] == route["experts"]:
                same += 1
                gate_err = max(abs(a - b) for a, b in zip(mine["gates"], route["gates"]))
                if gate_err > 1e-4:
                    clear_diffs += 1
            elif exp["margins"][t][m] < 1e-4:
                near_tie_diffs += 1
            else:
                clear_diffs += 1
    check(same >= 0.99 * total and clear_diffs == 0,
          f"{name}: top-k and gates identical on {same}/{total} token-layer routes "
          f"({near_tie_diffs} differ at near-ties, {clear_diffs} elsewhere)")
    count_diff = sum(abs(a - b) for ra, rb in zip(got["counts"], exp["counts"]) for a, b in zip(ra, rb))
    check(count_diff <= 2 * exp["top_k"] * near_tie_diffs,
          f"{name}: routing counts differ by {count_diff}")
    # Random routing of every MoE layer changes the loss and keeps it finite.
    layers = ",".join(str(l) for l in exp["moe_layers"])
    rnd = unipool_json([unipool, "eval", "--checkpoint", folder, "--token-ids", ids, "--seq",
                        str(seq), "--threads", "1", "--random-layers", layers, "--json"])
    check(rnd["loss"] == rnd["loss"] and abs(rnd["loss"] - got["loss"]) > 1e-6,
          f"{name}: random routing in layers {layers}: loss {rnd['loss']:.6f}")


def write_safetensors(path, tensors, metadata=None):
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def read_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    base = 8 + n
    return {k: (v["dtype"], v["shape"], raw[base + v["data_offsets"][0]:base + v["data_offsets"][1]])
            for k, v in header.items()}


def bad_inputs(unipool, source, work):
    """Copies of a good checkpoint, each broken one way: exit 1 and a message naming it."""
    ids = os.path.join(source, "tokens.txt")

    def variant(name, edit_config=None, edit_tensors=None):
        d = os.path.join(work, name)
        shutil.copytree(source, d)
        if edit_config:
            c = json.load(open(os.path.join(d, "config.json")))
            edit_config(c)
            json.dump(c, open(os.path.join(d, "config.json"), "w"))
        if edit_tensors:
            t = read_safetensors(os.path.join(d, "model.safetensors"))
            edit_tensors(t)
            write_safetensors(os.path.join(d, "model.safetensors"), t, {"format": "pt"})
        return d

    def expect_refusal(folder, words, what, extra=()):
        r = run([unipool, "eval", "--checkpoint", folder, "--seq", "16", "--json", *extra]
                + ([] if "--text" in extra else ["--token-ids", ids]))
        ok = r.returncode == 1 and all(w in r.stderr for w in words)
        check(ok, f"bad input, {what}: exit {r.returncode}, '{r.stderr.strip()[:150]}'")

    expect_refusal(variant("unknown_type", lambda c: c.update(model_type="jamba")),
                   ["model_type", "jamba"], "unknown model_type")
    expect_refusal(variant("missing", edit_tensors=lambda t: t.pop("model.layers.1.block_sparse_moe.experts.2.w3.weight")),
                   ["experts.2.w3.weight"], "missing tensor")
    def misshape(t):
        dtype, shape, raw = t["model.layers.0.self_attn.k_proj.weight"]  # (kv width, hidden)
        t["model.layers.0.self_attn.k_proj.weight"] = (dtype, [shape[1], shape[0]], raw)
    expect_refusal(variant("misshapen", edit_tensors=misshape), ["k_proj", "shape"], "misshapen tensor")
    expect_refusal(variant("contradicts", lambda c: c.update(num_local_experts=c["num_local_experts"] + 2)),
                   ["gate.weight", "config.json implies"], "config.json names more experts than the file has")
    def mxfp4(t):
        for name in list(t):
            if ".experts.0.w1.weight" in name:
                _, shape, _ = t[name]
                t[name] = ("U8", [shape[0], shape[1] // 2], b"\0" * (shape[0] * shape[1] // 2))
    expect_refusal(variant("mxfp4", edit_tensors=mxfp4), ["w1.weight"], "packed (MXFP4-style) expert")
    no_tok = variant("no_tokenizer")
    text = os.path.join(work, "text.txt")
    open(text, "w").write("hello world")
    expect_refusal(no_tok, ["tokenizer.json"], "--text without tokenizer.json", ("--text", text))
    bad_ids = os.path.join(work, "bad_ids.txt")
    open(bad_ids, "w").write("1 2 99999 4\n" * 20)
    r = run([unipool, "eval", "--checkpoint", source, "--token-ids", bad_ids, "--seq", "8"])
    check(r.returncode == 1 and "99999" in r.stderr, "bad input, id outside the vocabulary: " + r.stderr.strip()[:120])


def text_input(unipool, source, work):
    """--text through the checkpoint's tokenizer.json equals --token-ids of `unipool tokenize`."""
    d = os.path.join(work, "with_tokenizer")
    shutil.copytree(source, d)
    letters = "abcdefghijklmnopqrstuvwxyz .,"
    vocab = {c: i for i, c in enumerate(letters)}
    merges = ["t h", "th e", "e r", "a n", "i n"]
    for m in merges:
        vocab[m.replace(" ", "")] = len(vocab)
    tokenizer = {"version": "1.0", "added_tokens": [], "normalizer": None, "pre_tokenizer": None,
                 "post_processor": None, "decoder": None,
                 "model": {"type": "BPE", "vocab": vocab, "merges": merges, "unk_token": None}}
    json.dump(tokenizer, open(os.path.join(d, "tokenizer.json"), "w"))
    text = os.path.join(work, "story.txt")
    open(text, "w").write("the other man in the inn ran in the rain, then the winter came. " * 6)
    tok = unipool_json([unipool, "tokenize", "--tokenizer", os.path.join(d, "tokenizer.json"),
                        "--text", text, "--json"])
    ids = os.path.join(work, "story_ids.txt")
    open(ids, "w").write(" ".join(map(str, tok["ids"])))
    check(len(tok["ids"]) < len(open(text).read()) and max(tok["ids"]) >= len(letters),
          f"tokenize: {len(tok['ids'])} ids for {len(open(text).read())} bytes (merges applied)")
    by_text = unipool_json([unipool, "eval", "--checkpoint", d, "--text", text, "--seq", "16",
                            "--threads", "1", "--json"])
    by_ids = unipool_json([unipool, "eval", "--checkpoint", d, "--token-ids", ids, "--seq", "16",
                           "--threads", "1", "--json"])
    check(by_text["loss"] == by_ids["loss"] and by_text["counts"] == by_ids["counts"],
          f"eval --text {by_text['loss']:.6f} equals eval --token-ids {by_ids['loss']:.6f}")
    per_byte = by_ids["loss"] * len(tok["ids"]) / len(open(text, "rb").read())
    check(abs(by_text["loss_per_byte"] - per_byte) < 1e-9,
          f"loss_per_byte {by_text['loss_per_byte']:.6f} = nats/token x tokens/byte")
    probe = unipool_json([unipool, "probe", "--checkpoint", d, "--text", text, "--seq", "16",
                          "--seeds", "2", "--threads", "1", "--json"])[0]
    names = [r["name"] for r in probe["rows"]]
    none = probe["rows"][0]
    check(names[:2] == ["none", "layer 0"] and "from 2" in names and
          abs(none["loss"][0] - by_ids["loss"]) < 1e-9 and
          all(len(r["loss"]) == 2 for r in probe["rows"][1:]),
          f"probe: {len(names)} rows ({', '.join(names[:4])}, ...), 'none' = eval's loss")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("unipool")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--seq", type=int, default=32)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="hf_forward_")
    try:
        variants = a.variants.split(",")
        r = run([sys.executable, os.path.join(REF, "make_tiny_hf.py"), work, "--variants", ",".join(variants)])
        if r.returncode != 0:
            raise RuntimeError("make_tiny_hf.py failed: " + r.stderr)
        for v in variants:
            compare_variant(a.unipool, os.path.join(work, v), a.seq)
        if "mixtral" in variants:
            text_input(a.unipool, os.path.join(work, "mixtral"), work)
            bad_inputs(a.unipool, os.path.join(work, "mixtral"), os.path.join(work, "bad"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
