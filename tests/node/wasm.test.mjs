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

test('MiniLM embeddings in wasm match the numpy reference (cosine ≥ 0.9999)', async () => {
  const read = (f) => readFileSync(join(minilm, f));
  const emb = new cairn.Embedder(read('config.json'), read('model.safetensors'), read('tokenizer.json'),
    read('1_Pooling/config.json'), read('sentence_bert_config.json'));
  assert.equal(emb.dim, 384);
  const golden = JSON.parse(readFileSync(join(here, '../fixtures/minilm_embeddings.json'), 'utf8'));
  assert.equal(emb.backend, 'cpu (wasm simd128)');
  const out = await emb.encode(golden.sentences, true);
  assert.equal(out.length, golden.sentences.length * 384);
  golden.sentences.forEach((s, i) => {
    const row = out.subarray(i * 384, (i + 1) * 384);
    const cos = cairn.cosineSimilarity(row, Float32Array.from(golden.embeddings[i]));
    assert.ok(cos >= 0.9999, `${s}: cosine ${cos}`);
  });
  assert.throws(() => new cairn.Embedder(new Uint8Array([123]), read('model.safetensors'), read('tokenizer.json')), /config\.json: invalid JSON/);
});

const readMiniLM = (f) => readFileSync(join(minilm, f));
const loadMiniLM = () => new cairn.Embedder(readMiniLM('config.json'), readMiniLM('model.safetensors'),
  readMiniLM('tokenizer.json'), readMiniLM('1_Pooling/config.json'), readMiniLM('sentence_bert_config.json'));
let smol;
const loadSmol = async () => (smol ??= await cairn.Generator.load(readFileSync(smollm), 'auto'));

test('node has no WebGPU: "auto" runs on the CPU, "webgpu" is a clear error', async () => {
  assert.equal(await cairn.webgpuAvailable(), false);
  const g = await loadSmol();
  assert.equal(g.backend, 'cpu (wasm simd128)');
  await assert.rejects(cairn.Generator.load(readFileSync(smollm), 'webgpu'), /no WebGPU/);
  await assert.rejects(cairn.Generator.load(readFileSync(smollm), 'tpu'), /backend: unknown value 'tpu'/);
});

test('SmolLM2 greedy decoding in wasm gives the native/numpy reference tokens', async () => {
  const golden = JSON.parse(readFileSync(join(here, '../fixtures/smollm2_forward.json'), 'utf8'));
  const g = await loadSmol();
  assert.equal(g.contextLength, 8192);
  assert.deepEqual(Array.from(g.encode(golden.prompt)), golden.prompt_ids);
  const pieces = [];
  const out = await g.generate(golden.prompt, { maxNewTokens: 16 }, (p) => { pieces.push(p); });
  assert.deepEqual(out.tokenIds, golden.greedy.map((t) => t.id));
  assert.equal(out.text, golden.greedy_text);
  assert.equal(pieces.join(''), golden.greedy_text);
  assert.equal(out.finishReason, 'eos');
  assert.equal(out.promptTokens, golden.prompt_ids.length);
  const long = await g.generate(golden.long_prompt, { maxNewTokens: 32 });
  assert.deepEqual(out.tokenIds.length, 8);
  assert.deepEqual(long.tokenIds, golden.long_greedy.map((t) => t.id));
  // The chat template gives the same prompt; a callback returning false stops.
  const chat = await g.chat([{ role: 'user', content: 'What is the capital of France?' }], { maxNewTokens: 3 }, () => false);
  assert.equal(chat.tokenIds.length, 1);
  assert.equal(chat.finishReason, 'cancelled');
  // Bad options name the field.
  await assert.rejects(g.generate('x', { maxTokens: 3 }), /unknown option 'maxTokens'.*maxNewTokens/);
  await assert.rejects(g.generate('x', { doSample: true, temperature: 0 }), /temperature: must be a strictly positive number/);
  await assert.rejects(g.generate('x', {}, () => { throw new Error('from the callback'); }), /from the callback/);
});

