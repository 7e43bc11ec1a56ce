/**
 * Deterministic Graphviz (DOT) text for the Graphviz rows the generating machine has no .dot file
 * for: a small random graph per row, drawn from a seeded Rng.
 */
import type { Rng } from '../sample-spec.js';

const DOT_WORDS =
  'parser lexer cache config server client router store queue worker scheduler logger auth session db index planner executor loader api'.split(
    ' ',
  );

export function generateDot(rng: Rng, index: number): string {
  const directed = rng.float() < 0.8;
  const arrow = directed ? '->' : '--';
  const nodes = Array.from({ length: rng.int(3, 12) }, (_, i) => `${rng.pick(DOT_WORDS)}_${i}`);
  const lines = [
    `${directed ? 'digraph' : 'graph'} ${rng.pick(DOT_WORDS)}_${index} {`,
    `  rankdir=${rng.pick(['LR', 'TB'])};`,
    `  node [shape=${rng.pick(['box', 'ellipse', 'record', 'circle'])}, fontname="Helvetica"];`,
  ];
  for (const n of nodes) lines.push(`  ${n} [label="${n.replace('_', ' ')}"];`);
  const edges = rng.int(nodes.length, nodes.length * 3);
  for (let e = 0; e < edges; e++) {
    const a = rng.pick(nodes);
    const b = rng.pick(nodes);
    const attrs =
      rng.float() < 0.4 ? ` [label="${rng.pick(['calls', 'reads', 'writes', 'owns'])}"]` : '';
    lines.push(`  ${a} ${arrow} ${b}${attrs};`);
  }
  lines.push('}');
  return lines.join('\n') + '\n';
}
