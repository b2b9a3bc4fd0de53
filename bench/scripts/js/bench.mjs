// See run.sh. Prints a table and writes bench/reports/js/REPORT.json.
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const here = dirname(fileURLToPath(import.meta.url));
const cache = process.env.CAIRN_CACHE || join(homedir(), '.cache/cairn');
const buildRoot = process.env.CAIRN_BUILD_CACHE || join(homedir(), '.cache/cairn');
const minilm = join(cache, 'models/all-minilm-l6-v2');
const smollm = join(cache, 'models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf');
const onnxDir = process.env.CAIRN_ONNX_DIR;
const N = 256, BATCH = 32, DECODE = 64;
const golden = JSON.parse(readFileSync(join(here, '../../../tests/fixtures/smollm2_forward.json'), 'utf8'));
const words = 'the install package local file network interface debian configure plot data frame function manual system user library source build'.split(' ');
const sentences = Array.from({ length: N }, (_, i) => Array.from({ length: 12 + (i % 20) }, (_, j) => words[(i * 7 + j * 3) % words.length]).join(' ') + '.');
const rate = (n, ms) => n / (ms / 1000);
const cosine = (a, b) => { let d = 0, x = 0, y = 0; for (let i = 0; i < a.length; i++) { d += a[i] * b[i]; x += a[i] * a[i]; y += b[i] * b[i]; } return d / Math.sqrt(x * y); };

async function timeBatches(embed) {
  await embed(sentences.slice(0, BATCH)); // warm-up
  const t0 = performance.now();
  const out = [];
  for (let i = 0; i < N; i += BATCH) out.push(await embed(sentences.slice(i, i + BATCH)));
  return { perSecond: rate(N, performance.now() - t0), first: out[0] };
}

const report = { machine: `${cpus().length} × ${cpus()[0].model}`, sentences: N, batch: BATCH, node: {}, browser: {} };

// --- node: cairn (wasm, CPU) ---
const cairn = createRequire(import.meta.url)(join(buildRoot, 'build/wasm-pkg/node/cairn_wasm.js'));
const read = (f) => readFileSync(join(minilm, f));
const emb = new cairn.Embedder(read('config.json'), read('model.safetensors'), read('tokenizer.json'), read('1_Pooling/config.json'), read('sentence_bert_config.json'));
const c = await timeBatches((s) => emb.encode(s, true));
report.node.cairnEmbeddingsPerSecond = c.perSecond;
const gen = await cairn.Generator.load(readFileSync(smollm), 'cpu');
await gen.generate(golden.prompt, { maxNewTokens: 2 });
let first = 0; let t0 = performance.now();
const g = await gen.generate(golden.long_prompt, { maxNewTokens: DECODE, eosTokenIds: [999999] }, () => { if (!first) first = performance.now(); });
report.node.cairnDecodeTokensPerSecond = rate(g.tokenIds.length - 1, performance.now() - first);
report.node.cairnPrefillMs = first - t0;

// --- node: transformers.js (onnxruntime-node, int8-weight ONNX) ---
const { pipeline, env } = await import('@huggingface/transformers');
env.allowRemoteModels = false;
env.localModelPath = dirname(onnxDir) + '/';
const extractor = await pipeline('feature-extraction', onnxDir.split('/').pop(), { dtype: 'q8', device: 'cpu' });
const t = await timeBatches(async (s) => (await extractor(s, { pooling: 'mean', normalize: true })).data);
report.node.transformersJsEmbeddingsPerSecond = t.perSecond;
report.node.cosineCairnVsTransformersJs = cosine(c.first.subarray(0, 384), t.first.subarray(0, 384));
report.node.ratioEmbeddings = report.node.cairnEmbeddingsPerSecond / report.node.transformersJsEmbeddingsPerSecond;

