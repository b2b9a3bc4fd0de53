// cairn's Web Worker: owns the wasm module, the models and the index, so the
// page never freezes. Speaks a small request/response protocol with
// client.js: every request has an `id`; replies are
//   { id, type: 'progress', ... } | { id, type: 'piece', text }
//   { id, type: 'step', step } | { id, type: 'tool', callId, name, args }
//     (the page answers a tool request with { op: 'toolResult', callId, ok | error })
//   { id, type: 'result', value } | { id, type: 'error', message, name }
import init, { Agent, Embedder, Generator, Index, calculate, calculatorSpec, webgpuAvailable, version } from './cairn_wasm.js';

const CACHE = 'cairn-models-v1';
let ready = null;
let embedder = null;
let generator = null;
let index = null;
let embedderName = null;
const aborts = new Map();
// Tool calls waiting for the page: callId → resolve({ ok } | { error }).
const toolWaits = new Map();
let nextCall = 1;

/** Asks the page to run its tool `name`; resolves to { ok } or { error }. */
function pageTool(id, name, args) {
  const callId = nextCall++;
  return new Promise((resolve) => {
    toolWaits.set(callId, resolve);
    post({ id, type: 'tool', callId, name, args });
  });
}

const post = (m, transfer) => self.postMessage(m, transfer ?? []);

