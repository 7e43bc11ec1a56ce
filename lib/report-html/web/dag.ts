/** The DAG of stages (and of tasks, for a small graph) as SVG, laid out by dagre. */
import dagreModule from '@dagrejs/dagre';
import type { DagView, ReportModel } from '../types.js';
import { color, h, int, s, section } from './dom.js';

/**
 * The part of dagre this page uses. Its own declarations import extensionless paths, which
 * NodeNext resolution cannot follow, so they are restated here.
 */
interface LayoutGraph {
  setGraph(label: Record<string, number | string>): void;
  setDefaultEdgeLabel(f: () => object): void;
  setNode(id: string, label: { width: number; height: number }): void;
  hasNode(id: string): boolean;
  setEdge(from: string, to: string): void;
  graph(): { width?: number; height?: number };
  edges(): { v: string; w: string }[];
  edge(e: { v: string; w: string }): { points?: { x: number; y: number }[] };
  node(id: string): { x: number; y: number; width: number; height: number };
}
const dagre = dagreModule as unknown as {
  graphlib: { Graph: new () => LayoutGraph };
  layout(g: LayoutGraph): void;
};

const STATE_FILL: Record<string, string> = {
  done: '#e6f4ea',
  running: '#e8f0fe',
  failed: '#fce8e6',
  stale: '#fef7e0',
  pending: '#f1f3f4',
};

function picture(m: ReportModel, view: DagView, kind: 'stage' | 'task'): SVGSVGElement {
  const g = new dagre.graphlib.Graph();
  g.setGraph({
    rankdir: 'LR',
    nodesep: kind === 'stage' ? 24 : 6,
    ranksep: kind === 'stage' ? 50 : 40,
    marginx: 8,
    marginy: 8,
  });
  g.setDefaultEdgeLabel(() => ({}));
  const charW = kind === 'stage' ? 8 : 6.2;
  for (const n of view.nodes) {
    g.setNode(n.id, {
      width: Math.max(80, n.label.length * charW + 20),
      height: kind === 'stage' ? 46 : 22,
    });
  }
  for (const [a, b] of view.edges) if (g.hasNode(a) && g.hasNode(b)) g.setEdge(a, b);
  dagre.layout(g);
  const gw = g.graph().width ?? 100;
  const gh = g.graph().height ?? 100;
  const svg = s('svg', {
    class: `dag dag-${kind}s`,
    width: gw,
    height: gh,
    viewBox: `0 0 ${String(gw)} ${String(gh)}`,
    role: 'img',
    'aria-label': `${kind} graph`,
  });
  svg.append(
    s(
      'defs',
      {},
      s(
        'marker',
        {
          id: `arrow-${kind}`,
          viewBox: '0 0 10 10',
          refX: 10,
          refY: 5,
          markerWidth: 6,
          markerHeight: 6,
          orient: 'auto-start-reverse',
        },
        s('path', { d: 'M0,0 L10,5 L0,10 z', fill: '#888' }),
      ),
    ),
  );
  for (const e of g.edges()) {
    const pts = g.edge(e).points ?? [];
    const d = pts
      .map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x.toFixed(1)},${p.y.toFixed(1)}`)
      .join(' ');
    svg.append(s('path', { d, class: 'edge', 'marker-end': `url(#arrow-${kind})` }));
  }
  for (const n of view.nodes) {
    const box = g.node(n.id);
    const x = box.x - box.width / 2;
    const y = box.y - box.height / 2;
    const node = s('g', {
      class: `dag-${kind}`,
      'data-id': n.id,
      transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`,
    });
    const stroke = color(m.stages[n.stage]?.color ?? 0);
    const fill = kind === 'task' ? (STATE_FILL[n.state ?? 'pending'] ?? '#fff') : '#fff';
    node.append(
      s('rect', { width: box.width, height: box.height, rx: 5, fill, stroke, 'stroke-width': 2 }),
    );
    if (kind === 'stage') {
      const total = n.total ?? 0;
      const done = n.done ?? 0;
      const frac = total === 0 ? 0 : done / total;
      node.append(
        s('rect', {
          x: 2,
          y: box.height - 8,
          width: Math.max(0, (box.width - 4) * frac),
          height: 6,
          fill: stroke,
          opacity: 0.6,
        }),
        s('text', { x: box.width / 2, y: 18, 'text-anchor': 'middle', class: 'name' }, n.label),
        s(
          'text',
          { x: box.width / 2, y: 32, 'text-anchor': 'middle', class: 'sub' },
          `${int(done)}/${int(total)} · ${m.stages[n.stage]?.kind ?? ''}`,
        ),
      );
    } else {
      node.append(
        s('text', { x: box.width / 2, y: 15, 'text-anchor': 'middle', class: 'sub' }, n.label),
        s('title', {}, `${n.id}: ${n.state ?? ''}`),
      );
    }
    svg.append(node);
  }
  return svg;
}

export function dag(m: ReportModel): HTMLElement {
  const parts: HTMLElement[] = [
    h('h3', {}, 'Stages'),
    h('div', { class: 'scroll' }, picture(m, m.dag.stages, 'stage')),
  ];
  if (m.dag.tasks !== undefined) {
    parts.push(
      h('h3', {}, `Tasks (${int(m.dag.tasks.nodes.length)})`),
      h('div', { class: 'scroll' }, picture(m, m.dag.tasks, 'task')),
    );
  } else {
    parts.push(
      h(
        'p',
        { class: 'muted' },
        `The task graph (${int(m.tasks.length)} tasks) is too large to draw; \`stackflow graph --format dot\` prints it.`,
      ),
    );
  }
  return section('dag', 'Graph', ...parts);
}
