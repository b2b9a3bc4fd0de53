// The demo page: load models, drop documents, ask, watch the answer stream
// with numbered citations. Everything heavy runs in cairn's Web Worker.
import { Cairn, MAX_FILE_BYTES } from '/pkg/client.js';

const $ = (id) => document.getElementById(id);
const state = { cairn: null, loaded: false, loading: null, fileUrls: new Map(), busy: 0, server: false };
// Documents dropped while the page uses `cairn serve` go to this collection.
const SERVER_COLLECTION = 'browser';
const inServerMode = () => state.server && $('backend').value === 'server';

/** When `cairn serve` served this page, offer its models as a backend. */
async function detectServer() {
  try {
    const r = await fetch('/health', { headers: { accept: 'application/json' } });
    const v = await r.json();
    if (typeof v?.status !== 'string') return;
  } catch { return; }
  state.server = true;
  const opt = document.createElement('option');
  opt.value = 'server';
  opt.textContent = 'cairn serve (the server of this page)';
  $('backend').append(opt);
  document.body.dataset.server = 'available';
}

/** JSON from the server, or an Error with its OpenAI-shaped message. */
async function serverJson(path, init) {
  const r = await fetch(path, init);
  const v = await r.json().catch(() => null);
  if (!r.ok) throw new Error(v?.error?.message || `${path}: HTTP ${r.status}`);
  return v;
}

function setStatus(text, key) {
  $('status').textContent = text;
  if (key) document.body.dataset.state = key;
}
function showError(message) {
  const el = $('error');
  el.textContent = message;
  el.hidden = false;
  document.body.dataset.lastError = message;
}
function clearError() { $('error').hidden = true; $('error').textContent = ''; }
const mib = (n) => (n / 1048576).toFixed(1);

async function start() {
  await detectServer();
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('/sw.js').catch(() => {});
  }
  try {
    state.cairn = await Cairn.create({ backend: $('backend').value });
    setStatus(`cairn ${state.cairn.version} ready. WebGPU ${state.cairn.webgpu ? 'is available' : 'is not available here (CPU/WebAssembly will run the models)'}. Load the models.`, 'started');
    document.body.dataset.webgpu = String(state.cairn.webgpu);
  } catch (e) {
    setStatus('cairn could not start.', 'failed');
    showError(`Starting cairn failed: ${e.message}`);
  }
}

async function useServer() {
  const models = await serverJson('/v1/models');
  state.loaded = true;
  state.backends = { embedder: 'cairn serve', generator: 'cairn serve' };
  setStatus(`Using the models of cairn serve (${models.data.map((m) => m.id).join(', ')}): documents you add are uploaded to it and indexed in its collection "${SERVER_COLLECTION}". Add documents, then ask.`, 'loaded');
  document.body.dataset.backend = 'server';
  document.querySelector('footer').textContent = 'Server mode: documents are uploaded to the cairn serve that served this page, and it answers.';
  document.querySelector('h1 small').textContent = 'ask your documents, answered by the cairn serve of this page';
  $('ask').disabled = false;
  await refreshFiles();
}

async function loadModels(ev) {
  ev.preventDefault();
  if (inServerMode()) {
    clearError();
    try { await useServer(); } catch (e) { showError(`The server's models are not available: ${e.message}`); }
    return;
  }
  if (!state.cairn || state.loading) return;
  clearError();
  const ctl = new AbortController();
  state.loading = ctl;
  $('load').disabled = true;
  $('cancel-load').disabled = false;
  $('ask').disabled = true;
  const backend = $('backend').value;
  const bar = $('load-progress');
  const progress = (what) => (p) => {
    if (p.stage) { $('load-text').textContent = `${what}: ${p.stage}…`; return; }
    if (p.total) { bar.max = p.total; bar.value = p.loaded; }
    $('load-text').textContent = `${what}: ${mib(p.loaded)} of ${p.total ? mib(p.total) : '?'} MiB${p.cached ? ' (from the browser cache)' : ''}`;
  };
  const t0 = performance.now();
  try {
    setStatus('Loading the embedder…', 'loading');
    const e = await state.cairn.loadEmbedder($('embedder-url').value, { onProgress: progress('Embedder'), signal: ctl.signal, backend });
    setStatus('Loading the generator…', 'loading');
    const g = await state.cairn.loadGenerator($('generator-url').value, { onProgress: progress('Generator'), signal: ctl.signal, backend });
    const adapter = $('adapter-url').value.trim();
    if (adapter) {
      setStatus('Loading the LoRA adapter…', 'loading');
      await state.cairn.loadAdapter(adapter, { onProgress: progress('Adapter'), signal: ctl.signal });
    } else {
      await state.cairn.loadAdapter(null);
    }
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    state.loaded = true;
    state.backends = { embedder: e.backend, generator: g.backend };
    $('load-text').textContent = `Loaded in ${secs} s.`;
    setStatus(`Models loaded in ${secs} s — embedder on ${e.backend}, generator on ${g.backend}${adapter ? ` with the adapter ${adapter}` : ''}. Add documents, then ask.`, 'loaded');
    document.body.dataset.backend = g.backend;
    $('ask').disabled = false;
    await refreshFiles();
  } catch (err) {
    if (err.name === 'AbortError') {
      showError('Loading the models was cancelled. Press "Load models" to try again.');
      setStatus('Model loading cancelled.', state.loaded ? 'loaded' : 'started');
    } else {
      showError(`Could not load the models: ${err.message}`);
      setStatus('Model loading failed; check the URLs and try again.', state.loaded ? 'loaded' : 'started');
    }
    $('ask').disabled = !state.loaded;
  } finally {
    state.loading = null;
    $('load').disabled = false;
    $('cancel-load').disabled = true;
  }
}

