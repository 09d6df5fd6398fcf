/**
 * The Experiments table: a virtualized ARIA grid. Only the rows in view (plus
 * a few) are in the DOM, and the model loads their pages from the server as
 * they come into view, so 10,000 runs cost what 50 do. Keyboard: the grid is
 * one tab stop with an active row — arrows, Page Up/Down, Home/End move it;
 * Space selects, P pins it as the baseline, Enter opens it in the Runs panel.
 * Header buttons sort (again: the other way). Cells are text.
 *
 * React renders the grid and its header; the rows are a pool of elements drawn
 * in place (experimentsRows.ts), on scroll straight from the scroll event, so
 * a fast scroll costs no React render per frame.
 *
 * Rows hold only the columns in view (plus one either side): the header keeps
 * every column, each cell says its place with aria-colindex, and the grid its
 * count with aria-colcount, so assistive technology sees the whole table.
 */

import type { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { IExperimentColumn } from '../experiments';
import type { ExperimentsModel } from '../experimentsModel';
import { IRunSummary } from '../types';
import {
  IRowsView,
  ROW_HEIGHT,
  RowPool,
  SELECT_WIDTH
} from './experimentsRows';

export { ROW_HEIGHT };
// Rows kept beyond each edge of the view. Few: every row in the DOM is styled,
// laid out and painted again when a fast scroll brings it new text.
const OVERSCAN = 1;
// Columns kept beyond each side of the view.
const COLUMN_OVERSCAN = 1;
// Pages are asked for this many rows ahead of the viewport (scrolling down or up).
const PREFETCH = 100;

function sortLabel(
  column: IExperimentColumn,
  sort: { key: string; order: 'asc' | 'desc' }
): 'ascending' | 'descending' | 'none' {
  if (sort.key !== column.key) {
    return 'none';
  }
  return sort.order === 'asc' ? 'ascending' : 'descending';
}

/**
 * The columns a row holds: those within `[left, left + viewWidth]` of the
 * scrolled grid, one more either side, and the width of those left out before
 * them (the first shown cell's left margin). Every column without a width to
 * go by (`viewWidth` null: not measured, as in tests).
 */
export function columnWindow(
  columns: IExperimentColumn[],
  left: number,
  viewWidth: number | null
): { from: number; to: number; offset: number } {
  if (viewWidth === null) {
    return { from: 0, to: columns.length, offset: 0 };
  }
  let x = SELECT_WIDTH;
  let from = columns.length;
  let to = columns.length;
  for (let i = 0; i < columns.length; i++) {
    const end = x + columns[i].width;
    if (from === columns.length && end > left) {
      from = i;
    }
    if (x >= left + viewWidth) {
      to = i;
      break;
    }
    x = end;
  }
  from = Math.max(0, Math.min(from, to) - COLUMN_OVERSCAN);
  to = Math.min(columns.length, to + COLUMN_OVERSCAN);
  const offset = columns.slice(0, from).reduce((sum, c) => sum + c.width, 0);
  return { from, to, offset };
}

export function ExperimentsGrid(props: {
  model: ExperimentsModel;
  trans: TranslationBundle;
  onOpen: (run: IRunSummary) => void;
  onActiveChange: (run: IRunSummary | null) => void;
  /** Viewport height before the first measurement (tests, first paint). */
  initialHeight?: number;
}): JSX.Element {
  const { model, trans } = props;
  const scroller = React.useRef<HTMLDivElement>(null);
  const rowsBody = React.useRef<HTMLDivElement>(null);
  // Scrolling draws the rows directly (no React render per scroll event): the
  // scroll position lives in refs, read when rows are drawn.
  const scrollTop = React.useRef(0);
  const scrollLeft = React.useRef(0);
  const [height, setHeight] = React.useState(props.initialHeight ?? 500);
  const [viewWidth, setViewWidth] = React.useState<number | null>(null);
  const [active, setActive] = React.useState(0);
  const total = model.total ?? 0;
  // Grouped: the grouping column comes first.
  const columns = model.group
    ? [
        ...model.columns.filter(c => c.key === model.group),
        ...model.visible.filter(c => c.key !== model.group)
      ]
    : model.visible;
  const width = SELECT_WIDTH + columns.reduce((sum, c) => sum + c.width, 0);

  React.useEffect(() => {
    const node = scroller.current;
    if (!node || typeof ResizeObserver === 'undefined') {
      return;
    }
    const observer = new ResizeObserver(() => {
      if (node.clientHeight > 0) {
        setHeight(node.clientHeight);
      }
      if (node.clientWidth > 0) {
        setViewWidth(node.clientWidth);
      }
    });
    observer.observe(node);
    return () => observer.disconnect();
  }, []);

  const onToggle = React.useCallback(
    (run: IRunSummary) => model.toggleSelected(run),
    [model]
  );
  const pool = React.useRef<RowPool | null>(null);
  React.useLayoutEffect(() => {
    pool.current = new RowPool(rowsBody.current!, trans, {
      onToggle,
      onActivate: setActive
    });
    return () => {
      pool.current?.dispose();
      pool.current = null;
    };
  }, [trans, onToggle]);

  // What the rows are drawn from: one object per render, its row and column
  // range set on each scroll event (a scroll allocates no view of its own).
  const view: IRowsView = {
    first: 0,
    last: -1,
    columns,
    from: 0,
    to: 0,
    offset: 0,
    width,
    active,
    baseline: model.baseline,
    grouped: model.group,
    rowAt: index => model.rowAt(index),
    isSelected: id => model.isSelected(id),
    startsGroup: index => model.startsGroup(index)
  };
  // The column window, computed again only when the grid scrolls sideways
  // (or the columns or its width change), not on every vertical scroll.
  const windowOf = React.useRef({
    columns: null as IExperimentColumn[] | null,
    left: -1,
    viewWidth: null as number | null,
    from: 0,
    to: 0,
    offset: 0
  });

  // Draws the rows in view from the latest state; the scroll handler calls the
  // same function between renders.
  const draw = React.useRef<(load?: boolean) => void>(() => undefined);
  draw.current = (load = true) => {
    const top = scrollTop.current;
    const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
    const last = Math.min(
      total - 1,
      Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN
    );
    if (load) {
      // The active row's page stays loaded too: the note and the keys act on its run.
      model.ensureRows(first - PREFETCH, last + PREFETCH, active);
    }
    const cached = windowOf.current;
    const left = scrollLeft.current;
    if (
      cached.columns !== columns ||
      cached.left !== left ||
      cached.viewWidth !== viewWidth
    ) {
      Object.assign(cached, columnWindow(columns, left, viewWidth), {
        columns,
        left,
        viewWidth
      });
    }
    view.first = first;
    view.last = last;
    view.from = cached.from;
    view.to = cached.to;
    view.offset = cached.offset;
    // A change of the model (a pin) draws before React renders again.
    view.baseline = model.baseline;
    pool.current?.render(view);
  };

  // A new sort or filter starts at the top.
  const generation = `${model.sort.key}|${model.sort.order}|${model.filters.join('\n')}|${model.query}|${model.notebook}|${model.group}`;
  React.useLayoutEffect(() => {
    setActive(0);
    scrollTop.current = 0;
    if (scroller.current) {
      scroller.current.scrollTop = 0;
    }
  }, [generation]);

  // Every render (the selection, the columns changed) draws the rows; so does
  // every change of the model (a page arrived), without waiting for a render.
  // That one asks for no pages: a reload emits its change before it asks for
  // its first page, with the old total, and the next render asks for the rest.
  React.useLayoutEffect(() => draw.current());
  React.useEffect(() => {
    const redraw = () => draw.current(false);
    model.changed.connect(redraw);
    return () => {
      model.changed.disconnect(redraw);
    };
  }, [model]);

  const activeRun = total
    ? model.rowAt(Math.min(active, total - 1))
    : undefined;
  const onActiveChange = props.onActiveChange;
  React.useEffect(() => {
    onActiveChange(activeRun ?? null);
  }, [activeRun?.id, onActiveChange]);

  const moveTo = (index: number) => {
    const next = Math.max(0, Math.min(total - 1, index));
    setActive(next);
    const node = scroller.current;
    if (node) {
      const header = ROW_HEIGHT;
      const top = next * ROW_HEIGHT;
      if (top < node.scrollTop) {
        node.scrollTop = top;
      } else if (
        top + ROW_HEIGHT + header >
        node.scrollTop + node.clientHeight
      ) {
        node.scrollTop = top + ROW_HEIGHT + header - node.clientHeight;
      }
    }
  };

  const onKeyDown = (event: React.KeyboardEvent) => {
    const page = Math.max(1, Math.floor(height / ROW_HEIGHT) - 1);
    const keys: Record<string, () => void> = {
      ArrowDown: () => moveTo(active + 1),
      ArrowUp: () => moveTo(active - 1),
      PageDown: () => moveTo(active + page),
      PageUp: () => moveTo(active - page),
      Home: () => moveTo(0),
      End: () => moveTo(total - 1),
      ' ': () => activeRun && model.toggleSelected(activeRun),
      Enter: () => activeRun && props.onOpen(activeRun),
      p: () => activeRun && model.pin(activeRun)
    };
    const action = keys[event.key];
    if (action && total > 0) {
      event.preventDefault();
      action();
    }
  };

  // The header is made again only when the columns, the sort or the width
  // change: the grid renders again on every page that arrives while scrolling.
  const sort = model.sort;
  const header = React.useMemo(
    () => (
      <div
        role="row"
        aria-rowindex={1}
        className="jp-dotnb-XHeader"
        style={{ width }}
      >
        <div
          role="columnheader"
          aria-colindex={1}
          className="jp-dotnb-XCell"
          style={{ width: SELECT_WIDTH }}
        >
          <span className="jp-dotnb-VisuallyHidden">
            {trans.__('selected')}
          </span>
        </div>
        {columns.map((column, i) => (
          <div
            key={column.key}
            role="columnheader"
            aria-colindex={i + 2}
            aria-sort={sortLabel(column, sort)}
            className={`jp-dotnb-XCell jp-dotnb-XCol-${column.kind} ${column.numeric ? 'jp-mod-numeric' : ''}`}
            style={{ width: column.width }}
          >
            <button
              type="button"
              className="jp-dotnb-XSortButton"
              data-column={column.key}
              title={
                column.kind === 'builtin'
                  ? trans.__('Sort by %1', column.name)
                  : trans.__('Sort by %1 %2', column.kind, column.name)
              }
              onClick={() => void model.setSort(column.key)}
            >
              {column.kind !== 'builtin' && (
                <span className="jp-dotnb-XKind">
                  {column.kind === 'param' ? 'p' : 'm'}
                </span>
              )}
              {column.name}
              {sort.key === column.key && (
                <span aria-hidden="true">
                  {sort.order === 'asc' ? ' ▲' : ' ▼'}
                </span>
              )}
            </button>
          </div>
        ))}
      </div>
    ),
    [columns, sort, width, trans, model]
  );

  return (
    <div
      ref={scroller}
      className="jp-dotnb-XGrid"
      role="grid"
      aria-label={trans.__('Runs')}
      aria-rowcount={total + 1}
      aria-colcount={columns.length + 1}
      aria-multiselectable={true}
      aria-activedescendant={
        activeRun ? `jp-dotnb-xrow-${activeRun.id}` : undefined
      }
      tabIndex={0}
      onKeyDown={onKeyDown}
      onScroll={event => {
        scrollTop.current = event.currentTarget.scrollTop;
        scrollLeft.current = event.currentTarget.scrollLeft;
        draw.current();
      }}
    >
      {header}
      {/* The rows are the pool's (experimentsRows.ts): React leaves this element's children alone. */}
      <div
        ref={rowsBody}
        className="jp-dotnb-XBody"
        role="rowgroup"
        style={{ height: total * ROW_HEIGHT, width }}
      />
    </div>
  );
}
