/**
 * `npm run bench`: runs every benchmark, one after the other (each alone on the machine), then
 * prints one table of ratios against their references and targets, and writes it to
 * bench/results/summary.md (the README quotes it).
 *
 *   npx tsx bench/all.ts [--quick] [--only planning,pack,...] [--table]
 *
 * `scale` (the full-size rehearsal of pack, bench/scale.ts: about an hour on 2 cores) runs only
 * when named: `--only scale`.
 *
 * Arguments all.ts does not know go to the one benchmark `--only` names, e.g.
 * `npm run bench -- --only scale --part sweep --cell-rows 10000` (see bench/scale.ts).
 *
 * `--quick` passes --quick to every benchmark (a smoke run: small sizes, few runs); `--table`
 * runs nothing and only prints the table of the results already in bench/results/. A benchmark
 * that fails (a correctness check, not a missed target) is reported and the rest still run; the
 * exit code is then 1.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { summaryRows, renderMarkdown } from './lib/summary.js';

const REPO = resolve(import.meta.dirname, '..');
const BENCHES = [
  'planning',
  'pack',
  'pack-memory',
  'fetch',
  'fleet',
  'fleet-rehearsal',
  'report',
  'scale',
] as const;
/** Run only when named in --only. */
const ON_REQUEST: readonly string[] = ['scale'];

const { values, tokens } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    table: { type: 'boolean', default: false },
  },
  strict: false,
  tokens: true,
});
/** Arguments all.ts does not know: passed to the one benchmark named by --only. */
const passOn: string[] = [];
for (const t of tokens) {
  if (t.kind === 'option' && !['quick', 'only', 'table'].includes(t.name)) {
    passOn.push(t.rawName, ...(t.value === undefined ? [] : [t.value]));
  } else if (t.kind === 'positional') passOn.push(t.value);
}
const only =
  typeof values.only !== 'string'
    ? BENCHES.filter((n) => !ON_REQUEST.includes(n))
    : values.only.split(',');
if (passOn.length > 0 && only.length !== 1) {
  console.error(
    `${passOn.join(' ')}: arguments for one benchmark need --only <that benchmark> (e.g. --only scale --part sweep)`,
  );
  process.exit(2);
}
const unknown = only.filter((n) => !(BENCHES as readonly string[]).includes(n));
if (unknown.length > 0) {
  console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${BENCHES.join(', ')}`);
  process.exit(2);
}

/** The reference tools each benchmark runs, and the Debian package that has them. */
const NEEDS: Record<string, [cmd: string, pkg: string][]> = {
  planning: [
    ['make', 'make'],
    ['snakemake', 'snakemake'],
  ],
  pack: [['zstd', 'zstd']],
};
const missing = only.flatMap((n) =>
  (NEEDS[n] ?? []).filter(([cmd]) => spawnSync(cmd, ['--version']).error !== undefined),
);
if (!values.table && missing.length > 0) {
  const pkgs = [...new Set(missing.map(([, pkg]) => pkg))].join(' ');
  console.error(
    `missing reference tools: ${missing.map(([cmd]) => cmd).join(', ')}; install them (Debian: apt-get install ${pkgs}) or leave those benchmarks out with --only`,
  );
  process.exit(2);
}

const failed: string[] = [];
if (!values.table) {
  for (const name of only) {
    // pack-memory's quick run is its small size alone.
    const args =
      name === 'pack-memory'
        ? values.quick
          ? ['--rows', '100000']
          : []
        : values.quick
          ? ['--quick']
          : [];
    args.push(...passOn);
    console.error(`\n=== bench/${name}.ts ${args.join(' ')}`);
    const t0 = performance.now();
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(REPO, `bench/${name}.ts`), ...args],
      {
        cwd: REPO,
        stdio: 'inherit',
      },
    );
    const s = Math.round((performance.now() - t0) / 1000);
    if (r.status !== 0) {
      failed.push(name);
      console.error(
        `=== ${name} FAILED (exit ${String(r.status ?? r.signal)}) after ${String(s)} s`,
      );
    } else console.error(`=== ${name} done in ${String(s)} s`);
  }
}

const results: Record<string, unknown> = {};
for (const name of BENCHES) {
  const f = join(REPO, `bench/results/${name}.json`);
  if (existsSync(f)) results[name] = JSON.parse(readFileSync(f, 'utf8')) as unknown;
}
const rows = summaryRows(results);
const md = renderMarkdown(rows, results);
writeFileSync(join(REPO, 'bench/results/summary.md'), md);
console.log(`\n${md}`);
if (failed.length > 0) {
  console.error(`failed: ${failed.join(', ')}`);
  process.exitCode = 1;
}