async function serverFiles() {
  const v = await serverJson('/v1/collections');
  const c = v.data.find((x) => x.name === SERVER_COLLECTION);
  return (c?.documents || []).map((d) => ({ source: d.split('/').pop(), pages: 0, chunks: null }));
}

async function refreshFiles() {
  const files = inServerMode() ? await serverFiles() : await state.cairn.files();
  const ul = $('files');
  ul.replaceChildren(...files.map((f) => {
    const li = document.createElement('li');
    li.dataset.source = f.source;
    li.append(f.source, ' ');
    const span = document.createElement('span');
    span.textContent = f.chunks === null ? '— on the server' : `— ${f.pages ? `${f.pages} pages, ` : ''}${f.chunks} chunks`;
    li.append(span);
    return li;
  }));
}

/** Indexes files one after another; a bad file is reported and the rest go on. */
async function addFiles(files) {
  clearError();
  if (!state.loaded) { showError('Load the models first: the embedder indexes the documents.'); return; }
  const bar = $('index-progress');
  const errors = [];
  state.busy++;
  for (const [i, file] of [...files].entries()) {
    const label = `${file.name} (${i + 1} of ${files.length})`;
    $('index-text').textContent = `Indexing ${label}…`;
    try {
      const r = inServerMode() ? await uploadFile(file) : await state.cairn.addFile(file, {
        maxBytes: MAX_FILE_BYTES,
        onProgress: ({ done, total }) => { bar.max = total || 1; bar.value = done; $('index-text').textContent = `Indexing ${label}: ${done} of ${total} chunks embedded`; },
      });
      if (file instanceof Blob) {
        const old = state.fileUrls.get(file.name);
        if (old) URL.revokeObjectURL(old);
        state.fileUrls.set(file.name, URL.createObjectURL(file));
      }
      $('index-text').textContent = r.indexed
        ? `Indexed ${file.name}: ${r.pages ? `${r.pages} pages, ` : ''}${r.children} chunks.`
        : `${file.name} was already indexed.`;
    } catch (e) {
      errors.push(e.message);
      $('index-text').textContent = `Could not index ${file.name}.`;
    }
  }
  state.busy--;
  await refreshFiles();
  if (errors.length) showError(`Some files could not be indexed:\n${errors.join('\n')}`);
  document.body.dataset.indexed = String(Date.now());
}

/** Uploads one file into the server's index (same result shape as addFile). */
async function uploadFile(file) {
  const form = new FormData();
  form.append('file', file, file.name);
  const v = await serverJson(`/v1/collections/${SERVER_COLLECTION}/documents`, { method: 'POST', body: form });
  const d = v.documents[0];
  return { indexed: true, pages: d.pages, children: d.chunks };
}

/** Asks the server's `/v1/ask`, streaming its `text` events; resolves to the answer. */
async function askServer(question, answer, onText) {
  const r = await fetch('/v1/ask', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ question, collections: [SERVER_COLLECTION], max_tokens: 160, stream: true, answer }),
  });
  if (!r.ok) {
    const v = await r.json().catch(() => null);
    throw new Error(v?.error?.message || `/v1/ask: HTTP ${r.status}`);
  }
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let done = null;
  for (;;) {
    const { value, done: end } = await reader.read();
    if (end) break;
    buf += value;
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1];
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (!data) continue;
      const v = JSON.parse(data);
      if (event === 'text') onText(v.text);
      else if (event === 'done') done = v;
      else if (event === 'error') throw new Error(v.error?.message || 'the server failed to answer');
    }
  }
  if (!done) throw new Error('the server closed the answer stream early');
  return {
    text: done.answer,
    grounded: done.grounded,
    cited: done.cited,
    sources: done.sources.map((s) => ({ n: s.n, source: s.file.split('/').pop(), page: s.page, headings: s.headings, text: s.text })),
    generatedTokens: done.usage.completion_tokens,
    promptTokens: done.usage.prompt_tokens,
  };
}

