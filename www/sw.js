// Offline support: the page and the cairn package are fetched from the
// network when it answers and from this cache when it does not. Models are
// cached by cairn's worker itself (Cache API 'cairn-models-v1').
const SHELL = 'cairn-shell-v1';
const SHELL_FILES = ['/', '/index.html', '/app.js', '/style.css', '/pkg/client.js', '/pkg/worker.js', '/pkg/cairn_wasm.js', '/pkg/cairn_wasm_bg.wasm'];

self.addEventListener('install', (e) => {
  e.waitUntil(caches.open(SHELL).then((c) => c.addAll(SHELL_FILES)).then(() => self.skipWaiting()));
});
self.addEventListener('activate', (e) => e.waitUntil(self.clients.claim()));
self.addEventListener('fetch', (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== 'GET' || url.origin !== location.origin) return;
  // cairn serve's API answers live, never from a cache.
  if (url.pathname.startsWith('/v1/') || url.pathname === '/health' || url.pathname === '/metrics') return;
  e.respondWith((async () => {
    try {
      const res = await fetch(e.request);
      if (res.ok && !url.pathname.startsWith('/models/')) {
        const copy = res.clone();
        caches.open(SHELL).then((c) => c.put(e.request, copy)).catch(() => {});
      }
      return res;
    } catch (err) {
      const hit = await caches.match(e.request);
      if (hit) return hit;
      throw err;
    }
  })());
});
