/**
 * The lineage view's graph, from `GET lineage` to positioned boxes: which
 * nodes show (a run's many leaf files folded into one node, the far side of a
 * collapsed node hidden), their labels and marks, and a layered layout by
 * dagre (data flowing left to right). Pure: no DOM, no React.
 */

import { graphlib, layout } from '@dagrejs/dagre';

import { ILineage, ILineageNode } from './types';

/** Leaf files of one run beyond this many fold into one "N more" node. */
export const FOLD_AFTER = 6;

export const NODE_WIDTH = 220;
const RUN_HEIGHT = 48;
const FILE_HEIGHT = 42;
const GROUP_HEIGHT = 34;
/** Characters of a label that fit a box; longer ones are cut in the middle. */
const LABEL_CHARS = 30;

export type NodeMark =
  | 'root'
  | 'source'
  | 'external'
  | 'unstored'
  | 'stale'
  | 'truncated'
  | 'failed'
  | 'pulled';

export interface IViewNode {
  id: string;
  kind: ILineageNode['type'] | 'group';
  title: string;
  subtitle: string;
  /** Everything worth a tooltip, untruncated. */
  tooltip: string;
  marks: NodeMark[];
  /** The node's neighbours are hidden (the user collapsed it). */
  collapsed: boolean;
  /** Nodes hidden behind this one while it is collapsed. */
  hidden: number;
  /** The API's node; absent for a folded group. */
  node?: ILineageNode;
  /** A folded group's members (node ids). */
  members?: string[];
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface IViewEdge {
  from: string;
  to: string;
  relation: 'used' | 'wasGeneratedBy';
  points: { x: number; y: number }[];
}

export interface ILayout {
  nodes: IViewNode[];
  edges: IViewEdge[];
  width: number;
  height: number;
}

/** What the user changed: nodes collapsed, folded groups opened. */
export interface IViewState {
  collapsed: ReadonlySet<string>;
  expanded: ReadonlySet<string>;
}

/** A label cut in the middle to `max` characters ("data/…/train.csv"). */
export function shorten(text: string, max = LABEL_CHARS): string {
  if (text.length <= max) {
    return text;
  }
  const head = Math.ceil((max - 1) / 2);
  const tail = Math.floor((max - 1) / 2);
  return `${text.slice(0, head)}…${text.slice(text.length - tail)}`;
}

/** The path to show first for a content node: one that holds its bytes now. */
export function primaryPath(node: ILineageNode): string {
  const paths = node.paths ?? [];
  const current = paths.find(p => node.disk?.[p] === 'same');
  return current ?? paths[0] ?? node.path ?? '';
}

function describe(
  node: ILineageNode,
  root: string
): Omit<IViewNode, 'x' | 'y' | 'width' | 'height' | 'collapsed' | 'hidden'> {
  const marks: NodeMark[] = [];
  if (node.id === root) {
    marks.push('root');
  }
  if (node.truncated) {
    marks.push('truncated');
  }
  if (node.type === 'run') {
    const number = node.number
      ? `#${node.number}`
      : (node.run ?? '').slice(0, 10);
    const title = node.name ? `${number} ${node.name}` : number;
    const notebook = node.notebook ?? 'headless run';
    const when = (node.started_at ?? '').slice(0, 16).replace('T', ' ');
    if (node.status && node.status !== 'ok') {
      marks.push('failed');
    }
    if (node.remote) {
      marks.push('pulled');
    }
    const who = node.author ?? '';
    return {
      id: node.id,
      kind: 'run',
      title: shorten(`run ${title}`),
      subtitle: shorten(notebook.split('/').pop() ?? notebook),
      tooltip: [
        `run ${node.run ?? ''} ${title}`,
        notebook,
        [who, when].filter(Boolean).join(' · '),
        node.remote ? `pulled from ${node.remote}` : '',
        node.status && node.status !== 'ok' ? `status: ${node.status}` : ''
      ]
        .filter(Boolean)
        .join('\n'),
      marks,
      node
    };
  }
  if (node.type === 'content') {
    const paths = node.paths ?? [];
    const path = primaryPath(node);
    if (node.source) {
      marks.push('source');
    }
    if (node.stale) {
      marks.push('stale');
    }
    const others = paths.length > 1 ? ` · +${paths.length - 1} name` : '';
    const disk = paths.map(p => `${p} (${diskWords(node.disk?.[p])})`);
    return {
      id: node.id,
      kind: 'content',
      title: shorten(path || '(no path recorded)'),
      subtitle: `${(node.hash ?? '').slice(0, 10)}${others}`,
      tooltip: [
        ...disk,
        `blake3 ${node.hash ?? ''}`,
        node.source ? 'source: no run wrote these bytes' : ''
      ]
        .filter(Boolean)
        .join('\n'),
      marks,
      node
    };
  }
  const external = node.type === 'external';
  marks.push(external ? 'external' : 'unstored');
  const what = external ? 'outside the project' : 'content not stored';
  return {
    id: node.id,
    kind: node.type,
    title: shorten(node.path ?? ''),
    subtitle: what,
    tooltip: `${node.path ?? ''}\n${what}`,
    marks,
    node
  };
}

function diskWords(state: string | undefined): string {
  switch (state) {
    case 'same':
      return 'on disk';
    case 'changed':
      return 'changed on disk since';
    case 'missing':
      return 'gone from disk';
    default:
      return 'not checked';
  }
}

type Unplaced = Omit<IViewNode, 'x' | 'y' | 'width' | 'height'>;

/** The nodes and edges to draw, before layout. */
export function visibleGraph(
  lineage: ILineage,
  state: IViewState
): { nodes: Unplaced[]; edges: Omit<IViewEdge, 'points'>[] } {
  const byId = new Map(lineage.nodes.map(n => [n.id, n]));
  const neighbours = new Map<string, Set<string>>();
  const link = (a: string, b: string) => {
    if (!neighbours.has(a)) {
      neighbours.set(a, new Set());
    }
    neighbours.get(a)!.add(b);
  };
  const edges = lineage.edges.filter(e => byId.has(e.from) && byId.has(e.to));
  for (const e of edges) {
    link(e.from, e.to);
    link(e.to, e.from);
  }
  const degree = (id: string) => neighbours.get(id)?.size ?? 0;

  // Fold: a run's leaf files (no other neighbour) beyond FOLD_AFTER, per side.
  const folded = new Map<string, string>(); // member -> group id
  const groups = new Map<
    string,
    { run: string; side: 'in' | 'out'; members: string[] }
  >();
  for (const node of lineage.nodes) {
    if (node.type !== 'run') {
      continue;
    }
    for (const side of ['in', 'out'] as const) {
      const leaves = edges
        .filter(e => (side === 'in' ? e.to === node.id : e.from === node.id))
        .map(e => (side === 'in' ? e.from : e.to))
        .filter(id => id !== lineage.root && degree(id) === 1)
        .sort((a, b) =>
          labelOf(byId.get(a)!).localeCompare(labelOf(byId.get(b)!))
        );
      const groupId = `group:${side}:${node.id}`;
      if (leaves.length <= FOLD_AFTER || state.expanded.has(groupId)) {
        continue;
      }
      const members = leaves.slice(FOLD_AFTER - 1);
      groups.set(groupId, { run: node.id, side, members });
      for (const member of members) {
        folded.set(member, groupId);
      }
    }
  }

  // Hide what lies beyond collapsed nodes: reachable from the root only through them.
  const reached = new Set<string>([lineage.root]);
  const queue = [lineage.root];
  while (queue.length) {
    const id = queue.shift()!;
    if (state.collapsed.has(id) && id !== lineage.root) {
      continue;
    }
    for (const next of neighbours.get(id) ?? []) {
      if (!reached.has(next)) {
        reached.add(next);
        queue.push(next);
      }
    }
  }
  const hiddenBehind = (id: string): number => {
    const seen = new Set<string>();
    const stack = [...(neighbours.get(id) ?? [])].filter(n => !reached.has(n));
    while (stack.length) {
      const next = stack.pop()!;
      if (seen.has(next)) {
        continue;
      }
      seen.add(next);
      for (const more of neighbours.get(next) ?? []) {
        if (!reached.has(more)) {
          stack.push(more);
        }
      }
    }
    return seen.size;
  };

  const visible = (id: string) => reached.has(id) && !folded.has(id);
  const nodes: Unplaced[] = [];
  for (const node of lineage.nodes) {
    if (!visible(node.id)) {
      continue;
    }
    const collapsed = state.collapsed.has(node.id) && node.id !== lineage.root;
    nodes.push({
      ...describe(node, lineage.root),
      collapsed,
      hidden: collapsed ? hiddenBehind(node.id) : 0
    });
  }
  for (const [id, group] of groups) {
    if (!reached.has(group.run)) {
      continue;
    }
    const members = group.members.filter(m => reached.has(m));
    if (!members.length) {
      continue;
    }
    const what = group.side === 'in' ? 'input' : 'output';
    const names = members.map(m => labelOf(byId.get(m)!));
    nodes.push({
      id,
      kind: 'group',
      title: `${members.length} more ${what} file${members.length === 1 ? '' : 's'}`,
      subtitle: 'click to show them',
      tooltip: names.slice(0, 40).join('\n') + (names.length > 40 ? '\n…' : ''),
      marks: [],
      collapsed: false,
      hidden: 0,
      members
    });
  }

  const shown = new Set(nodes.map(n => n.id));
  const out = new Map<string, Omit<IViewEdge, 'points'>>();
  for (const e of edges) {
    const from = folded.get(e.from) ?? e.from;
    const to = folded.get(e.to) ?? e.to;
    if (shown.has(from) && shown.has(to) && from !== to) {
      out.set(`${from}\n${to}`, { from, to, relation: e.relation });
    }
  }
  return { nodes, edges: [...out.values()] };
}

function labelOf(node: ILineageNode): string {
  return node.type === 'content' ? primaryPath(node) : (node.path ?? node.id);
}

function heightOf(kind: IViewNode['kind']): number {
  return kind === 'run'
    ? RUN_HEIGHT
    : kind === 'group'
      ? GROUP_HEIGHT
      : FILE_HEIGHT;
}

/** Positions by dagre: ranks left to right in the direction data flows. */
export function layoutLineage(lineage: ILineage, state: IViewState): ILayout {
  const { nodes, edges } = visibleGraph(lineage, state);
  const g = new graphlib.Graph();
  g.setGraph({
    rankdir: 'LR',
    nodesep: 14,
    ranksep: 64,
    marginx: 16,
    marginy: 16
  });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of nodes) {
    g.setNode(node.id, { width: NODE_WIDTH, height: heightOf(node.kind) });
  }
  for (const edge of edges) {
    g.setEdge(edge.from, edge.to);
  }
  layout(g);
  const placed: IViewNode[] = nodes.map(node => {
    const at = g.node(node.id) as {
      x: number;
      y: number;
      width: number;
      height: number;
    };
    return { ...node, x: at.x, y: at.y, width: at.width, height: at.height };
  });
  const lines: IViewEdge[] = edges.map(edge => ({
    ...edge,
    points: (
      (g.edge(edge.from, edge.to) as { points?: { x: number; y: number }[] })
        .points ?? []
    ).map(p => ({ x: p.x, y: p.y }))
  }));
  const graph = g.graph() as { width?: number; height?: number };
  return {
    nodes: placed,
    edges: lines,
    width: graph.width ?? 0,
    height: graph.height ?? 0
  };
}
