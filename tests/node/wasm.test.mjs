// The wasm32 build of cairn-core + cairn-wasm, run in node (node --test).
// CAIRN_WASM_PKG points at the wasm-bindgen --target nodejs output that
// scripts/build-wasm.sh writes; models come from the fetch cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFileSync, openSync, readSync, closeSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = process.env.CAIRN_WASM_PKG ?? join(homedir(), '.cache/cairn/build/wasm-pkg/node');
const cairn = createRequire(import.meta.url)(join(pkg, 'cairn_wasm.js'));
const cache = process.env.CAIRN_CACHE || join(homedir(), '.cache/cairn');
const minilm = join(cache, 'models/all-minilm-l6-v2');
const smollm = join(cache, 'models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf');

test('version matches the crate', () => {
  assert.equal(cairn.version(), '0.1.0');
});

test('MiniLM tokenizer in wasm gives the Python tokenizers ids on 1,000 strings', () => {
  const tok = new cairn.Tokenizer(readFileSync(join(minilm, 'tokenizer.json')));
  assert.equal(tok.vocabSize, 30522);
  const golden = JSON.parse(readFileSync(join(here, '../fixtures/tokenizer_golden.json'), 'utf8'));
  assert.equal(golden.cases.length, 1000);
  for (const c of golden.cases) {
    assert.deepEqual(Array.from(tok.encodeIds(c.text, true)), c.ids, c.text);
    assert.deepEqual(Array.from(tok.encodeIds(c.text, false)), c.ids_no_special, c.text);
  }
  const e = tok.encode('Hello, world!', true);
  assert.deepEqual(e.tokens, ['[CLS]', 'hello', ',', 'world', '!', '[SEP]']);
  assert.deepEqual(e.offsets[1], [0, 5]);
  assert.equal(tok.decode(Uint32Array.from(e.ids), true), 'hello, world!');
});

test('a broken tokenizer.json is a clear error, not a crash', () => {
  assert.throws(() => new cairn.Tokenizer(new TextEncoder().encode('{"not": "a tokenizer"}')), /not a valid tokenizer\.json/);
});

test('CPU backend matmul in wasm (candle, simd128)', () => {
  const c = cairn.matmul(Float32Array.from([1, 2, 3, 4]), Float32Array.from([5, 6, 7, 8]), 2, 2, 2, false);
  assert.deepEqual(Array.from(c), [19, 22, 43, 50]);
  const ct = cairn.matmul(Float32Array.from([1, 2, 3, 4]), Float32Array.from([5, 7, 6, 8]), 2, 2, 2, true);
  assert.deepEqual(Array.from(ct), [19, 22, 43, 50]);
  assert.throws(() => cairn.matmul(Float32Array.from([1, 2, 3]), Float32Array.from([1, 2]), 2, 2, 1, false), /A has 3 elements, expected 2×2/);
});

test('GGUF header of SmolLM2 read from the first 4 MB', () => {
  const fd = openSync(smollm, 'r');
  const head = Buffer.alloc(4 << 20);
  readSync(fd, head, 0, head.length, 0);
  closeSync(fd);
  const h = cairn.inspectGguf(head);
  assert.equal(h.version, 3);
  assert.equal(h.architecture, 'llama');
  assert.equal(h.tensorCount, 272);
  assert.equal(h.metadataCount, 33);
  assert.equal(Number(h.dataOffset) + Number(h.dataBytes), statSync(smollm).size);
  assert.throws(() => cairn.inspectGguf(head.subarray(0, 1000)), /GGUF model\.gguf: file ends/);
});

test('MiniLM embeddings in wasm match the numpy reference (cosine ≥ 0.9999)', () => {
  const read = (f) => readFileSync(join(minilm, f));
  const emb = new cairn.Embedder(read('config.json'), read('model.safetensors'), read('tokenizer.json'),
    read('1_Pooling/config.json'), read('sentence_bert_config.json'));
  assert.equal(emb.dim, 384);
  const golden = JSON.parse(readFileSync(join(here, '../fixtures/minilm_embeddings.json'), 'utf8'));
  const out = emb.encode(golden.sentences, true);
  assert.equal(out.length, golden.sentences.length * 384);
  golden.sentences.forEach((s, i) => {
    const row = out.subarray(i * 384, (i + 1) * 384);
    const cos = cairn.cosineSimilarity(row, Float32Array.from(golden.embeddings[i]));
    assert.ok(cos >= 0.9999, `${s}: cosine ${cos}`);
  });
  assert.throws(() => new cairn.Embedder(new Uint8Array([123]), read('model.safetensors'), read('tokenizer.json')), /config\.json: invalid JSON/);
});