test('Index in wasm: a PDF and Markdown ingested from bytes, hybrid search, a cited answer', async () => {
  const emb = loadMiniLM();
  const ix = new cairn.Index(emb, 'all-minilm-l6-v2');
  const pdf = readFileSync(join(here, '../fixtures/mini.pdf'));
  const progress = [];
  const added = await ix.addFile('mini.pdf', pdf, 'manuals', (done, total) => { progress.push([done, total]); });
  assert.equal(added.pages, 3);
  assert.equal(added.indexed, true);
  assert.ok(progress.length >= 1 && progress.at(-1)[0] === progress.at(-1)[1], JSON.stringify(progress));
  assert.equal((await ix.addFile('mini.pdf', pdf, 'manuals')).indexed, false);
  await ix.addFile('notes.md', new TextEncoder().encode('# Cooking\n## Bread\nKnead the dough for ten minutes and let it rise for an hour.\n'), 'manuals');
  await assert.rejects(ix.addFile('broken.pdf', pdf.subarray(0, pdf.length / 3)), /broken\.pdf: cannot read PDF/);
  assert.deepEqual(ix.files().map((f) => [f.source, f.pages]), [['mini.pdf', 3], ['notes.md', 0]]);

  for (const method of ['hybrid', 'bm25', 'dense']) {
    const hits = await ix.search('Where are network interfaces configured on Debian?', { method, k: 2 });
    assert.equal(hits[0].page, 3, method);
    assert.equal(hits[0].n, 1);
  }
  const bread = await ix.search('how long should bread dough rise', {});
  assert.deepEqual(bread[0].headings, ['Cooking', 'Bread']);
  await assert.rejects(ix.search('x', { method: 'magic' }), /unknown value 'magic'/);
  await assert.rejects(ix.search('x', { collections: ['nope'] }), /no collection 'nope'/);

  const g = await loadSmol();
  const pieces = [];
  const a = await ix.ask(g, 'How do I install a package from a local file?', { maxNewTokens: 48 }, (p) => { pieces.push(p); });
  assert.equal(a.grounded, true, a.text);
  assert.equal(pieces.join('').trim(), a.text);
  assert.equal(a.sources[0].source, 'mini.pdf');
  assert.equal(a.sources[0].page, 1);
  assert.match(a.text, /R CMD INSTALL|install\.packages/);
  const none = await ix.ask(g, 'What is the boiling point of mercury on Venus?', {});
  assert.equal(none.grounded, false);
  assert.match(none.text, /^I don't know/);
  // The extractive answer: the closest source sentence, verbatim, with its number — no decoder.
  const quoted = [];
  const q = await ix.ask(g, 'How do I install a package from a local file?', { answer: 'quote' }, (p) => { quoted.push(p); });
  assert.equal(q.generatedTokens, 0);
  assert.equal(quoted.join(''), q.text);
  const first = q.text.split('\n')[0];
  assert.match(first, /^"Installing packages To install a package from a local file, run R CMD INSTALL pkg_1\.0\.tar\.gz in a shell, or call install\.packages with repos set to NULL inside R\." \[(\d)\]$/);
  const n = Number(first.match(/\[(\d)\]$/)[1]);
  assert.equal(q.sources[n - 1].page, 1);
  assert.deepEqual(q.cited.includes(n), true);
  await assert.rejects(ix.ask(g, 'x', { answer: 'poem' }), /option 'answer': unknown value 'poem'/);

  // The bytes round-trip, and removing a file drops its passages.
  const again = cairn.Index.fromBytes(ix.toBytes(), emb, 'all-minilm-l6-v2');
  assert.equal(again.files().length, 2);
  assert.throws(() => cairn.Index.fromBytes(ix.toBytes(), emb, 'other'), /built with embedder 'all-minilm-l6-v2'/);
  assert.equal(again.removeFile('notes.md', 'manuals'), true);
  const after = await again.search('how long should bread dough rise', {});
  assert.ok(after.every((h) => h.source === 'mini.pdf'));
});

test('a PEFT adapter (written by HF PEFT 0.21.2) applied in wasm gives transformers+PEFT\'s next token', async () => {
  const golden = JSON.parse(readFileSync(join(here, '../fixtures/peft_adapter/golden.json'), 'utf8'));
  const dir = join(here, '../fixtures/peft_adapter');
  const g = await cairn.Generator.load(readFileSync(smollm), 'cpu');
  const prompt = Uint32Array.from(golden.ids); // token ids as the prompt, exactly
  const base = await g.generate(prompt, { maxNewTokens: 1 });
  g.setAdapter(readFileSync(join(dir, 'adapter_config.json')), readFileSync(join(dir, 'adapter_model.safetensors')));
  const adapted = await g.generate(prompt, { maxNewTokens: 1 });
  assert.equal(adapted.tokenIds[0], golden.top_ids[0]);
  assert.notEqual(base.tokenIds[0], adapted.tokenIds[0]);
  g.setAdapter(null, null);
  assert.deepEqual((await g.generate(prompt, { maxNewTokens: 1 })).tokenIds, base.tokenIds);
  assert.throws(() => g.setAdapter(readFileSync(join(dir, 'adapter_config.json')), null), /pass both/);
  assert.throws(() => g.setAdapter(readFileSync(join(dir, 'adapter_config.json')), new Uint8Array([1, 2, 3])), /safetensors/);
  assert.deepEqual((await g.generate(prompt, { maxNewTokens: 1 })).tokenIds, base.tokenIds);
  await assert.rejects(g.generate([1, 99999999], {}), /prompt token id 99999999 is outside the vocabulary/);
  await assert.rejects(g.generate({ text: 'x' }, {}), /the prompt must be a string or token ids/);
});

test('structured output in wasm: jsonSchema, regex and choice hold the output; bad formats are clear errors', async () => {
  const g = await loadSmol();
  const schema = { type: 'object', properties: { name: { type: 'string', maxLength: 20 }, age: { type: 'integer', minimum: 0, maximum: 130 } }, required: ['name', 'age'] };
  const out = await g.chat([{ role: 'user', content: 'Describe a person as JSON with a name and an age.' }], { maxNewTokens: 60, jsonSchema: schema });
  const v = JSON.parse(out.text);
  assert.deepEqual(Object.keys(v).sort(), ['age', 'name']);
  assert.ok(Number.isInteger(v.age) && v.age >= 0 && v.age <= 130, out.text);
  assert.ok(typeof v.name === 'string' && v.name.length <= 20, out.text);
  const yes = await g.chat([{ role: 'user', content: 'Is Paris in France? Answer yes or no.' }], { maxNewTokens: 5, choice: ['yes', 'no'] });
  assert.ok(['yes', 'no'].includes(yes.text), yes.text);
  const date = await g.chat([{ role: 'user', content: 'When did the Berlin wall fall?' }], { maxNewTokens: 12, regex: '[0-9]{4}-[0-9]{2}-[0-9]{2}' });
  assert.match(date.text, /^\d{4}-\d{2}-\d{2}$/);
  await assert.rejects(g.generate('x', { jsonSchema: { type: 'object', patternProperties: {} } }), /jsonSchema: .*'patternProperties' is not supported/);
  await assert.rejects(g.generate('x', { regex: 'a', choice: ['b'] }), /at most one of jsonSchema, regex and choice/);
  await assert.rejects(g.generate([1, 2], { regex: 'a' }), /need a text prompt/);
});

test('the agent in wasm: the built-in calculator answers 421.5; a throwing tool is an observation; the step cap ends the loop', async () => {
  const g = await loadSmol();
  assert.equal(cairn.calculate('17.5% of 2,340 + sqrt(144)'), '421.5');
  assert.throws(() => cairn.calculate('1/0'), /division by zero/);
  const spec = cairn.calculatorSpec();
  const agent = new cairn.Agent(g, 'What is 17.5% of 2,340 plus the square root of 144?', [spec], {});
  const steps = [];
  while (!agent.isDone) {
    let step = await agent.next();
    if (step.action.kind === 'call') {
      assert.equal(agent.pendingCall.name, 'calculator');
      step = agent.observe(cairn.calculate(step.action.arguments.expression), false);
    }
    steps.push(step);
  }
  const outcome = agent.outcome();
  assert.equal(steps[0].action.name, 'calculator');
  assert.equal(steps[0].observation, '421.5');
  assert.equal(outcome.stop, 'answered');
  assert.match(outcome.answer, /421\.5/);
  agent.free();

  const broken = new cairn.Agent(g, 'What is 6 times 7?', [spec], { maxSteps: 1 });
  const s = await broken.next();
  assert.equal(s.action.kind, 'call');
  const seen = broken.observe('the tool crashed', true);
  assert.equal(seen.observation, 'error: the tool crashed');
  assert.equal(seen.error, true);
  assert.equal(broken.isDone, true);
  assert.equal(broken.outcome().stop, 'step_cap');
  await assert.rejects(broken.next(), /the agent is done/);
  assert.throws(() => new cairn.Agent(g, 'x', [{ name: 'rm -rf', parameters: { type: 'object' } }], {}), /tool name 'rm -rf'/);
  assert.throws(() => new cairn.Agent(g, 'x', [spec], { maxSteps: 2, bogus: 1 }), /unknown option 'bogus'/);
});

test('word2vec vectors trained by the CLI load in wasm: neighbours, analogy, similarity', () => {
  // tests/fixtures/word2vec_toy_vectors.txt: `cairn train word2vec` on two topics (native/tests/word2vec.rs).
  const text = readFileSync(join(here, '../fixtures/word2vec_toy_vectors.txt'), 'utf8');
  const wv = new cairn.WordVectors(text);
  assert.equal(wv.size, 20);
  assert.equal(wv.dim, 8);
  const animals = ['cat', 'dog', 'mouse', 'horse', 'cow', 'sheep', 'goat', 'pig', 'duck', 'hen'];
  const near = wv.mostSimilar('cat', 9);
  assert.equal(near.length, 9);
  assert.ok(near.every((n) => animals.includes(n.word) && n.word !== 'cat'), JSON.stringify(near));
  // The cosine of the file's own rows.
  const rows = Object.fromEntries(text.trim().split('\n').slice(1).map((l) => { const p = l.split(' '); return [p[0], p.slice(1).map(Number)]; }));
  const cos = (a, b) => { let d = 0, na = 0, nb = 0; for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; } return d / Math.sqrt(na * nb); };
  assert.ok(Math.abs(wv.similarity('cat', 'car') - cos(rows.cat, rows.car)) < 1e-5);
  assert.ok(Math.abs(near[0].score - cos(rows.cat, rows[near[0].word])) < 1e-5);
  assert.deepEqual(Array.from(wv.vector('dog')), rows.dog.map((x) => Math.fround(x)));
  assert.equal(wv.vector('zebra'), undefined);
  assert.ok(wv.analogy('cat', 'dog', 'car', 3).every((n) => !animals.includes(n.word)));
  assert.throws(() => wv.mostSimilar('zebra', 3), /'zebra' is not in the vocabulary/);
  assert.throws(() => new cairn.WordVectors('2 3\na 1 2 3\n'), /the header says 2 words, the file holds 1/);
});