/** Fetches `url` with byte progress, from the Cache API when it holds it. */
async function fetchBytes(url, onProgress, signal) {
  const cache = (typeof caches !== 'undefined') ? await caches.open(CACHE).catch(() => null) : null;
  const hit = cache && await cache.match(url);
  if (hit) {
    const bytes = new Uint8Array(await hit.arrayBuffer());
    onProgress(bytes.length, bytes.length, true);
    return bytes;
  }
  let res;
  try {
    res = await fetch(url, { signal });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new Error(`${url}: network error (${e.message})`);
  }
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${res.statusText || ''}`.trim());
  const total = Number(res.headers.get('content-length')) || 0;
  const reader = res.body.getReader();
  const parts = [];
  let got = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    parts.push(value);
    got += value.length;
    onProgress(got, total, false);
  }
  const bytes = new Uint8Array(got);
  let at = 0;
  for (const p of parts) { bytes.set(p, at); at += p.length; }
  if (cache) await cache.put(url, new Response(bytes, { headers: { 'content-type': 'application/octet-stream' } })).catch(() => {});
  return bytes;
}

/** Fetches several files, reporting progress over all of them. */
async function fetchAll(id, files, signal) {
  const done = new Map();
  const totals = new Map();
  const report = (file) => (got, total, cached) => {
    done.set(file, got); totals.set(file, total || got);
    const loaded = [...done.values()].reduce((a, b) => a + b, 0);
    const all = [...totals.values()].reduce((a, b) => a + b, 0);
    post({ id, type: 'progress', file, loaded, total: all, cached });
  };
  const out = {};
  for (const [key, url, optional] of files) {
    try {
      out[key] = await fetchBytes(url, report(url), signal);
    } catch (e) {
      if (optional && /HTTP 404/.test(e.message)) { out[key] = undefined; continue; }
      throw e;
    }
  }
  return out;
}

const ops = {
  async init({ wasmUrl }) {
    ready ??= init(wasmUrl ? { module_or_path: wasmUrl } : undefined);
    await ready;
    return { version: version(), webgpu: await webgpuAvailable() };
  },
  async loadEmbedder({ id, url, files, name, backend }, signal) {
    const base = url && (url.endsWith('/') ? url : url + '/');
    const f = files ?? await fetchAll(id, [
      ['config', base + 'config.json'], ['weights', base + 'model.safetensors'],
      ['tokenizer', base + 'tokenizer.json'], ['pooling', base + '1_Pooling/config.json', true],
      ['sbert', base + 'sentence_bert_config.json', true]], signal);
    const e = await Embedder.load(f.config, f.weights, f.tokenizer, f.pooling, f.sbert, backend);
    // Same model on another backend: keep the indexed documents, queried
    // through the new embedder. Another model: a new, empty index.
    const kept = index && embedderName === name ? index.toBytes() : null;
    embedder = e;
    embedderName = name;
    index = kept ? Index.fromBytes(kept, embedder, name) : new Index(embedder, name);
    return { backend: e.backend, dim: e.dim };
  },
  async loadGenerator({ id, url, bytes, backend }, signal) {
    const gguf = bytes ? new Uint8Array(bytes) : (await fetchAll(id, [['gguf', url]], signal)).gguf;
    post({ id, type: 'progress', stage: 'building the model' });
    generator = await Generator.load(gguf, backend);
    return { backend: generator.backend, contextLength: generator.contextLength };
  },
  async loadAdapter({ id, url, files }, signal) {
    need(generator, 'a generator (loadGenerator)');
    if (!url && !files) { generator.setAdapter(null, null); return { active: false }; }
    const base = url && (url.endsWith('/') ? url : url + '/');
    const f = files ?? await fetchAll(id, [['config', base + 'adapter_config.json'], ['weights', base + 'adapter_model.safetensors']], signal);
    generator.setAdapter(new Uint8Array(f.config), new Uint8Array(f.weights));
    return { active: true };
  },
  async addFile({ id, name, bytes, collection }) {
    need(index, 'an embedder (loadEmbedder)');
    return await index.addFile(name, new Uint8Array(bytes), collection,
      (done, total) => { post({ id, type: 'progress', done, total }); });
  },
  async removeFile({ name, collection }) { need(index, 'an embedder (loadEmbedder)'); return index.removeFile(name, collection); },
  async files() { return index ? index.files() : []; },
  async search({ query, options }) { need(index, 'an embedder (loadEmbedder)'); return await index.search(query, options); },
  async embed({ texts, normalize }) { need(embedder, 'an embedder (loadEmbedder)'); return await embedder.encode(texts, normalize ?? true); },
  async ask({ id, question, options }) {
    need(index, 'an embedder (loadEmbedder)');
    need(generator, 'a generator (loadGenerator)');
    return await index.ask(generator, question, options, (text) => { post({ id, type: 'piece', text }); });
  },
  async generate({ id, prompt, options }) {
    need(generator, 'a generator (loadGenerator)');
    return await generator.generate(prompt, options, (text) => { post({ id, type: 'piece', text }); });
  },
  async chat({ id, messages, options }) {
    need(generator, 'a generator (loadGenerator)');
    return await generator.chat(messages, options, (text) => { post({ id, type: 'piece', text }); });
  },
  async agent({ id, task, tools, options }) {
    need(generator, 'a generator (loadGenerator)');
    // tools: [{ name, description, parameters, builtin }]; builtins run here,
    // the others in the page.
    const specs = tools.map((t) => t.builtin === 'calculator'
      ? { ...calculatorSpec(), name: t.name }
      : { name: t.name, description: t.description ?? '', parameters: t.parameters ?? { type: 'object', properties: {} } });
    const builtin = new Map(tools.filter((t) => t.builtin).map((t) => [t.name, t.builtin]));
    const agent = new Agent(generator, task, specs, options ?? {});
    try {
      while (!agent.isDone) {
        let step = await agent.next((text) => { post({ id, type: 'piece', text }); });
        if (step.action.kind === 'call') {
          const { name, arguments: args } = step.action;
          let r;
          if (builtin.get(name) === 'calculator') {
            try { r = { ok: calculate(String(args.expression ?? '')) }; } catch (e) { r = { error: String(e?.message ?? e) }; }
          } else {
            r = await pageTool(id, name, args);
          }
          step = agent.observe(r.error !== undefined ? r.error : r.ok, r.error !== undefined);
        }
        post({ id, type: 'step', step });
      }
      return agent.outcome();
    } finally {
      agent.free();
    }
  },
  async exportIndex() { need(index, 'an embedder (loadEmbedder)'); return index.toBytes(); },
  async importIndex({ bytes }) {
    need(embedder, 'an embedder (loadEmbedder)');
    index = Index.fromBytes(new Uint8Array(bytes), embedder, embedderName);
    return index.files();
  },
};

function need(thing, what) {
  if (!thing) throw new Error(`load ${what} first`);
}

self.onmessage = async ({ data }) => {
  const { id, op } = data;
  if (op === 'abort') { aborts.get(data.target)?.abort(); return; }
  if (op === 'toolResult') {
    const w = toolWaits.get(data.callId);
    toolWaits.delete(data.callId);
    w?.(data.error !== undefined ? { error: String(data.error) } : { ok: String(data.ok) });
    return;
  }
  const fn = ops[op];
  if (!fn) { post({ id, type: 'error', name: 'Error', message: `unknown operation '${op}'` }); return; }
  const ctl = new AbortController();
  aborts.set(id, ctl);
  try {
    if (op !== 'init') await (ready ?? Promise.reject(new Error('call init first')));
    const value = await fn(data, ctl.signal);
    post({ id, type: 'result', value });
  } catch (e) {
    const aborted = e?.name === 'AbortError';
    post({ id, type: 'error', name: aborted ? 'AbortError' : (e?.name ?? 'Error'),
      message: aborted ? 'loading was cancelled' : String(e?.message ?? e) });
  } finally {
    aborts.delete(id);
  }
};