// --- headless Chromium: the same, through the page-side packages ---
const { chromium } = await import('playwright-core');
const { serve } = await import('../../../www/serve.mjs');
const server = await serve();
const { createServer } = await import('node:http');
const profile = mkdtempSync(join(tmpdir(), 'cairn-bench-'));
const ctx = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--headless=new', '--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--enable-unsafe-webgpu'],
});
// transformers.js and its model from a second same-machine server (CORS not needed: page on it).
const tjsServer = await (await import('../../../www/serve.mjs')).serve({ root: here, models: dirname(onnxDir) });
try {
  const page = await ctx.newPage();
  await page.goto(server.url + 'index.html');
  await page.waitForFunction(() => document.body.dataset.state === 'started', null, { timeout: 60_000 });
  const inPage = (backend, n) => page.evaluate(async ({ backend, sentences, batch, prompt, decode, n }) => {
    const { Cairn } = await import('/pkg/client.js');
    const c = await Cairn.create({ backend });
    const t0 = performance.now();
    const e = await c.loadEmbedder('/models/all-minilm-l6-v2/');
    await c.loadGenerator('/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf');
    const loadMs = performance.now() - t0;
    const s = sentences.slice(0, n);
    await c.embed(s.slice(0, 2));
    const t1 = performance.now();
    for (let i = 0; i < s.length; i += batch) await c.embed(s.slice(i, i + batch));
    const embedPerSecond = s.length / ((performance.now() - t1) / 1000);
    let first = 0; let count = 0;
    const st = c.generate(prompt, { maxNewTokens: decode, eosTokenIds: [999999] });
    for await (const _ of st) { if (!first) first = performance.now(); count++; }
    const r = await st.result;
    const decodePerSecond = (r.tokenIds.length - 1) / ((performance.now() - first) / 1000);
    c.terminate();
    return { backend: e.backend, loadMs, embedPerSecond, decodePerSecond };
  }, { backend, sentences, batch: BATCH, prompt: golden.long_prompt, decode: backend === 'cpu' ? DECODE : 4, n });
  report.browser.cairnCpu = await inPage('cpu', N);
  if (await page.evaluate(() => document.body.dataset.webgpu) === 'true') {
    report.browser.cairnWebgpu = await inPage('webgpu', 8);
  } else {
    report.browser.cairnWebgpu = 'Chromium offered no WebGPU adapter';
  }
  const page2 = await ctx.newPage();
  await page2.goto(tjsServer.url + 'blank.html');
  report.browser.transformersJsWasm = await page2.evaluate(async ({ sentences, batch, name }) => {
    const { pipeline, env } = await import('/node_modules/@huggingface/transformers/dist/transformers.web.js');
    env.allowRemoteModels = false;
    env.allowLocalModels = true; // the web build turns local models off by default
    env.localModelPath = '/models/';
    env.backends.onnx.wasm.wasmPaths = '/node_modules/onnxruntime-web/dist/';
    const t0 = performance.now();
    const ex = await pipeline('feature-extraction', name, { dtype: 'q8', device: 'wasm' });
    const loadMs = performance.now() - t0;
    await ex(sentences.slice(0, 2), { pooling: 'mean', normalize: true });
    const t1 = performance.now();
    for (let i = 0; i < sentences.length; i += batch) await ex(sentences.slice(i, i + batch), { pooling: 'mean', normalize: true });
    return { loadMs, embedPerSecond: sentences.length / ((performance.now() - t1) / 1000), threads: env.backends.onnx.wasm.numThreads ?? null };
  }, { sentences, batch: BATCH, name: onnxDir.split('/').pop() });
  report.browser.ratioEmbeddingsCpu = report.browser.cairnCpu.embedPerSecond / report.browser.transformersJsWasm.embedPerSecond;
} finally {
  await ctx.close(); await server.close(); await tjsServer.close();
  rmSync(profile, { recursive: true, force: true });
}

const pkg = join(buildRoot, 'build/wasm-pkg/web/cairn_wasm_bg.wasm');
const { gzipSync } = await import('node:zlib');
const wasm = readFileSync(pkg);
report.wasmBytes = { raw: wasm.length, gzip: gzipSync(wasm, { level: 9 }).length };
writeFileSync(join(here, '../../reports/js/REPORT.json'), JSON.stringify(report, null, 2) + '\n');
console.log(JSON.stringify(report, null, 2));
