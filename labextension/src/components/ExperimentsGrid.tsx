/**
 * The Experiments table: a virtualized ARIA grid. Only the rows in view (plus
 * a few) are in the DOM, and the model loads their pages from the server as
 * they come into view, so 10,000 runs cost what 50 do. Keyboard: the grid is
 * one tab stop with an active row — arrows, Page Up/Down, Home/End move it;
 * Space selects, P pins it as the baseline, Enter opens it in the Runs panel.
 * Header buttons sort (again: the other way). Cells are text.
 *
 * Rows hold only the columns in view (plus one either side): the header keeps
 * every column, each cell says its place with aria-colindex, and the grid its
 * count with aria-colcount, so assistive technology sees the whole table.
 */

import type { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import {
  cellText,
  delta,
  formatDelta,
  IExperimentColumn
} from '../experiments';
import type { ExperimentsModel } from '../experimentsModel';
import { IRunSummary } from '../types';

export const ROW_HEIGHT = 26;
// Rows kept beyond each edge of the view. Few: every row in the DOM is styled,
// laid out and painted again when a fast scroll brings it new text.
const OVERSCAN = 1;
// Columns kept beyond each side of the view.
const COLUMN_OVERSCAN = 1;
// Pages are asked for this many rows ahead of the viewport (scrolling down or up).
const PREFETCH = 100;
const SELECT_WIDTH = 52;

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

const Row = React.memo(function Row(props: {
  index: number;
  run: IRunSummary | undefined;
  columns: IExperimentColumn[];
  /** The columns held: `columns[from, to)`, after `offset` pixels left out. */
  from: number;
  to: number;
  offset: number;
  baseline: IRunSummary | null;
  selected: boolean;
  active: boolean;
  /** The grouping column's key when this row starts a group (it shows the value). */
  groupKey: string | null;
  /** The grouping column's key on every row (null: not grouped). */
  grouped: string | null;
  width: number;
  onToggle: (run: IRunSummary) => void;
  onActivate: (index: number) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { run, columns, index, trans } = props;
  const style: React.CSSProperties = {
    transform: `translateY(${index * ROW_HEIGHT}px)`,
    width: props.width
  };
  const classes = ['jp-dotnb-XRow'];
  if (props.active) {
    classes.push('jp-mod-active');
  }
  if (props.selected) {
    classes.push('jp-mod-selected');
  }
  if (run && props.baseline?.id === run.id) {
    classes.push('jp-mod-baseline');
  }
  // A row whose page is loading keeps the shape of a loaded one (empty cells), so
  // that its elements are reused when the run arrives.
  if (!run) {
    classes.push('jp-mod-loading');
  }
  if (props.groupKey !== null) {
    classes.push('jp-mod-groupStart');
  }
  const label = run
    ? trans.__('Select run #%1', run.number)
    : trans.__('Loading…');
  return (
    <div
      role="row"
      id={run ? `jp-dotnb-xrow-${run.id}` : undefined}
      aria-rowindex={index + 2}
      aria-selected={props.selected}
      aria-busy={run ? undefined : true}
      className={classes.join(' ')}
      style={style}
      data-run-id={run?.id}
      onClick={() => props.onActivate(index)}
    >
      <div
        role="gridcell"
        aria-colindex={1}
        className="jp-dotnb-XCell jp-dotnb-XSelect"
        style={{ width: SELECT_WIDTH }}
      >
        <input
          type="checkbox"
          tabIndex={-1}
          aria-label={label}
          title={label}
          disabled={!run}
          checked={props.selected}
          onChange={() => run && props.onToggle(run)}
        />
        {run && props.baseline?.id === run.id && (
          <span className="jp-dotnb-XBaselineMark" title={trans.__('baseline')}>
            {trans.__('base')}
          </span>
        )}
      </div>
      {columns.slice(props.from, props.to).map((column, i) => {
        // Within a group, the grouping column is shown on its first row only.
        const hidden = column.key === props.grouped && props.groupKey === null;
        const text = run && !hidden ? cellText(run, column) : '';
        const change = run ? delta(run, props.baseline, column) : null;
        return (
          <div
            key={column.key}
            role="gridcell"
            aria-colindex={props.from + i + 2}
            className={`jp-dotnb-XCell ${column.numeric ? 'jp-mod-numeric' : ''} jp-dotnb-XCol-${column.kind}`}
            style={
              i === 0 && props.offset
                ? { width: column.width, marginLeft: props.offset }
                : { width: column.width }
            }
            title={text}
          >
            {text}
            {change !== null && change !== 0 && (
              <span
                className={`jp-dotnb-XDelta ${change > 0 ? 'jp-mod-up' : 'jp-mod-down'}`}
              >
                {formatDelta(change)}
              </span>
            )}
          </div>
        );
      })}
    </div>
  );
});

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
  const [scrollTop, setScrollTop] = React.useState(0);
  const [height, setHeight] = React.useState(props.initialHeight ?? 500);
  const [scrollLeft, setScrollLeft] = React.useState(0);
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

  // A new sort or filter starts at the top.
  const generation = `${model.sort.key}|${model.sort.order}|${model.filters.join('\n')}|${model.query}|${model.notebook}|${model.group}`;
  React.useEffect(() => {
    setActive(0);
    setScrollTop(0);
    if (scroller.current) {
      scroller.current.scrollTop = 0;
    }
  }, [generation]);

  const first = Math.max(0, Math.floor(scrollTop / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(
    total - 1,
    Math.ceil((scrollTop + height) / ROW_HEIGHT) + OVERSCAN
  );
  React.useEffect(() => {
    model.ensureRows(first - PREFETCH, last + PREFETCH);
  }, [model, first, last, total]);
  const onToggle = React.useCallback(
    (run: IRunSummary) => model.toggleSelected(run),
    [model]
  );

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

  // Rows are keyed by slot, not by run: a row scrolled out is reused for the one
  // scrolled in (its text and position change, its elements stay), which costs far
  // less than creating and removing a row's elements on every frame of a fling.
  const pool = Math.ceil(height / ROW_HEIGHT) + 2 * OVERSCAN + 2;
  const { from, to, offset } = columnWindow(columns, scrollLeft, viewWidth);
  const rows: JSX.Element[] = [];
  for (let i = first; i <= last; i++) {
    const run = model.rowAt(i);
    rows.push(
      <Row
        key={i % pool}
        index={i}
        run={run}
        columns={columns}
        from={from}
        to={to}
        offset={offset}
        baseline={model.baseline}
        selected={!!run && model.isSelected(run.id)}
        active={i === active}
        groupKey={model.startsGroup(i) ? model.group : null}
        grouped={model.group}
        width={width}
        onToggle={onToggle}
        onActivate={setActive}
        trans={trans}
      />
    );
  }

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
        setScrollTop(event.currentTarget.scrollTop);
        setScrollLeft(event.currentTarget.scrollLeft);
      }}
    >
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
            aria-sort={sortLabel(column, model.sort)}
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
              {model.sort.key === column.key && (
                <span aria-hidden="true">
                  {model.sort.order === 'asc' ? ' ▲' : ' ▼'}
                </span>
              )}
            </button>
          </div>
        ))}
      </div>
      <div
        className="jp-dotnb-XBody"
        role="rowgroup"
        style={{ height: total * ROW_HEIGHT, width }}
      >
        {rows}
      </div>
    </div>
  );
}
