// A static server for the in-browser demo, same origin for everything:
//   /          this folder (index.html, app.js, style.css, sw.js)
//   /pkg/      the npm package built by scripts/build-wasm.sh
//   /models/   the fetched models (~/.cache/cairn/models, or $CAIRN_CACHE/models)
// Usage: node www/serve.mjs [--port 8080] [--host 127.0.0.1]
// No dependencies; also imported by the browser tests (serve()).
import { createServer } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const cacheRoot = process.env.CAIRN_BUILD_CACHE || join(homedir(), '.cache/cairn');
const modelsRoot = join(process.env.CAIRN_CACHE || join(homedir(), '.cache/cairn'), 'models');

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8', '.json': 'application/json', '.wasm': 'application/wasm', '.pdf': 'application/pdf',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ts': 'text/plain; charset=utf-8', '.md': 'text/markdown; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8', '.webmanifest': 'application/manifest+json',
};

/** The folder a URL path maps to, and the path inside it. */
function route(path, roots) {
  for (const [prefix, dir] of roots) {
    if (path === prefix.slice(0, -1)) return [dir, 'index.html'];
    if (path.startsWith(prefix)) return [dir, path.slice(prefix.length) || 'index.html'];
  }
  return null;
}

/**
 * Starts the server; resolves to `{ url, close }`. `pkg`, `models` and `root`
 * override the package, model and page folders.
 */
export function serve({ port = 0, host = '127.0.0.1', pkg, models, root } = {}) {
  const roots = [
    ['/pkg/', pkg || process.env.CAIRN_WASM_WEB || join(cacheRoot, 'build/wasm-pkg/web')],
    ['/models/', models || modelsRoot],
    ['/', root || here],
  ];
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const r = route(decodeURIComponent(url.pathname), roots);
    const send = (code, text) => { res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8' }); res.end(text); };
    if (!r || (req.method !== 'GET' && req.method !== 'HEAD')) return send(404, 'not found');
    const [dir, rel] = r;
    const file = resolve(dir, normalize(rel));
    if (!file.startsWith(resolve(dir) + sep)) return send(403, 'forbidden');
    let st;
    try { st = statSync(file); } catch { return send(404, `not found: ${url.pathname}`); }
    if (!st.isFile()) return send(404, `not found: ${url.pathname}`);
    res.writeHead(200, {
      'content-type': TYPES[extname(file).toLowerCase()] || 'application/octet-stream',
      'content-length': st.size,
      'cache-control': 'no-cache',
    });
    if (req.method === 'HEAD') return res.end();
    createReadStream(file).pipe(res);
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      const a = server.address();
      ok({ url: `http://${host}:${a.port}/`, close: () => new Promise((c) => { server.closeAllConnections?.(); server.close(c); }) });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name, def) => { const i = process.argv.indexOf(name); return i > 0 ? process.argv[i + 1] : def; };
  const { url } = await serve({ port: Number(arg('--port', 8080)), host: arg('--host', '127.0.0.1') });
  console.log(`cairn demo: ${url}  (models from ${modelsRoot}; Ctrl-C stops)`);
}