function renderAnswer(el, text, sources) {
  el.replaceChildren();
  const re = /\[(\d+(?:\s*,\s*\d+)*)\]/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    el.append(text.slice(last, m.index));
    const nums = m[1].split(',').map((s) => Number(s.trim()));
    el.append('[');
    nums.forEach((n, i) => {
      if (i) el.append(', ');
      if (n >= 1 && n <= sources.length) {
        const a = document.createElement('a');
        a.href = `#source-${n}`; a.className = 'cite'; a.textContent = String(n);
        el.append(a);
      } else el.append(String(n));
    });
    el.append(']');
    last = m.index + m[0].length;
  }
  el.append(text.slice(last));
}

async function ask(ev) {
  ev.preventDefault();
  const q = $('question').value.trim();
  if (!q || !state.loaded) return;
  clearError();
  $('ask').disabled = true;
  const out = $('answer');
  out.textContent = '';
  delete out.dataset.done;
  $('sources').replaceChildren();
  $('stats').textContent = '';
  const t0 = performance.now();
  let first = 0;
  try {
    // Greedy, no repetition penalty: a penalty also hits the source tokens the
    // answer should copy (CTRL's rule covers the prompt).
    const onPiece = (piece) => {
      if (!first) first = performance.now();
      out.textContent += piece;
    };
    // "quote": the sources' own sentences closest to the question, verbatim
    // with their numbers — no decoder, faithful by construction.
    const mode = $('answer-mode').value;
    let a;
    if (inServerMode()) {
      a = await askServer(q, mode, onPiece);
    } else {
      const stream = state.cairn.ask(q, { maxNewTokens: 160, answer: mode });
      for await (const piece of stream) onPiece(piece);
      a = await stream.result;
    }
    const end = performance.now();
    renderAnswer(out, a.text, a.sources);
    const list = $('sources');
    list.replaceChildren(...a.sources.map((s) => {
      const li = document.createElement('li');
      li.id = `source-${s.n}`;
      li.dataset.cited = String(a.cited.includes(s.n));
      const where = `${s.source}${s.page ? `, page ${s.page}` : ''}${s.headings.length ? ` — ${s.headings.join(' › ')}` : ''}`;
      const url = state.fileUrls.get(s.source);
      const link = document.createElement(url ? 'a' : 'span');
      if (url) { link.href = s.page ? `${url}#page=${s.page}` : url; link.target = '_blank'; link.rel = 'noopener'; }
      link.textContent = where;
      li.append(link, a.cited.includes(s.n) ? ' (cited)' : '');
      li.title = s.text.slice(0, 400);
      return li;
    }));
    const gen = a.generatedTokens;
    const decode = first && gen > 1 ? (gen - 1) / ((end - first) / 1000) : 0;
    $('stats').textContent = a.grounded && gen === 0
      ? `Quoted from the sources in ${((end - t0) / 1000).toFixed(1)} s (no decoding).`
      : a.grounded
      ? `${gen} tokens; first token after ${((first - t0) / 1000).toFixed(1)} s (retrieval + ${a.promptTokens}-token prompt); ${decode.toFixed(1)} tokens/s while decoding; generator on ${state.backends.generator}.`
      : 'The documents do not answer this question (no passage was close enough), so the model was not asked.';
    out.dataset.done = '1';
    document.body.dataset.tokensPerSecond = decode.toFixed(2);
  } catch (e) {
    showError(`Asking failed: ${e.message}`);
    out.dataset.done = 'error';
  } finally {
    $('ask').disabled = false;
  }
}

$('models-form').addEventListener('submit', loadModels);
$('cancel-load').addEventListener('click', () => state.loading?.abort());
$('ask-form').addEventListener('submit', ask);
$('files-input').addEventListener('change', (e) => { addFiles(e.target.files); e.target.value = ''; });
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => { e.preventDefault(); drop.classList.remove('over'); addFiles(e.dataTransfer.files); });
$('backend').addEventListener('change', () => {
  if (state.cairn && !inServerMode()) state.cairn.backend = $('backend').value;
});
// For scripts and tests: the same path a drop takes.
window.cairnDemo = { addFiles, state };
start();
