// Bundler smoke test: the tiny app in www/vite-smoke imports the npm package
// (`import { Cairn } from 'cairn-wasm'`), Vite builds it (worker and wasm
// bundled as assets), and the built app runs in headless Chromium: it loads
// MiniLM and embeds two sentences.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { chromium } from 'playwright-core';
import { serve } from '../serve.mjs';

const here = dirname(fileURLToPath(import.meta.url));

test('a Vite app that imports cairn-wasm builds and runs in Chromium', { timeout: 300_000 }, async () => {
  const out = mkdtempSync(join(tmpdir(), 'cairn-vite-'));
  const profile = mkdtempSync(join(tmpdir(), 'cairn-chromium-'));
  await build({ configFile: join(here, '../vite-smoke/vite.config.js'), build: { outDir: out } });
  const assets = readdirSync(join(out, 'assets'));
  assert.ok(assets.some((f) => /^worker-.*\.js$/.test(f)), `no bundled worker in ${assets}`);
  assert.ok(assets.some((f) => /^cairn_wasm_bg-.*\.wasm$/.test(f)), `no wasm asset in ${assets}`);
  const server = await serve({ root: out });
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--headless=new', '--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update'],
  });
  try {
    const page = await ctx.newPage();
    await page.goto(server.url);
    await page.waitForFunction(() => document.body.dataset.result, null, { timeout: 120_000 });
    const r = JSON.parse(await page.evaluate(() => document.body.dataset.result));
    assert.equal(r.error, undefined);
    assert.equal(r.version, '0.1.0');
    assert.equal(r.dim, 384);
    assert.ok(r.cos > 0.5 && r.cos < 1, `cosine ${r.cos}`);
  } finally {
    await ctx.close();
    await server.close();
    rmSync(out, { recursive: true, force: true });
    rmSync(profile, { recursive: true, force: true });
  }
});
