/**
 * What zstd costs per MB of pack's JSON lines, measured here (bench/scale.ts), because pack's
 * compression runs in the libuv pool, whose threads Node 20 does not name: /proc cannot tell them
 * from V8's or DuckDB's. The binding pack uses (tasks/pack/zstd-writer.ts), its level and frame
 * size, on JSON lines of the synthetic SWH's texts, one frame at a time; this process's CPU (all
 * threads) over the MB compressed.
 */
import { createRequire } from 'node:module';
import { gunzipSync } from 'node:zlib';
import { BodyPool } from '../../test/servers/swh/bodies.js';
import { DEFAULT_CONFIG, Rng, planBlob } from '../../test/servers/swh/model.js';
import { blobIdOf } from './scale-ids.js';

interface ZstdBinding {
  compress(data: Buffer, level: number): Promise<Buffer>;
}

export interface ZstdCost {
  level: number;
  frameBytes: number;
  mb: number;
  cpuSecondsPerMB: number;
  ratio: number;
}

/** CPU seconds per MB (1e6 bytes) of JSON lines compressed at `level` in `frameBytes` frames. */
export async function zstdCost(level = 3, frameBytes = 8 << 20, frames = 6): Promise<ZstdCost> {
  const binding = createRequire(import.meta.url)('@mongodb-js/zstd/bindings.js') as ZstdBinding;
  const pool = new BodyPool(DEFAULT_CONFIG.size, DEFAULT_CONFIG.seed);
  const rng = new Rng(7);
  const lines: Buffer[] = [];
  let bytes = 0;
  for (let r = 0; bytes < frameBytes * frames; r++) {
    const plan = planBlob(DEFAULT_CONFIG, blobIdOf(r));
    if (plan.kind !== 'body') continue;
    const text = gunzipSync(pool.get(plan.cls, plan.variant).gz).toString('utf8');
    const line = Buffer.from(
      `${JSON.stringify({ blob_id: blobIdOf(r), path: `/src/f${String(r)}.js`, n: rng.float(), content: text })}\n`,
    );
    lines.push(line);
    bytes += line.length;
  }
  const all = Buffer.concat(lines);
  await binding.compress(all.subarray(0, 1 << 20), level); // warm-up
  const cpu0 = process.cpuUsage();
  let out = 0;
  for (let k = 0; k < frames; k++) {
    out += (await binding.compress(all.subarray(k * frameBytes, (k + 1) * frameBytes), level))
      .length;
  }
  const cpu = process.cpuUsage(cpu0);
  const mb = (frames * frameBytes) / 1e6;
  return {
    level,
    frameBytes,
    mb: Number(mb.toFixed(1)),
    cpuSecondsPerMB: Number(((cpu.user + cpu.system) / 1e6 / mb).toFixed(5)),
    ratio: Number(((frames * frameBytes) / out).toFixed(2)),
  };
}
