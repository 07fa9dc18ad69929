/**
 * `node dist/bench/import.js [--shops 300,10000] [--runs 3]`: how long `lianfang import shops` takes
 * for a street of each size, as an installer runs it (the CLI as a child process, a GBK file with
 * Chinese names, a fresh data directory each run): the first import (every shop created, checked and
 * written in one transaction), a re-import of the same file (every shop unchanged) and a dry run.
 * The wall time includes the CLI's start-up (~0.3 s on the reference box), measured alone too.
 * Results: a table on stdout, bench/results/latest-import.json and .md.
 */
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir, cpus, platform, release, arch, loadavg } from 'node:os';
import { join } from 'node:path';
import iconv from 'iconv-lite';
import { stringify } from 'csv-stringify/sync';
import { ROOT } from './processes.js';

const CLI = join(ROOT, 'dist', 'gateway', 'cli', 'lianfang.js');

const { values: flags } = parseArgs({ options: { shops: { type: 'string', default: '300,10000' }, runs: { type: 'string', default: '3' } } });
const sizes = flags.shops!.split(',').map(Number);
const runs = Number(flags.runs);
if (sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 100_000) || !Number.isInteger(runs) || runs < 1 || runs > 20) {
  process.stderr.write('usage: node dist/bench/import.js [--shops 300,10000] [--runs 3]\n');
  process.exit(1);
}

/** A street file of `n` shops on a grid in Shantou (about 7 m apart), GBK as Excel saves it. */
function streetFile(n: number, dir: string): string {
  const rows = [['id', 'name', 'address', 'lat', 'lon', 'station', 'door-plate', 'owner', 'owner-phone']];
  for (let i = 0; i < n; i++) {
    rows.push([
      `S${String(i + 1).padStart(5, '0')}`,
      `${'李王张刘陈杨黄赵吴周'[i % 10]}记${['茶行', '粿条', '五金', '药房', '米铺'][i % 5]}`,
      `汕头市长平路${i + 1}号`,
      (23.354 + Math.floor(i / 100) * 0.00006).toFixed(6),
      (116.682 + (i % 100) * 0.00007).toFixed(6),
      'PS1',
      `${i + 1}号`,
      '店主',
      `138${String(i).padStart(8, '0')}`,
    ]);
  }
  const file = join(dir, `street-${n}.csv`);
  writeFileSync(file, iconv.encode(stringify(rows), 'gbk'));
  return file;
}

/** Run the CLI; its wall time in ms. */
function timed(args: string[]): number {
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, LANG: 'C.UTF-8' } });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`lianfang ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return ms;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number) => Math.round(x);

interface SizeResult {
  shops: number;
  importMs: number[];
  reimportMs: number[];
  dryRunMs: number[];
}

const work = mkdtempSync(join(tmpdir(), 'lf-bench-import-'));
const results: SizeResult[] = [];
const loadBefore = loadavg()[0]!;
let startupMs: number[] = [];
try {
  startupMs = Array.from({ length: runs }, () => timed(['--version']));
  for (const n of sizes) {
    const file = streetFile(n, work);
    const r: SizeResult = { shops: n, importMs: [], reimportMs: [], dryRunMs: [] };
    for (let i = 0; i < runs; i++) {
      const data = join(work, `data-${n}-${i}`);
      timed(['station', 'add', '--id', 'PS1', '--name', '长平路派出所', '--data', data]);
      r.dryRunMs.push(timed(['import', 'shops', file, '--dry-run', '--data', data]));
      r.importMs.push(timed(['import', 'shops', file, '--data', data]));
      r.reimportMs.push(timed(['import', 'shops', file, '--data', data]));
      rmSync(data, { recursive: true, force: true });
    }
    results.push(r);
    process.stderr.write(`${n} shops: import ${round(median(r.importMs))} ms\n`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}

const machine = {
  cpu: cpus()[0]?.model.trim() ?? 'unknown',
  cores: cpus().length,
  node: process.version,
  os: `${platform()} ${release()} ${arch()}`,
  loadAverage: { before: loadBefore, after: loadavg()[0]! },
};
const table = [
  '| shops | import (all created) | re-import (all unchanged) | dry run | per shop (import) |',
  '|---:|---:|---:|---:|---:|',
  ...results.map((r) => {
    const imp = median(r.importMs);
    return `| ${r.shops} | ${round(imp)} ms | ${round(median(r.reimportMs))} ms | ${round(median(r.dryRunMs))} ms | ${((imp - median(startupMs)) / r.shops).toFixed(3)} ms |`;
  }),
];
const md = [
  '# Lianfang benchmark: `lianfang import shops`',
  '',
  `${new Date().toISOString()} · ${machine.cpu}, ${machine.cores} cores · Node ${machine.node} · ${machine.os} · load average ${machine.loadAverage.before.toFixed(2)} before, ${machine.loadAverage.after.toFixed(2)} after`,
  '',
  `A GBK street file, the CLI as a child process on a fresh data directory; median wall time of ${runs} run(s), CLI start-up included (\`lianfang --version\` alone: ${round(median(startupMs))} ms); per shop: (import − start-up) / shops.`,
  '',
  ...table,
  '',
].join('\n');
process.stdout.write(md);
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(
  join(ROOT, 'bench', 'results', 'latest-import.json'),
  JSON.stringify({ date: new Date().toISOString(), command: `node dist/bench/import.js ${process.argv.slice(2).join(' ')}`.trim(), machine, runs, startupMs, results }, null, 2) + '\n',
);
writeFileSync(join(ROOT, 'bench', 'results', 'latest-import.md'), md);
