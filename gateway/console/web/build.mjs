/**
 * Builds the console's page (run by `npm run build`, which `npm ci` runs as `prepare`): type-checks
 * gateway/console/web/ against the DOM, then bundles it with esbuild into dist/console-web/ —
 * login.js/css (served to anyone) and console.js/css (served to a session). Everything the page
 * needs is in these files: nothing is loaded from the internet at run time.
 */
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..', '..');
const OUT = join(ROOT, 'dist', 'console-web');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');

execFileSync(process.execPath, [tsc, '-p', join(HERE, 'tsconfig.json')], { stdio: 'inherit' });
await build({
  entryPoints: { login: join(HERE, 'login.ts'), console: join(HERE, 'app.tsx') },
  outdir: OUT,
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  jsx: 'automatic',
  jsxImportSource: 'preact',
  loader: { '.css': 'css' },
  legalComments: 'linked',
  logLevel: 'warning',
});
