/**
 * The lineage view (main area): a run's or a file's lineage graph, laid out by
 * dagre (lineageGraph.ts) and drawn as SVG, with zoom and pan, collapsing,
 * folded groups of files, and a details pane for the selected node whose
 * buttons open the run, the file, or its stored bytes. Every string from the
 * store is rendered as text (React text nodes and SVG <title>), never as HTML.
 */

import type { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import type { ILineageTarget } from '../api';
import {
  ILayout,
  layoutLineage,
  IViewNode,
  primaryPath
} from '../lineageGraph';
import { ILineage, ILineageNode, LineageDirection } from '../types';

export interface ILineageServices {
  lineage(
    target: ILineageTarget,
    direction: LineageDirection,
    depth: number | null,
    signal?: AbortSignal
  ): Promise<ILineage>;
  /** Show a run in the Runs panel. */
  openRun(id: string): void;
  /** Open a project file (root-relative) in JupyterLab. */
  openPath(path: string): void;
  /** URL that downloads the stored bytes of a run's input or output. */
  storedUrl(run: string, path: string, role: 'input' | 'output'): string;
  /** Show the lineage of another run or file (a new view). */
  openLineage(target: ILineageTarget): void;
}

/** Below this scale, node labels cannot be read. */
const READABLE_SCALE = 0.55;
/** The overview's size in pixels (its longer side). */
const OVERVIEW_SIZE = 180;

interface ITransform {
  k: number;
  x: number;
  y: number;
}

const MARK_WORDS: Record<string, string> = {
  root: 'asked about',
  source: 'source',
  external: 'outside the project',
  unstored: 'not stored',
  stale: 'changed on disk',
  truncated: 'more beyond depth',
  failed: 'failed run',
  pulled: 'pulled'
};

/** Where the stored bytes of a content node can be fetched: a run that wrote or read them. */
export function storedRef(
  lineage: ILineage,
  node: ILineageNode
): { run: string; path: string; role: 'input' | 'output' } | null {
  const writer = lineage.edges.find(
    e => e.to === node.id && e.relation === 'wasGeneratedBy'
  );
  const reader = lineage.edges.find(
    e => e.from === node.id && e.relation === 'used'
  );
  const edge = writer ?? reader;
  if (!edge || !node.paths?.length) {
    return null;
  }
  const runId = (writer ? edge.from : edge.to).slice('run:'.length);
  const run = lineage.nodes.find(n => n.id === `run:${runId}`);
  if (!run) {
    return null;
  }
  return {
    run: runId,
    path: primaryPath(node),
    role: writer ? 'output' : 'input'
  };
}

export function LineageView(props: {
  target: ILineageTarget;
  services: ILineageServices;
  trans: TranslationBundle;
  /** Told what the graph is of once it is known (for the tab's label). */
  onSubject?: (subject: string) => void;
}): JSX.Element {
  const { target, services, trans } = props;
  const [direction, setDirection] = React.useState<LineageDirection>(
    target.path ? 'upstream' : 'both'
  );
  const [depth, setDepth] = React.useState<number | null>(null);
  const [lineage, setLineage] = React.useState<ILineage | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const [loading, setLoading] = React.useState(true);
  const [reload, setReload] = React.useState(0);
  const [collapsed, setCollapsed] = React.useState<Set<string>>(new Set());
  const [expanded, setExpanded] = React.useState<Set<string>>(new Set());
  const [selected, setSelected] = React.useState<string | null>(null);
  const [transform, setTransform] = React.useState<ITransform>({
    k: 1,
    x: 0,
    y: 0
  });
  const frame = React.useRef<HTMLDivElement>(null);
  const fitted = React.useRef(false);

  React.useEffect(() => {
    const abort = new AbortController();
    setLoading(true);
    services
      .lineage(target, direction, depth, abort.signal)
      .then(graph => {
        setLineage(graph);
        setError(null);
        fitted.current = false;
      })
      .catch(err => {
        if ((err as Error)?.name !== 'AbortError') {
          setError((err as Error).message ?? String(err));
        }
      })
      .finally(() => setLoading(false));
    return () => abort.abort();
  }, [target.run, target.path, direction, depth, reload]);

  const drawn = React.useMemo(
    () => (lineage ? layoutLineage(lineage, { collapsed, expanded }) : null),
    [lineage, collapsed, expanded]
  );

  const fit = React.useCallback(() => {
    const host = frame.current;
    if (!host || !drawn || !drawn.width) {
      return;
    }
    const k = Math.min(
      1,
      host.clientWidth / drawn.width,
      host.clientHeight / drawn.height
    );
    setTransform({
      k,
      x: (host.clientWidth - drawn.width * k) / 2,
      y: Math.max(0, (host.clientHeight - drawn.height * k) / 2)
    });
  }, [drawn]);

  /** Centre a graph point in the frame at scale `k`. */
  const centreOn = React.useCallback((x: number, y: number, k: number) => {
    const host = frame.current;
    if (!host) {
      return;
    }
    setTransform({
      k,
      x: host.clientWidth / 2 - x * k,
      y: host.clientHeight / 2 - y * k
    });
  }, []);

  // First view: the whole graph if it can be read whole, else the node asked
  // about at a readable scale (the overview and Fit show the rest).
  React.useLayoutEffect(() => {
    const host = frame.current;
    if (!drawn || fitted.current || !host || !drawn.width) {
      return;
    }
    fitted.current = true;
    const whole = Math.min(
      host.clientWidth / drawn.width,
      host.clientHeight / drawn.height
    );
    const root = drawn.nodes.find(n => n.marks.includes('root'));
    if (whole >= READABLE_SCALE || !root) {
      fit();
    } else {
      centreOn(root.x, root.y, 1);
    }
  }, [drawn, fit, centreOn]);

  const zoomBy = (factor: number, cx?: number, cy?: number) => {
    const host = frame.current;
    const px = cx ?? (host ? host.clientWidth / 2 : 0);
    const py = cy ?? (host ? host.clientHeight / 2 : 0);
    setTransform(t => {
      const k = Math.min(4, Math.max(0.05, t.k * factor));
      // Keep the point under the cursor where it is.
      return {
        k,
        x: px - ((px - t.x) * k) / t.k,
        y: py - ((py - t.y) * k) / t.k
      };
    });
  };

  const onWheel = (event: React.WheelEvent) => {
    event.preventDefault();
    const box = frame.current?.getBoundingClientRect();
    zoomBy(
      Math.exp(-event.deltaY / 400),
      box ? event.clientX - box.left : undefined,
      box ? event.clientY - box.top : undefined
    );
  };

  const drag = React.useRef<{ x: number; y: number } | null>(null);
  const onPointerDown = (event: React.PointerEvent) => {
    if ((event.target as Element).closest('.jp-dotnb-DataLineageNode')) {
      return;
    }
    drag.current = { x: event.clientX, y: event.clientY };
    (event.currentTarget as Element).setPointerCapture?.(event.pointerId);
  };
  const onPointerMove = (event: React.PointerEvent) => {
    const start = drag.current;
    if (!start) {
      return;
    }
    const dx = event.clientX - start.x;
    const dy = event.clientY - start.y;
    drag.current = { x: event.clientX, y: event.clientY };
    setTransform(t => ({ ...t, x: t.x + dx, y: t.y + dy }));
  };
  const onPointerUp = () => {
    drag.current = null;
  };

  const toggle = (
    set: Set<string>,
    update: (s: Set<string>) => void,
    id: string
  ) => {
    const next = new Set(set);
    if (next.has(id)) {
      next.delete(id);
    } else {
      next.add(id);
    }
    update(next);
  };

  const activate = (node: IViewNode) => {
    if (node.kind === 'group') {
      toggle(expanded, setExpanded, node.id);
      return;
    }
    setSelected(node.id);
  };

  const primaryAction = (node: IViewNode) => {
    const api = node.node;
    if (node.kind === 'group' || !api) {
      activate(node);
    } else if (api.type === 'run' && api.run) {
      services.openRun(api.run);
    } else if (api.type === 'content' && lineage) {
      const path = primaryPath(api);
      if (api.disk?.[path] === 'same') {
        services.openPath(path);
      } else {
        setSelected(node.id);
      }
    } else {
      setSelected(node.id);
    }
  };

  const selectedNode = drawn?.nodes.find(n => n.id === selected) ?? null;
  const counts = React.useMemo(() => {
    const runs = lineage?.nodes.filter(n => n.type === 'run').length ?? 0;
    return { runs, files: (lineage?.nodes.length ?? 0) - runs };
  }, [lineage]);
  const rootNode = lineage?.nodes.find(n => n.id === lineage.root);
  // What the graph is of: "run #8 step 39 (nb4.ipynb)" or a path.
  const subject =
    rootNode?.type === 'run'
      ? [
          trans.__('run'),
          rootNode.number ? `#${rootNode.number}` : rootNode.run,
          rootNode.name,
          rootNode.notebook ? `(${rootNode.notebook})` : ''
        ]
          .filter(Boolean)
          .join(' ')
      : target.run
        ? `${trans.__('run')} ${target.run}`
        : (target.path ?? '');
  const title = trans.__('Lineage of %1', subject);

  React.useEffect(() => {
    if (rootNode) {
      props.onSubject?.(subject);
    }
  }, [subject, rootNode?.id]);

  return (
    <div className="jp-dotnb-MainView jp-dotnb-DataLineage">
      <div className="jp-dotnb-DataLineageToolbar" role="toolbar">
        <span className="jp-dotnb-DataLineageTitle">{title}</span>
        <label>
          {trans.__('Show')}{' '}
          <select
            className="jp-dotnb-DataLineageDirection"
            value={direction}
            onChange={e => setDirection(e.target.value as LineageDirection)}
          >
            <option value="upstream">{trans.__('where it came from')}</option>
            <option value="downstream">{trans.__('what used it')}</option>
            <option value="both">{trans.__('both ways')}</option>
          </select>
        </label>
        <label>
          {trans.__('Depth')}{' '}
          <select
            className="jp-dotnb-DataLineageDepth"
            value={depth === null ? '' : String(depth)}
            onChange={e =>
              setDepth(e.target.value === '' ? null : Number(e.target.value))
            }
          >
            <option value="">{trans.__('all')}</option>
            {[1, 2, 3, 5, 10].map(n => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
        <button
          className="jp-mod-styled jp-mod-minimal"
          onClick={() => zoomBy(1.25)}
          title={trans.__('Zoom in')}
          aria-label={trans.__('Zoom in')}
        >
          +
        </button>
        <button
          className="jp-mod-styled jp-mod-minimal"
          onClick={() => zoomBy(0.8)}
          title={trans.__('Zoom out')}
          aria-label={trans.__('Zoom out')}
        >
          −
        </button>
        <button className="jp-mod-styled jp-mod-minimal" onClick={fit}>
          {trans.__('Fit')}
        </button>
        {(collapsed.size > 0 || expanded.size > 0) && (
          <button
            className="jp-mod-styled jp-mod-minimal"
            onClick={() => {
              setCollapsed(new Set());
              setExpanded(new Set());
            }}
          >
            {trans.__('Reset')}
          </button>
        )}
        <button
          className="jp-mod-styled jp-mod-minimal"
          onClick={() => setReload(r => r + 1)}
          title={trans.__('Ask the server again')}
        >
          {trans.__('Refresh')}
        </button>
        <span className="jp-dotnb-DataLineageCount" role="status">
          {loading
            ? trans.__('loading…')
            : lineage
              ? trans.__('%1 runs, %2 files', counts.runs, counts.files)
              : ''}
        </span>
      </div>
      <ul
        className="jp-dotnb-DataLineageLegend"
        aria-label={trans.__('Legend')}
      >
        {['root', 'source', 'stale', 'external', 'unstored', 'failed'].map(
          mark => (
            <li key={mark} className={`jp-dotnb-DataLineageMark-${mark}`}>
              {trans.__(MARK_WORDS[mark])}
            </li>
          )
        )}
      </ul>
      {error && (
        <div className="jp-dotnb-Message jp-mod-error" role="alert">
          {error}
        </div>
      )}
      <div className="jp-dotnb-DataLineageBody">
        <div
          className="jp-dotnb-DataLineageFrame"
          ref={frame}
          onWheel={onWheel}
          onPointerDown={onPointerDown}
          onPointerMove={onPointerMove}
          onPointerUp={onPointerUp}
        >
          {drawn && (
            <svg
              className="jp-dotnb-DataLineageGraph"
              role="group"
              aria-label={title}
              width="100%"
              height="100%"
            >
              <defs>
                <marker
                  id="jp-dotnb-arrow"
                  viewBox="0 0 10 10"
                  refX="10"
                  refY="5"
                  markerWidth="7"
                  markerHeight="7"
                  orient="auto-start-reverse"
                >
                  <path d="M 0 0 L 10 5 L 0 10 z" />
                </marker>
              </defs>
              <g
                transform={`translate(${transform.x},${transform.y}) scale(${transform.k})`}
              >
                {drawn.edges.map(edge => (
                  <polyline
                    key={`${edge.from}>${edge.to}`}
                    className={`jp-dotnb-DataLineageEdge jp-mod-${edge.relation}`}
                    points={edge.points.map(p => `${p.x},${p.y}`).join(' ')}
                    markerEnd="url(#jp-dotnb-arrow)"
                  />
                ))}
                {drawn.nodes.map(node => (
                  <LineageNode
                    key={node.id}
                    node={node}
                    selected={node.id === selected}
                    onSelect={() => activate(node)}
                    onOpen={() => primaryAction(node)}
                    trans={trans}
                  />
                ))}
              </g>
            </svg>
          )}
          {drawn && !fitsIn(drawn, transform, frame.current) && (
            <Overview
              layout={drawn}
              transform={transform}
              frame={frame.current}
              onCentre={(x, y) => centreOn(x, y, Math.max(transform.k, 1))}
              trans={trans}
            />
          )}
        </div>
        {selectedNode && lineage && (
          <NodeDetails
            node={selectedNode}
            lineage={lineage}
            collapsed={collapsed.has(selectedNode.id)}
            onToggleCollapse={() =>
              toggle(collapsed, setCollapsed, selectedNode.id)
            }
            onClose={() => setSelected(null)}
            services={services}
            trans={trans}
          />
        )}
      </div>
    </div>
  );
}

function LineageNode(props: {
  node: IViewNode;
  selected: boolean;
  onSelect: () => void;
  onOpen: () => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { node, selected, trans } = props;
  const left = node.x - node.width / 2;
  const top = node.y - node.height / 2;
  const classes = [
    'jp-dotnb-DataLineageNode',
    `jp-mod-${node.kind}`,
    ...node.marks.map(m => `jp-mod-${m}`),
    selected ? 'jp-mod-selected' : '',
    node.collapsed ? 'jp-mod-collapsed' : ''
  ]
    .filter(Boolean)
    .join(' ');
  const marks = node.marks
    .filter(m => m !== 'root')
    .map(m => trans.__(MARK_WORDS[m]));
  return (
    <g
      className={classes}
      data-node={node.id}
      transform={`translate(${left},${top})`}
      role="button"
      tabIndex={0}
      aria-label={[node.title, node.subtitle, ...marks].join(', ')}
      aria-pressed={selected}
      onClick={props.onSelect}
      onDoubleClick={props.onOpen}
      onKeyDown={event => {
        if (event.key === 'Enter') {
          props.onOpen();
        } else if (event.key === ' ') {
          event.preventDefault();
          props.onSelect();
        }
      }}
    >
      <title>{node.tooltip}</title>
      <rect
        width={node.width}
        height={node.height}
        rx={node.kind === 'run' ? 4 : 12}
      />
      <text
        x={10}
        y={node.kind === 'group' ? 21 : 18}
        className="jp-dotnb-DataLineageNodeTitle"
      >
        {node.title}
      </text>
      {node.kind !== 'group' && (
        <text
          x={10}
          y={node.height - 10}
          className="jp-dotnb-DataLineageNodeSub"
        >
          {node.subtitle}
          {marks.length ? ` · ${marks.join(' · ')}` : ''}
        </text>
      )}
      {node.collapsed && (
        <text
          x={node.width - 8}
          y={18}
          textAnchor="end"
          className="jp-dotnb-DataLineageHidden"
        >
          +{node.hidden}
        </text>
      )}
    </g>
  );
}

function NodeDetails(props: {
  node: IViewNode;
  lineage: ILineage;
  collapsed: boolean;
  onToggleCollapse: () => void;
  onClose: () => void;
  services: ILineageServices;
  trans: TranslationBundle;
}): JSX.Element {
  const { node, lineage, services, trans } = props;
  const api = node.node;
  const stored = api?.type === 'content' ? storedRef(lineage, api) : null;
  return (
    <aside
      className="jp-dotnb-DataLineageDetails"
      aria-label={trans.__('Selected node')}
    >
      <div className="jp-dotnb-DataLineageDetailsHead">
        <strong>{node.title}</strong>
        <button
          className="jp-mod-styled jp-mod-minimal"
          onClick={props.onClose}
          aria-label={trans.__('Close')}
        >
          ×
        </button>
      </div>
      <pre className="jp-dotnb-DataLineageDetailsText">{node.tooltip}</pre>
      <div className="jp-dotnb-DataLineageActions">
        {api?.type === 'run' && api.run && (
          <>
            <button
              className="jp-mod-styled jp-mod-accept"
              onClick={() => services.openRun(api.run as string)}
            >
              {trans.__('Open run')}
            </button>
            <button
              className="jp-mod-styled"
              onClick={() => services.openLineage({ run: api.run })}
            >
              {trans.__('Lineage from here')}
            </button>
          </>
        )}
        {api?.type === 'content' &&
          (api.paths ?? [])
            .filter(p => api.disk?.[p] === 'same')
            .map(p => (
              <button
                key={p}
                className="jp-mod-styled jp-mod-accept"
                onClick={() => services.openPath(p)}
              >
                {trans.__('Open %1', p)}
              </button>
            ))}
        {stored && (
          <a
            className="jp-mod-styled jp-dotnb-DataLineageStored"
            href={services.storedUrl(stored.run, stored.path, stored.role)}
            download={stored.path.split('/').pop()}
          >
            {trans.__('Download the stored bytes')}
          </a>
        )}
        {api?.type === 'content' &&
          (api.paths ?? []).some(p => api.disk?.[p] === 'same') && (
            <button
              className="jp-mod-styled"
              onClick={() => services.openLineage({ path: primaryPath(api) })}
            >
              {trans.__('Lineage from here')}
            </button>
          )}
        {node.kind !== 'group' && !node.marks.includes('root') && (
          <button className="jp-mod-styled" onClick={props.onToggleCollapse}>
            {props.collapsed
              ? trans.__('Show what lies beyond')
              : trans.__('Collapse what lies beyond')}
          </button>
        )}
      </div>
    </aside>
  );
}

/** Whether the whole graph is in view at this transform. */
function fitsIn(
  layout: ILayout,
  transform: ITransform,
  frame: HTMLDivElement | null
): boolean {
  if (!frame) {
    return true;
  }
  return (
    transform.x >= -1 &&
    transform.y >= -1 &&
    transform.x + layout.width * transform.k <= frame.clientWidth + 1 &&
    transform.y + layout.height * transform.k <= frame.clientHeight + 1
  );
}

/**
 * The whole graph in miniature with the visible part outlined; a click
 * centres the view there. Shown while the graph is zoomed out.
 */
function Overview(props: {
  layout: ILayout;
  transform: ITransform;
  frame: HTMLDivElement | null;
  onCentre: (x: number, y: number) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { layout, transform, frame } = props;
  const scale = OVERVIEW_SIZE / Math.max(layout.width, layout.height, 1);
  const width = Math.max(40, layout.width * scale);
  const height = Math.max(24, layout.height * scale);
  const view = frame
    ? {
        x: (-transform.x / transform.k) * scale,
        y: (-transform.y / transform.k) * scale,
        w: (frame.clientWidth / transform.k) * scale,
        h: (frame.clientHeight / transform.k) * scale
      }
    : null;
  return (
    <svg
      className="jp-dotnb-DataLineageOverview"
      width={width}
      height={height}
      role="img"
      aria-label={props.trans.__('Overview: click to go there')}
      onPointerDown={event => event.stopPropagation()}
      onClick={event => {
        const box = (
          event.currentTarget as SVGSVGElement
        ).getBoundingClientRect();
        props.onCentre(
          (event.clientX - box.left) / scale,
          (event.clientY - box.top) / scale
        );
      }}
    >
      {layout.nodes.map(node => (
        <rect
          key={node.id}
          className={`jp-mod-${node.kind} ${node.marks.map(m => `jp-mod-${m}`).join(' ')}`}
          x={(node.x - node.width / 2) * scale}
          y={(node.y - node.height / 2) * scale}
          width={Math.max(1, node.width * scale)}
          height={Math.max(1, node.height * scale)}
        />
      ))}
      {view && (
        <rect
          className="jp-dotnb-DataLineageViewport"
          x={view.x}
          y={view.y}
          width={view.w}
          height={view.h}
        />
      )}
    </svg>
  );
}
