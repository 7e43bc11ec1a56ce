/**
 * Reads a V8 CPU profile (what `--cpu-prof` or the inspector's Profiler.stop gives) and says
 * where the self time went: by code area (stackflow lib/, @aws-sdk, @smithy, Node's http and
 * streams, GC, idle) and by function. Used by bench/fetch.ts to explain a gap between two
 * variants.
 */

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

/** The fields of a `.cpuprofile` this reads. */
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Profiled wall time, ms. */
  wallMs: number;
  /** Self time by area, ms. */
  byArea: Record<string, number>;
  /** The heaviest functions by self time. */
  top: { fn: string; area: string; ms: number }[];
}

/** The code area of a frame: where its time should be charged. */
export function areaOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(idle)') return 'idle';
    if (functionName === '(program)') return 'VM/native (program)';
    return 'native';
  }
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
  if (pkg !== undefined) {
    if (pkg.startsWith('@aws-sdk/')) return '@aws-sdk/*';
    if (pkg.startsWith('@smithy/')) return '@smithy/*';
    if (pkg.startsWith('@aws-crypto/')) return '@aws-crypto/*';
    return `dep:${pkg}`;
  }
  if (url.startsWith('node:')) {
    const m = url.slice('node:'.length).replace(/^internal\//, '');
    if (/^(modules|vm|bootstrap|source_map|deps\/cjs-module-lexer|main\/)/.test(m))
      return 'node:module loading';
    if (/^(_http|http|https)/.test(m)) return 'node:http';
    if (/^(net|stream_base|tcp|dns)/.test(m)) return 'node:net';
    if (/^(streams|stream)/.test(m)) return 'node:streams';
    if (/^(buffer|url|querystring|crypto)/.test(m)) return `node:${m.split('/')[0] ?? m}`;
    if (/^(process\/task_queues|timers|async_hooks|process\/promises)/.test(m))
      return 'node:event loop (promises, timers)';
    return 'node:other';
  }
  if (url.includes('/lib/')) return 'stackflow lib/';
  if (url.includes('/tasks/')) return 'stackflow tasks/';
  if (url.includes('/bench/')) return 'bench';
  return 'other';
}

export function summarizeProfile(p: CpuProfile, topN = 15): ProfileSummary {
  const nodes = new Map(p.nodes.map((n) => [n.id, n]));
  // Sample i lasted until sample i+1: charge timeDeltas[i+1] to samples[i].
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] ?? 0;
    const dt = p.timeDeltas[i + 1] ?? 0;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  }
  const byArea: Record<string, number> = {};
  const byFn = new Map<string, { fn: string; area: string; us: number }>();
  for (const [id, us] of selfUs) {
    const n = nodes.get(id);
    if (n === undefined) continue;
    const area = areaOf(n.callFrame);
    byArea[area] = (byArea[area] ?? 0) + us;
    const file = n.callFrame.url
      .replace(/^.*node_modules\//, '')
      .replace(/^file:\/\/.*?\/(lib|tasks|bench)\//, '$1/');
    const fn = `${n.callFrame.functionName || '(anonymous)'} ${file}:${String(n.callFrame.lineNumber + 1)}`;
    const f = byFn.get(fn) ?? { fn, area, us: 0 };
    f.us += us;
    byFn.set(fn, f);
  }
  const ms = (us: number) => Math.round(us / 100) / 10;
  return {
    wallMs: ms(p.endTime - p.startTime),
    byArea: Object.fromEntries(
      Object.entries(byArea)
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => [k, ms(v)]),
    ),
    top: [...byFn.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, topN)
      .map((f) => ({ fn: f.fn, area: f.area, ms: ms(f.us) })),
  };
}
