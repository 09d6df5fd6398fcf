/**
 * The virtualized run list: only the rows in view (plus a few) are in the DOM,
 * so 10,000 loaded runs scroll as fast as 10. Pages load when the "more" row
 * comes into view. Keyboard: a listbox with an active descendant — arrows,
 * Home/End, Enter opens, Space selects for compare.
 */

import * as React from 'react';

import type { RunsModel } from '../model';
import { Row, rowOffsets, SectionId, visibleRange } from '../runListState';
import { RunRow } from './RunRow';

export interface IRunListProps {
  model: RunsModel;
  rows: Row[];
  activeId: string | null;
  onOpen: (id: string) => void;
  /** Initial viewport height before the first measurement (tests, first paint). */
  initialHeight?: number;
}

function MoreRow(props: {
  section: SectionId;
  loading: boolean;
  onVisible: (section: SectionId) => void;
}): JSX.Element {
  const { section, onVisible } = props;
  React.useEffect(() => {
    onVisible(section);
  }, [section, onVisible]);
  return (
    <div className="jp-dotnb-More">
      {props.loading ? 'Loading…' : ''}
      {!props.loading && (
        <button
          type="button"
          className="jp-dotnb-LinkButton"
          onClick={() => onVisible(section)}
        >
          Load more
        </button>
      )}
    </div>
  );
}

export function RunList(props: IRunListProps): JSX.Element {
  const { model, rows } = props;
  const scroller = React.useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = React.useState(0);
  const [height, setHeight] = React.useState(props.initialHeight ?? 600);
  const [focusId, setFocusId] = React.useState<string | null>(null);
  const offsets = React.useMemo(() => rowOffsets(rows), [rows]);
  const now = Date.now();

  React.useEffect(() => {
    const node = scroller.current;
    if (!node || typeof ResizeObserver === 'undefined') {
      return;
    }
    const observer = new ResizeObserver(() => {
      if (node.clientHeight > 0) {
        setHeight(node.clientHeight);
      }
    });
    observer.observe(node);
    return () => observer.disconnect();
  }, []);

  const onMore = React.useCallback(
    (section: SectionId) => {
      void model.loadMore(section);
    },
    [model]
  );

  const runIndexes = React.useMemo(
    () => rows.flatMap((row, i) => (row.type === 'run' ? [i] : [])),
    [rows]
  );
  const focusIndex = focusId
    ? rows.findIndex(row => row.type === 'run' && row.run.id === focusId)
    : -1;

  const scrollIntoView = (index: number) => {
    const node = scroller.current;
    if (!node) {
      return;
    }
    const top = offsets[index];
    const bottom = offsets[index + 1];
    if (top < node.scrollTop) {
      node.scrollTop = top;
    } else if (bottom > node.scrollTop + node.clientHeight) {
      node.scrollTop = bottom - node.clientHeight;
    }
  };

  const moveFocus = (index: number) => {
    const row = rows[index];
    if (row?.type === 'run') {
      setFocusId(row.run.id);
      scrollIntoView(index);
    }
  };

  const onKeyDown = (event: React.KeyboardEvent) => {
    if (!runIndexes.length) {
      return;
    }
    const at = runIndexes.indexOf(focusIndex);
    let target: number | null = null;
    switch (event.key) {
      case 'ArrowDown':
        target = runIndexes[Math.min(runIndexes.length - 1, at + 1)];
        break;
      case 'ArrowUp':
        target = runIndexes[Math.max(0, at < 0 ? 0 : at - 1)];
        break;
      case 'Home':
        target = runIndexes[0];
        break;
      case 'End':
        target = runIndexes[runIndexes.length - 1];
        break;
      case 'PageDown':
        target =
          runIndexes[Math.min(runIndexes.length - 1, Math.max(0, at) + 10)];
        break;
      case 'PageUp':
        target = runIndexes[Math.max(0, at - 10)];
        break;
      case 'Enter':
        if (focusId) {
          props.onOpen(focusId);
        }
        break;
      case ' ':
        if (focusId) {
          model.toggleSelected(focusId);
        }
        break;
      default:
        return;
    }
    event.preventDefault();
    if (target !== null && target !== undefined) {
      moveFocus(target);
    }
  };

  const [first, last] = visibleRange(offsets, scrollTop, height);
  const selection = model.selection;
  const currentPath = model.currentNotebook;
  const items: JSX.Element[] = [];
  for (let i = first; i < last; i++) {
    const row = rows[i];
    const style: React.CSSProperties = {
      position: 'absolute',
      top: offsets[i],
      height: offsets[i + 1] - offsets[i],
      left: 0,
      right: 0
    };
    let content: JSX.Element;
    switch (row.type) {
      case 'header':
        content = (
          <div className="jp-dotnb-SectionHeader" role="presentation">
            <span className="jp-dotnb-SectionHeader-label" title={row.label}>
              {row.label}
            </span>
            <span className="jp-dotnb-SectionHeader-detail">{row.detail}</span>
          </div>
        );
        break;
      case 'run':
        content = (
          <RunRow
            run={row.run}
            domId={`dotnb-run-${row.run.id}`}
            showNotebook={row.run.notebook !== currentPath}
            selected={selection.includes(row.run.id)}
            focused={row.run.id === focusId}
            active={row.run.id === props.activeId}
            onOpen={id => {
              setFocusId(id);
              props.onOpen(id);
            }}
            onToggle={id => model.toggleSelected(id)}
            now={now}
          />
        );
        break;
      case 'more':
        content = (
          <MoreRow
            section={row.section}
            loading={row.loading}
            onVisible={onMore}
          />
        );
        break;
      default:
        content = <div className="jp-dotnb-Note">{row.text}</div>;
    }
    items.push(
      <div key={row.key} style={style}>
        {content}
      </div>
    );
  }
  return (
    <div
      className="jp-dotnb-List"
      ref={scroller}
      role="listbox"
      aria-label="Runs"
      aria-multiselectable={true}
      aria-activedescendant={focusId ? `dotnb-run-${focusId}` : undefined}
      tabIndex={0}
      onKeyDown={onKeyDown}
      onFocus={() => {
        if (!focusId && runIndexes.length) {
          moveFocus(runIndexes[0]);
        }
      }}
      onScroll={event =>
        setScrollTop((event.target as HTMLDivElement).scrollTop)
      }
    >
      <div
        style={{ position: 'relative', height: offsets[offsets.length - 1] }}
      >
        {items}
      </div>
    </div>
  );
}
