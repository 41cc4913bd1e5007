/**
 * A version's lineage as a graph (SPEC v3 §11): code commit → data → run → artifact → the
 * environments serving it. dagre lays it out when the page is rendered; the SVG only draws the
 * boxes and edge polylines at the positions dagre computed, so the graph reads with JavaScript off.
 * Pure.
 */
import { Graph, layout } from '@dagrejs/dagre';
import type { ModelVersion } from '../manifest/types.js';
import { html, type Html } from './html.js';

export interface LineageNode {
  id: string;
  kind: 'code' | 'data' | 'run' | 'artifact' | 'environment';
  label: string;
  detail?: string;
}

export interface LineageGraph {
  nodes: LineageNode[];
  edges: Array<[string, string]>;
}

const shortHex = (hex: string | undefined) => (hex ? hex.slice(0, 12) : undefined);

/** The nodes and edges of a version's lineage; `servedIn` names the environments whose pin is this version. */
export function lineageGraph(v: ModelVersion, servedIn: readonly string[]): LineageGraph {
  const nodes: LineageNode[] = [];
  const edges: Array<[string, string]> = [];
  const l = v.lineage ?? {};
  const inputs: string[] = [];
  if (l.code) {
    nodes.push({
      id: 'code',
      kind: 'code',
      label: `code ${shortHex(l.code.commit) ?? '(no commit)'}`,
      detail: l.code.repository,
    });
    inputs.push('code');
  }
  (l.data ?? []).forEach((d, i) => {
    nodes.push({ id: `data-${i}`, kind: 'data', label: `data ${d.id}`, detail: d.uri });
    inputs.push(`data-${i}`);
  });
  let producer: string[] = inputs;
  if (l.run) {
    nodes.push({ id: 'run', kind: 'run', label: `run ${l.run.id ?? ''}`.trim(), detail: l.run.system });
    for (const i of inputs) edges.push([i, 'run']);
    producer = ['run'];
  }
  nodes.push({ id: 'artifact', kind: 'artifact', label: `artifact sha256:${shortHex(v.artifact.sha256)}`, detail: `${v.model}@${v.version} (${v.format})` });
  for (const p of producer) edges.push([p, 'artifact']);
  for (const env of servedIn) {
    nodes.push({ id: `env-${env}`, kind: 'environment', label: `environment ${env}` });
    edges.push(['artifact', `env-${env}`]);
  }
  return { nodes, edges };
}

const NODE_WIDTH = 210;
const NODE_HEIGHT = 46;

interface Layout {
  width: number;
  height: number;
  node(id: string): { x: number; y: number };
  edge(from: string, to: string): Array<{ x: number; y: number }>;
}

/** dagre's layout, left to right, behind a typed face. */
function layoutGraph(graph: LineageGraph): Layout {
  // dagre 3 publishes its types with extensionless relative imports, which NodeNext resolution
  // reads as `any`: the calls are typed here, once, by the interface this function returns.
  /* eslint-disable @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-return */
  const g = new Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 18, ranksep: 48, marginx: 8, marginy: 8 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const n of graph.nodes) g.setNode(n.id, { width: NODE_WIDTH, height: NODE_HEIGHT });
  for (const [a, b] of graph.edges) g.setEdge(a, b);
  layout(g);
  const { width = 0, height = 0 }: { width?: number; height?: number } = g.graph();
  return {
    width,
    height,
    node: (id) => g.node(id),
    edge: (from, to) => g.edge(from, to).points ?? [],
  };
  /* eslint-enable @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-return */
}

/** The graph as inline SVG at the positions dagre computed; its title reads the chain for screen readers. */
export function renderLineageSvg(graph: LineageGraph): Html {
  const g = layoutGraph(graph);
  const { width, height } = g;
  const edges = graph.edges.map(([a, b]) => {
    const points = g.edge(a, b);
    const d = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${p.x.toFixed(1)},${p.y.toFixed(1)}`).join(' ');
    return html`<path class="edge" d="${d}" marker-end="url(#arrow)"></path>`;
  });
  const boxes = graph.nodes.map((n) => {
    const { x, y } = g.node(n.id);
    const left = x - NODE_WIDTH / 2;
    const top = y - NODE_HEIGHT / 2;
    const body = html`<rect x="${left}" y="${top}" width="${NODE_WIDTH}" height="${NODE_HEIGHT}" rx="6"></rect>
      <text x="${left + 10}" y="${top + 19}" class="label">${clip(n.label, 30)}</text
      >${n.detail ? html`<text x="${left + 10}" y="${top + 36}" class="detail">${clip(n.detail, 34)}</text>` : ''}`;
    return html`<g class="node node-${n.kind}" data-node="${n.id}">${body}</g>`;
  });
  return html`<svg
    class="lineage"
    role="img"
    aria-labelledby="lineage-title"
    viewBox="0 0 ${Math.ceil(width)} ${Math.ceil(height)}"
    width="${Math.ceil(width)}"
    height="${Math.ceil(height)}"
    data-nodes="${graph.nodes.length}"
    data-edges="${graph.edges.length}"
  >
    <title id="lineage-title">Lineage: ${graph.nodes.map((n) => n.label).join(' → ')}</title>
    <defs>
      <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
        <path d="M0,0 L10,5 L0,10 z"></path>
      </marker>
    </defs>
    ${edges}${boxes}
  </svg>`;
}

function clip(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
