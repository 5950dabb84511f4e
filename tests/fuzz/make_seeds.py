#!/usr/bin/python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<target>/): small, valid inputs of
every kind each parser reads, plus a few broken ones, so that libFuzzer starts from the real
formats rather than from nothing. The files are committed; run this again when a format grows.

    /usr/bin/python3 tests/fuzz/make_seeds.py --unipool build/bin/unipool

Sources: the tiny checkpoints of scripts/reference/make_tiny_hf.py (every family's tensor names
and config.json), the real tokenizer.json files of tests/data/tokenizers cut down to a few
hundred tokens (their normalizers, pre-tokenizers and decoders kept), the shipped lessons, and
a three-step `unipool train` run (its log, and a recipe built from its header).
"""
import argparse
import json
import lzma
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
CORPUS = os.path.join(HERE, "corpus")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def safetensors_image(tensors, metadata=None):
    """tensors: [(name, dtype, shape, bytes)] -> file bytes."""
    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(t[3] for t in tensors)


def read_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))


def safetensors_seeds():
    # ".st", not ".safetensors": the repository ignores *.safetensors (checkpoints are outputs).
    f32 = struct.pack("<4f", 1.0, -2.0, 0.5, 3.25)
    good = safetensors_image([("a", "F32", [2, 2], f32), ("b", "BF16", [3], b"\x80\x3f" * 3),
                              ("s", "I64", [], struct.pack("<q", 7))], {"format": "pt"})
    put("fuzz_safetensors", "good.st", good)
    put("fuzz_safetensors", "fp8.st",
        safetensors_image([("w", "F8_E4M3", [2, 4], bytes(range(8))),
                           ("w_scale_inv", "F32", [1, 1], struct.pack("<f", 0.5))]))
    put("fuzz_safetensors", "empty_tensor.st", safetensors_image([("z", "F16", [0, 4], b"")]))
    put("fuzz_safetensors", "truncated.st", good[:-3])
    put("fuzz_safetensors", "overlap.st",
        struct.pack("<Q", 72) + b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}'[:72] + b"\0" * 4)


def model_seeds(work):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "reference", "make_tiny_hf.py"), work],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("make_tiny_hf.py failed: " + r.stderr)
    for variant in sorted(os.listdir(work)):
        folder = os.path.join(work, variant)
        with open(os.path.join(folder, "config.json")) as f:
            config = json.load(f)
        header = read_header(os.path.join(folder, "model.safetensors"))
        tensors = {name: [e["dtype"], e["shape"]] for name, e in header.items() if name != "__metadata__"}
        seed = json.dumps(config, separators=(",", ":")) + "\0" + json.dumps(tensors, separators=(",", ":"))
        put("fuzz_model_layout", variant + ".layout", seed)
        # A sharded index of the same tensors over two files.
        names = sorted(tensors)
        weight_map = {n: "model-0000%d-of-00002.safetensors" % (1 + i % 2) for i, n in enumerate(names)}
        put("fuzz_checkpoint_index", variant + ".index.json",
            json.dumps({"metadata": {"total_size": 1234}, "weight_map": weight_map}))
    put("fuzz_checkpoint_index", "escape.index.json", json.dumps({"weight_map": {"a": "../x.safetensors"}}))


def own_layout_seed(unipool, work):
    """Our own checkpoint's tensors and metadata (read_own_layout)."""
    out = os.path.join(work, "own.safetensors")
    subprocess.run([unipool, "train", "--preset", "tiny", "--steps", "1", "--out", out, "--quiet"], check=True)
    header = read_header(out)
    tensors = {name: [e["dtype"], e["shape"]] for name, e in header.items() if name != "__metadata__"}
    tensors["__metadata__"] = header.get("__metadata__", {})
    put("fuzz_model_layout", "unipool_own.layout", "{}\0" + json.dumps(tensors, separators=(",", ":")))


def cut_tokenizer(tok, keep_ids):
    model = tok["model"]
    vocab = {t: i for t, i in model["vocab"].items() if i < keep_ids}
    merges = []
    for m in model.get("merges", []):
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        if a in vocab and b in vocab and a + b in vocab:
            merges.append(m)
    model["vocab"] = vocab
    model["merges"] = merges
    tok["added_tokens"] = tok.get("added_tokens", [])[:3]
    return tok


def tokenizer_seeds():
    text = "Hello world, 1234 and\tüñïcödé 中文 <|endoftext|> <s>  spaces\n\nend"
    for name, keep in (("qwen3", 700), ("llama2", 700), ("deepseek_v3", 700)):
        with lzma.open(os.path.join(ROOT, "tests", "data", "tokenizers", name + ".tokenizer.json.xz")) as f:
            tok = json.load(f)
        small = cut_tokenizer(tok, keep)
        put("fuzz_tokenizer", name + ".seed", json.dumps(small, ensure_ascii=False) + "\0" + text)
    put("fuzz_tokenizer", "minimal.seed",
        json.dumps({"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}}) + "\0abba")


def run_seeds(unipool, work):
    log = os.path.join(work, "run.jsonl")
    out = os.path.join(work, "run.safetensors")
    subprocess.run([unipool, "train", "--preset", "tiny", "--steps", "3", "--log", log, "--out", out,
                    "--log-routing-every", "2", "--quiet"], check=True)
    with open(log) as f:
        lines = f.read().splitlines()
    put("fuzz_run_log", "run.jsonl", "\n".join(lines) + "\n")
    put("fuzz_run_log", "torn.jsonl", "\n".join(lines)[:-17])
    header = json.loads(lines[0])["run"]
    recipe = {"format": "unipool-recipe", "version": 1, "label": "fuzz seed", "steps": 3,
              "config": header["config"], "train": header["train"],
              "data": {"path": "", "builtin_bytes": 200000, "builtin_seed": "17"},
              "timeline": [{"step": 1, "kind": "learning_rate", "peak": 0.002},
                           {"step": 1, "kind": "random_routing", "layers": [False, True]},
                           {"step": 2, "kind": "top_k", "k": 1},
                           {"step": 2, "kind": "pool_resized", "experts_per_group": 4, "drop": [1]},
                           {"step": 3, "kind": "freeze"}]}
    put("fuzz_recipe", "recipe.json", json.dumps(recipe, indent=1))
    put("fuzz_recipe", "wrong_version.json", json.dumps(dict(recipe, version=2)))


def lesson_seeds():
    d = os.path.join(ROOT, "resources", "lessons")
    for name in sorted(os.listdir(d))[:4]:
        shutil.copy(os.path.join(d, name), os.path.join(CORPUS, "fuzz_lesson", name))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--unipool", required=True, help="the built CLI (build/bin/unipool)")
    a = ap.parse_args()
    shutil.rmtree(CORPUS, ignore_errors=True)
    os.makedirs(os.path.join(CORPUS, "fuzz_lesson"))
    work = tempfile.mkdtemp(prefix="fuzz_seeds_")
    try:
        safetensors_seeds()
        model_seeds(os.path.join(work, "tiny"))
        own_layout_seed(a.unipool, work)
        tokenizer_seeds()
        run_seeds(a.unipool, work)
        lesson_seeds()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for t in sorted(os.listdir(CORPUS)):
        files = os.listdir(os.path.join(CORPUS, t))
        size = sum(os.path.getsize(os.path.join(CORPUS, t, f)) for f in files)
        print(f"{t}: {len(files)} seeds, {size} bytes")


if __name__ == "__main__":
    main()
