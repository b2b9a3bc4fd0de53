// cairn in the browser: the page-side API. Everything heavy runs in a Web
// Worker (worker.js); this module sends it requests and turns its replies
// into promises and async iterators.
//
//   import { Cairn } from 'cairn-wasm/client.js';
//   const cairn = await Cairn.create();                    // { backend: 'auto' }
//   await cairn.loadEmbedder('/models/all-minilm-l6-v2/', { onProgress });
//   await cairn.loadGenerator('/models/smollm2.gguf', { onProgress });
//   await cairn.addFile(file);                             // a File from <input> or a drop
//   const answer = cairn.ask('How do I install a package?');
//   for await (const piece of answer) out.textContent += piece;
//   const { sources, cited } = await answer.result;

/** Largest file `addFile` accepts by default (bytes). */
export const MAX_FILE_BYTES = 100 * 1024 * 1024;

/** A stream of text pieces that is also awaitable for the final result. */
class TextStream {
  constructor() {
    this.queue = [];
    this.waiters = [];
    this.finished = false;
    this.result = new Promise((resolve, reject) => { this.resolve = resolve; this.reject = reject; });
    this.result.catch(() => {});
  }
  push(text) {
    const w = this.waiters.shift();
    if (w) w.resolve({ value: text, done: false }); else this.queue.push(text);
  }
  end(value) {
    this.finished = true;
    this.resolve(value);
    for (const w of this.waiters.splice(0)) w.resolve({ value: undefined, done: true });
  }
  fail(err) {
    this.finished = true;
    this.error = err;
    this.reject(err);
    for (const w of this.waiters.splice(0)) w.reject(err);
  }
  [Symbol.asyncIterator]() {
    return {
      next: () => {
        if (this.queue.length) return Promise.resolve({ value: this.queue.shift(), done: false });
        if (this.error) return Promise.reject(this.error);
        if (this.finished) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
      },
    };
  }
  then(onOk, onErr) { return this.result.then(onOk, onErr); }
}

const isUrl = (x) => typeof x === 'string' || x instanceof URL;

function toError({ name, message }) {
  const e = new Error(message);
  e.name = name || 'Error';
  return e;
}

/** A cairn engine running in a Web Worker. */
export class Cairn {
  /**
   * Starts the worker and the wasm module. Options: `backend` (`'auto'`:
   * WebGPU when the browser has an adapter, else CPU; `'cpu'`; `'webgpu'`),
   * `workerUrl`, `wasmUrl`.
   */
  static async create(options = {}) {
    // The literal `new Worker(new URL(...), { type: 'module' })` form is what
    // bundlers (Vite, webpack 5) recognise to bundle the worker with its wasm.
    const worker = options.workerUrl
      ? new Worker(options.workerUrl, { type: 'module' })
      : new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    const c = new Cairn(worker, options.backend ?? 'auto');
    const info = await c.#call('init', { wasmUrl: options.wasmUrl?.toString() });
    c.version = info.version;
    c.webgpu = info.webgpu;
    return c;
  }

  #worker; #next = 1; #pending = new Map();

