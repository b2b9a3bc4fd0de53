// The demo page served by `cairn serve` in headless Chromium: the page finds
// the server, uses its models (no download into the page), uploads the
// committed PDF into the server's index and streams a cited answer from
// /v1/ask. The binary is the one the native tests built
// ($CAIRN_BIN, default $CARGO_TARGET_DIR/debug/cairn).
// Run: node --test www/tests/   (after the native tests, scripts/build-wasm.sh and cairn fetch)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import { browser } from './chromium.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '../..');
const pdf = join(root, 'tests/fixtures/mini.pdf');
const artifacts = process.env.CAIRN_ARTIFACTS || join(root, 'artifacts');
mkdirSync(artifacts, { recursive: true });
const cacheRoot = process.env.CAIRN_BUILD_CACHE || join(homedir(), '.cache/cairn');
const bin = process.env.CAIRN_BIN || join(process.env.CARGO_TARGET_DIR || join(cacheRoot, 'build/native'), 'debug/cairn');

/** Starts `cairn serve` on a free port; resolves to { url, close }. */
async function startServer(index) {
  assert.ok(existsSync(bin), `${bin} is missing: build cairn first (the native tests do)`);
  const child = spawn(bin, ['serve', '--port', '0', '--static-dir', join(root, 'www'), '--index', index], {
    env: { ...process.env, CAIRN_LOG: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout });
    rl.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`cairn serve exited with ${code}`)));
  });
  const url = line.replace('cairn serve: listening on ', '').trim();
  for (let i = 0; ; i++) {
    const ok = await fetch(`${url}/health`).then((r) => r.ok).catch(() => false);
    if (ok) break;
    assert.ok(i < 600, 'cairn serve never became ready');
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, close: () => new Promise((r) => { child.once('exit', r); child.kill('SIGTERM'); }) };
}

test('the page uses cairn serve: upload a PDF, stream a cited answer from /v1/ask', { timeout: 600_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cairn-serve-page-'));
  const server = await startServer(join(dir, 'rag.cidx'));
  const b = await browser();
  const ctx = b.ctx;
  const log = [];
  const page = await ctx.newPage();
  page.on('console', (m) => log.push(`[console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[pageerror] ${e.message}`));
  const requests = [];
  page.on('request', (r) => requests.push(new URL(r.url()).pathname));
  const errorText = () => page.evaluate(() => document.getElementById('error').hidden ? '' : document.getElementById('error').textContent);
  try {
    await page.goto(server.url);
    await page.waitForFunction(() => document.body.dataset.server === 'available' && document.body.dataset.state, null, { timeout: 60_000 });
    await page.selectOption('#backend', 'server');
    await page.click('#load');
    await page.waitForFunction(() => document.body.dataset.state === 'loaded' || !document.getElementById('error').hidden, null, { timeout: 60_000 });
    assert.equal(await errorText(), '');
    assert.match(await page.textContent('#status'), /Using the models of cairn serve \(smollm2-135m-instruct, all-minilm-l6-v2\)/);

    await page.setInputFiles('#files-input', pdf);
    await page.waitForSelector('#files li[data-source="mini.pdf"]', { timeout: 120_000 });
    assert.match(await page.textContent('#index-text'), /Indexed mini\.pdf: 3 pages/);

    await page.fill('#question', 'How do I install a package from a local file?');
    await page.click('#ask');
    await page.waitForFunction(() => document.getElementById('answer').dataset.done, null, { timeout: 300_000 });
    assert.equal(await errorText(), '');
    const answer = await page.textContent('#answer');
    const sources = await page.$$eval('#sources li', (lis) => lis.map((li) => ({ text: li.textContent, cited: li.dataset.cited === 'true' })));
    await page.screenshot({ path: join(artifacts, 'serve-page.png'), fullPage: true });
    assert.ok(answer.trim().length > 0);
    assert.match(sources[0].text, /^mini\.pdf, page 1/, JSON.stringify(sources));
    // The answer came from the server, and no model was downloaded into the page.
    assert.ok(requests.includes('/v1/ask') && requests.includes('/v1/collections/browser/documents'), requests.join(' '));
    assert.ok(!requests.some((p) => p.startsWith('/models/')), requests.join(' '));
    // What the server indexed is what it lists.
    const cols = await (await fetch(`${server.url}/v1/collections`)).json();
    assert.equal(cols.data.find((c) => c.name === 'browser').documents.length, 1);
  } catch (e) {
    e.message += `\nbrowser log:\n${log.join('\n')}`;
    throw e;
  } finally {
    await b.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
