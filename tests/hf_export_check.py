#!/usr/bin/python3
"""`unipool export`: our models in the Qwen2-MoE and Mixtral layouts, checked three ways.

    /usr/bin/python3 tests/hf_export_check.py UNIPOOL_BINARY

A vanilla model (softmax router) trained here is exported as hf-qwen2-moe; the exported folder
must evaluate to the same loss as the original (our engine on both sides, 1e-6 relative) and
to the same loss under the independent PyTorch reference scripts/reference/hf_moe_ref.py (which
knows nothing of our format), and its tokenizer.json must give the byte values as ids. Mixtral
(which always renormalises gates) is refused for it without --approximate; a UniPool model
(NormRouter) needs --approximate in either layout and records why in config.json. A dense
model (one expert, top-1) is exact in the Mixtral layout.
"""
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "..", "scripts", "reference", "hf_moe_ref.py")
sys.path.insert(0, HERE)
from check_util import check, finish, run  # noqa: E402


def main():
    unipool = sys.argv[1]
    work = tempfile.mkdtemp(prefix="hf_export_")
    try:
        text = os.path.join(work, "text.txt")
        with open(os.path.join(HERE, "..", "README.md"), "rb") as f:
            data = f.read(2000)
        open(text, "wb").write(data)
        ids = os.path.join(work, "ids.txt")
        open(ids, "w").write(" ".join(str(b) for b in data))

        def train(preset):
            out = os.path.join(work, preset + ".safetensors")
            r = run([unipool, "train", "--preset", preset, "--steps", "4", "--batch", "2",
                     "--seq", "32", "--quiet", "--out", out])
            if r.returncode != 0:
                raise RuntimeError(r.stderr)
            return out

        def loss(checkpoint, extra=()):
            r = run([unipool, "eval", "--checkpoint", checkpoint, "--text", text, "--seq", "64",
                     "--threads", "1", "--json", *extra])
            if r.returncode != 0:
                raise RuntimeError(r.stderr)
            return json.loads(r.stdout)["loss"]

        vanilla = train("vanilla")
        q2 = os.path.join(work, "vanilla-qwen2")
        r = run([unipool, "export", "--checkpoint", vanilla, "--out", q2])
        check(r.returncode == 0 and "exact" in r.stdout, "vanilla -> hf-qwen2-moe: " + r.stdout.splitlines()[0])
        ours, exported = loss(vanilla), loss(q2)
        check(abs(ours - exported) / ours < 1e-6, f"vanilla: loss {ours:.8f}, exported {exported:.8f}")
        ref = run([sys.executable, REF, "--checkpoint", q2, "--token-ids", ids, "--seq", "64",
                   "--out", os.path.join(work, "ref.json")])
        ref_loss = json.load(open(os.path.join(work, "ref.json")))["loss"] if ref.returncode == 0 else float("nan")
        check(abs(ref_loss - ours) / ours < 1e-5, f"the PyTorch reference on the export: {ref_loss:.8f}")
        tok = run([unipool, "tokenize", "--tokenizer", os.path.join(q2, "tokenizer.json"), "--text", text, "--json"])
        check(tok.returncode == 0 and json.loads(tok.stdout)["ids"] == list(data),
              "the exported tokenizer.json gives the byte values")
        config = json.load(open(os.path.join(q2, "config.json")))
        check(config["model_type"] == "qwen2_moe" and config["unipool_export"]["exact"] is True,
              "config.json: qwen2_moe, exact")

        r = run([unipool, "export", "--checkpoint", vanilla, "--format", "hf-mixtral", "--out",
                 os.path.join(work, "mx")])
        check(r.returncode == 1 and "renormalises" in r.stderr and not os.path.exists(os.path.join(work, "mx")),
              "vanilla -> hf-mixtral refused without --approximate: " + r.stderr.strip().splitlines()[1][:90])

        unipool_model = train("tiny")
        r = run([unipool, "export", "--checkpoint", unipool_model, "--format", "hf-mixtral", "--out",
                 os.path.join(work, "up")])
        check(r.returncode == 1 and "NormRouter" in r.stderr, "UniPool -> hf-mixtral needs --approximate")
        r = run([unipool, "export", "--checkpoint", unipool_model, "--format", "hf-mixtral", "--out",
                 os.path.join(work, "up"), "--approximate"])
        up = json.load(open(os.path.join(work, "up", "config.json")))
        check(r.returncode == 0 and up["unipool_export"]["exact"] is False and
              any("per-layer copies" in n for n in up["unipool_export"]["notes"]),
              "UniPool --approximate: written, config.json says what differs")
        approx = loss(os.path.join(work, "up"))
        check(approx == approx and abs(approx - loss(unipool_model)) > 1e-6,
              f"the approximate export runs (loss {approx:.4f}, not the original's)")

        dense = train("dense")
        r = run([unipool, "export", "--checkpoint", dense, "--format", "hf-mixtral", "--out",
                 os.path.join(work, "dense")])
        check(r.returncode == 0 and abs(loss(os.path.join(work, "dense")) - loss(dense)) / loss(dense) < 1e-6,
              "dense -> hf-mixtral: exact, same loss")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    finish()


if __name__ == "__main__":
    main()