  constructor(worker, backend) {
    this.#worker = worker;
    this.backend = backend;
    worker.onmessage = ({ data }) => {
      const p = this.#pending.get(data.id);
      if (!p) return;
      if (data.type === 'progress') p.onProgress?.(data);
      else if (data.type === 'piece') p.stream?.push(data.text);
      else if (data.type === 'step') p.onStep?.(data.step);
      else if (data.type === 'tool') this.#runTool(p, data);
      else {
        this.#pending.delete(data.id);
        if (data.type === 'result') { p.stream?.end(data.value); p.resolve(data.value); }
        else { const e = toError(data); p.stream?.fail(e); p.reject(e); }
      }
    };
    worker.onerror = (ev) => {
      const e = new Error(`cairn worker failed: ${ev.message ?? 'unknown error'}`);
      for (const p of this.#pending.values()) { p.stream?.fail(e); p.reject(e); }
      this.#pending.clear();
    };
  }

  /** Runs a page-registered tool for the worker's agent, under its timeout. */
  async #runTool(p, { callId, name, args }) {
    const tool = p.tools?.[name];
    let reply;
    try {
      if (typeof tool?.run !== 'function') throw new Error(`tool '${name}' is not registered`);
      let timer;
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`tool '${name}' timed out after ${p.toolTimeoutMs} ms`)), p.toolTimeoutMs);
      });
      try {
        const out = await Promise.race([Promise.resolve().then(() => tool.run(args)), timeout]);
        reply = { ok: typeof out === 'string' ? out : JSON.stringify(out) };
      } finally {
        clearTimeout(timer);
      }
    } catch (e) {
      reply = { error: String(e?.message ?? e) };
    }
    this.#worker.postMessage({ op: 'toolResult', callId, ...reply });
  }

  #call(op, args = {}, { onProgress, signal, stream, transfer, onStep, tools, toolTimeoutMs } = {}) {
    const id = this.#next++;
    const promise = new Promise((resolve, reject) => {
      if (signal?.aborted) { reject(toError({ name: 'AbortError', message: 'loading was cancelled' })); return; }
      this.#pending.set(id, { resolve, reject, onProgress, stream, onStep, tools, toolTimeoutMs });
      signal?.addEventListener('abort', () => this.#worker.postMessage({ op: 'abort', target: id }), { once: true });
      this.#worker.postMessage({ id, op, ...args }, transfer ?? []);
    });
    promise.catch(() => {});
    return promise;
  }

  /**
   * Loads a sentence embedder from a folder URL holding `config.json`,
   * `model.safetensors`, `tokenizer.json` (and optionally the
   * sentence-transformers pooling files). Files are cached in the browser's
   * Cache API. `onProgress({ file, loaded, total, cached })`; `signal`
   * (AbortSignal) cancels. Resolves to `{ backend, dim }`. A new embedder
   * name starts a new, empty index.
   */
  loadEmbedder(source, { name = 'all-minilm-l6-v2', onProgress, signal, backend } = {}) {
    const files = isUrl(source) ? undefined : {
      config: source.config, weights: source.weights, tokenizer: source.tokenizer,
      pooling: source.pooling, sbert: source.sentenceBert,
    };
    if (files && !(files.config && files.weights && files.tokenizer)) {
      return Promise.reject(new Error('loadEmbedder: pass a folder URL, or { config, weights, tokenizer } bytes'));
    }
    return this.#call('loadEmbedder', { url: files ? undefined : source.toString(), files, name, backend: backend ?? this.backend }, { onProgress, signal });
  }

  /**
   * Loads a GGUF decoder from a URL (cached; progress and cancel as above)
   * or from its bytes (`Uint8Array`/`ArrayBuffer`). Resolves to
   * `{ backend, contextLength }`.
   */
  loadGenerator(source, { onProgress, signal, backend } = {}) {
    const bytes = isUrl(source) ? undefined : source;
    return this.#call('loadGenerator', { url: bytes ? undefined : source.toString(), bytes, backend: backend ?? this.backend }, { onProgress, signal });
  }

  /**
   * Activates a LoRA adapter in PEFT's layout on the generator (applied
   * unmerged): a folder URL holding `adapter_config.json` and
   * `adapter_model.safetensors` (as `cairn train lora` writes), or
   * `{ config, weights }` bytes; `null` removes it. Resolves to `{ active }`.
   */
  loadAdapter(source, { onProgress, signal } = {}) {
    if (source == null) return this.#call('loadAdapter', {});
    const files = isUrl(source) ? undefined : { config: source.config, weights: source.weights };
    return this.#call('loadAdapter', { url: files ? undefined : source.toString(), files }, { onProgress, signal });
  }

  /**
   * Indexes a document (a `File`/`Blob` with a name, or `{ name, bytes }`):
   * PDF, HTML, Markdown or text, by extension. Files over `maxBytes`
   * (default 100 MiB) are refused before reading. `onProgress({ done, total })`
   * follows the embedding of its chunks. Resolves to
   * `{ source, collection, indexed, pages, parents, children }`.
   */
  async addFile(file, { collection, onProgress, maxBytes = MAX_FILE_BYTES } = {}) {
    const name = file.name;
    if (!name) throw new Error('addFile: the file needs a name (its extension picks the loader)');
    // A Blob has a `bytes()` method in recent browsers: test for Blob first.
    const blob = typeof Blob !== 'undefined' && file instanceof Blob;
    const size = blob ? file.size : file.bytes?.byteLength;
    if (size > maxBytes) {
      throw new Error(`${name}: ${(size / 1048576).toFixed(0)} MiB is over the ${(maxBytes / 1048576).toFixed(0)} MiB limit for one file`);
    }
    const bytes = blob ? await file.arrayBuffer() : new Uint8Array(file.bytes).slice().buffer;
    return this.#call('addFile', { name, bytes, collection }, { onProgress, transfer: [bytes] });
  }

  /** Removes a file from the index; resolves to whether it was there. */
  removeFile(name, collection) { return this.#call('removeFile', { name, collection }); }

  /** Indexed files: `[{ collection, source, pages, chunks }]`. */
  files() { return this.#call('files'); }

  /** Retrieves passages (`{ method, k, candidates, mmrLambda, collections, weights }`). */
  search(query, options = {}) { return this.#call('search', { query, options }); }

  /** Embeds texts: resolves to a `Float32Array` of `texts.length × dim`. */
  embed(texts, normalize = true) { return this.#call('embed', { texts, normalize }); }

  /**
   * Answers from the indexed documents, with citations. Returns a stream:
   * `for await (const piece of stream)` gives the answer as it is written;
   * `await stream.result` (or `await stream`) gives
   * `{ text, sources, cited, grounded, promptTokens }`. Options: search
   * options, `minCosine`, `context` ("matched" or "passage"), `answer`
   * ("generate" or "quote") and decoding options (`maxNewTokens`, ...).
   */
  ask(question, options = {}) { return this.#stream('ask', { question, options }); }

  /**
   * Continues a raw prompt (text, or token ids used exactly); a stream as
   * `ask`, resolving to `{ text, tokenIds, promptTokens, finishReason }`.
   */
  generate(prompt, options = {}) { return this.#stream('generate', { prompt, options }); }

  /** Replies to `[{ role, content }]` with the model's chat template; a stream as `generate`. */
  chat(messages, options = {}) { return this.#stream('chat', { messages, options }); }

  /**
   * Solves `task` with a ReAct agent: each step is decoded under a grammar
   * (a thought, then one call to a declared tool with schema-valid
   * arguments, or the answer); calls run, and their results (or errors,
   * or timeouts) go back to the model. `tools` maps names to
   * `{ description, parameters, run(args) }` (a JS function, sync or
   * async, returning a string or JSON) or to `'calculator'` (the built-in
   * exact calculator). Options: `maxSteps` (6), `toolTimeoutMs` (10000),
   * `onStep(step)`, `examples`, `constrained`, and decoding options. A
   * stream as `generate` (the steps' text), resolving to
   * `{ answer, stop, steps }`.
   */
  agent(task, { tools = {}, onStep, toolTimeoutMs = 10_000, ...options } = {}) {
    const list = Object.entries(tools).map(([name, t]) => t === 'calculator'
      ? { name, builtin: 'calculator' }
      : { name, description: t.description ?? '', parameters: t.parameters });
    return this.#stream('agent', { task, tools: list, options }, { onStep, tools, toolTimeoutMs });
  }

  /** The index as bytes (the format `cairn index` writes). */
  exportIndex() { return this.#call('exportIndex'); }

  /** Replaces the index with one from bytes (built with the same embedder). */
  importIndex(bytes) { return this.#call('importIndex', { bytes }); }

  /** Stops the worker. */
  terminate() { this.#worker.terminate(); }

  #stream(op, args, extra = {}) {
    const stream = new TextStream();
    this.#call(op, args, { stream, ...extra });
    return stream;
  }
}
