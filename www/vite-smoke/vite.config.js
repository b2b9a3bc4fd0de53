// Vite config of the bundler smoke test: `cairn-wasm` resolves to the package
// scripts/build-wasm.sh writes (or $CAIRN_WASM_WEB), as if installed from npm.
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const cacheRoot = process.env.CAIRN_BUILD_CACHE || join(homedir(), '.cache/cairn');

export default {
  root: here,
  logLevel: 'warn',
  resolve: { alias: { 'cairn-wasm': process.env.CAIRN_WASM_WEB || join(cacheRoot, 'build/wasm-pkg/web') } },
  worker: { format: 'es' },
  build: { target: 'es2022', emptyOutDir: true },
};
