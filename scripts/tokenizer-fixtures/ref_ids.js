#!/usr/bin/env node
// Usage: node ref_ids.js <tokenizer.json> [texts.json] > expected_<name>.json
// Uses the official HF tokenizers Node binding (Rust core).
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('tokenizers');

async function main() {
  const file = process.argv[2];
  const textsFile = process.argv[3] || path.join(__dirname, 'texts.json');
  if (!file) { console.error('usage: node ref_ids.js tokenizer.json [texts.json]'); process.exit(2); }
  const tok = Tokenizer.fromFile(file);
  const texts = JSON.parse(fs.readFileSync(textsFile, 'utf8'));
  const cases = [];
  for (const text of texts) {
    const encPlain = await tok.encode(text, null, { addSpecialTokens: false });
    const encSpecial = await tok.encode(text, null, { addSpecialTokens: true });
    const ids_plain = encPlain.getIds();
    const ids_special = encSpecial.getIds();
    cases.push({
      text,
      ids_plain,
      ids_special,
      tokens_plain: encPlain.getTokens(),
      offsets_plain: encPlain.getOffsets(),
      decoded: await tok.decode(ids_plain, false),            // skip_special_tokens=false
      decoded_special: await tok.decode(ids_special, false),
      decoded_skip_special: await tok.decode(ids_special, true), // skip_special_tokens=true
    });
  }
  const tokVersion = require('tokenizers/package.json').version;
  process.stdout.write(JSON.stringify({ file, tokenizers_npm_version: tokVersion, cases }, null, 1) + '\n');
}
main().catch(e => { console.error(e); process.exit(1); });
