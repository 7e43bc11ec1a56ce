/**
 * Generates the bundled sample in `examples/sample` (see its README.md):
 *
 *   hf/data/<Language>/train-NNNNN-of-MMMMM.parquet   the-stack-v2's 26 columns, no content
 *   swh/content/<blob_id>                             gzip of the file bytes, as on Software Heritage
 *   manifest.json, expected-defects.json, inputs.json
 *
 * Usage:
 *   npx tsx scripts/make-sample.ts [--out <dir>] [--inputs <inputs.json>]
 *
 * The text of the rows is real source code read from the generating machine (system headers, the
 * Python stdlib, npm's JavaScript, shell scripts, Graphviz files); which files were used, and their
 * sha256, is recorded in inputs.json. With `--inputs` the generator skips the scan and reads exactly
 * those files, so the output is a pure function of the inputs: same bytes on every run (no clock,
 * seeded PRNG per row, fixed file order, single-threaded DuckDB).
 *
 * This file is the CLI; the work is in scripts/sample/: languages.ts (what each language folder
 * holds), inputs.ts (choosing the input files), plan.ts (encodings and defects per row), output.ts
 * (blobs, parquets, JSON) and dot.ts (generated Graphviz text).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { SampleInputs } from './sample-spec.js';
import { recordedInputs, scanInputs } from './sample/inputs.js';
import { writeSample } from './sample/output.js';
import { plan } from './sample/plan.js';

async function main(): Promise<void> {
  const started = performance.now();
  const { values } = parseArgs({
    options: { out: { type: 'string', default: 'examples/sample' }, inputs: { type: 'string' } },
  });
  const out = resolve(values.out);
  const recorded = values.inputs
    ? (JSON.parse(readFileSync(values.inputs, 'utf8')) as SampleInputs)
    : undefined;
  const inputs = recorded ? recordedInputs(recorded) : scanInputs();
  const files = plan(inputs);

  const manifest = await writeSample(out, inputs, files);

  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `wrote ${manifest.total_rows} rows in ${manifest.parquets.length} parquets and ${manifest.blob_files} blobs to ${out} in ${seconds}s`,
  );
}

await main();
