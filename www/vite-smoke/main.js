// The bundler smoke test: a tiny app that imports the npm package the way a
// user would (`import { Cairn } from 'cairn-wasm'`), built by Vite, then run
// in headless Chromium by www/tests/vite.test.mjs.
import { Cairn } from 'cairn-wasm';

const out = document.getElementById('out');
try {
  const cairn = await Cairn.create({ backend: 'cpu' });
  const { dim } = await cairn.loadEmbedder('/models/all-minilm-l6-v2/');
  const v = await cairn.embed(['The quick brown fox.', 'A fast auburn fox.']);
  const cos = v.subarray(0, dim).reduce((s, x, i) => s + x * v[dim + i], 0);
  out.textContent = `cairn ${cairn.version}: ${dim}-d embeddings, cosine ${cos.toFixed(4)}`;
  document.body.dataset.result = JSON.stringify({ version: cairn.version, dim, cos });
} catch (e) {
  out.textContent = `failed: ${e.message}`;
  document.body.dataset.result = JSON.stringify({ error: e.message });
}
