/**
 * The run list's pure logic: filters, sort orders, merging pages and live
 * updates, and the flat row list the virtualized view renders.
 */

import { author } from './format';
import { IRunSummary, RunKind, RunStatus } from './types';

export interface IRunFilter {
  /** Free text; the server matches name, params and code. */
  text: string;
  status: RunStatus | '';
  kind: RunKind | '';
  /** `user@host`, or `user` for any host ('' for anyone); matched by the server. */
  author: string;
}

export const EMPTY_FILTER: IRunFilter = {
  text: '',
  status: '',
  kind: '',
  author: ''
};

/** Whether `run` was recorded by `who` (`user` on any host, or `user@host`), as the server matches. */
export function byAuthor(run: IRunSummary, who: string): boolean {
  return !who || run.user === who || author(run) === who;
}

/**
 * The author filter's choices: any author, then each `user@host` seen, and
 * `user` alone ("any host") for a user seen on several hosts. The current
 * choice stays listed even when no loaded run has it.
 */
export function authorOptions(
  seen: Iterable<string>,
  current: string
): { value: string; label: string }[] {
  const authors = new Set(seen);
  const hosts = new Map<string, number>();
  for (const who of authors) {
    const at = who.lastIndexOf('@');
    if (at > 0) {
      const user = who.slice(0, at);
      hosts.set(user, (hosts.get(user) ?? 0) + 1);
    }
  }
  const values = new Set<string>(authors);
  for (const [user, count] of hosts) {
    if (count > 1) {
      values.add(user);
    }
  }
  if (current) {
    values.add(current);
  }
  const options = Array.from(values)
    .sort((a, b) => a.localeCompare(b))
    .map(value => ({
      value,
      label:
        hosts.get(value) && !authors.has(value) ? `${value} (any host)` : value
    }));
  return [{ value: '', label: 'Any author' }, ...options];
}

export interface IRunSort {
  by: 'time' | 'duration' | 'metric';
  descending: boolean;
  /** The metric name when `by` is 'metric'. */
  metric?: string;
}

export const DEFAULT_SORT: IRunSort = { by: 'time', descending: true };

/** The server returns runs newest first; any other order needs every page. */
export function isServerOrder(sort: IRunSort): boolean {
  return sort.by === 'time' && sort.descending;
}

/** Encode a sort as one string, for a <select>. */
export function sortKey(sort: IRunSort): string {
  const dir = sort.descending ? 'desc' : 'asc';
  return sort.by === 'metric'
    ? `metric:${dir}:${sort.metric}`
    : `${sort.by}:${dir}`;
}

export function parseSortKey(key: string): IRunSort {
  const [by, dir, ...rest] = key.split(':');
  const descending = dir !== 'asc';
  if (by === 'metric' && rest.length) {
    return { by, descending, metric: rest.join(':') };
  }
  if (by === 'duration') {
    return { by, descending };
  }
  return { by: 'time', descending };
}

/**
 * Whether a run summary passes the filter, as far as the client can tell.
 * The server also matches the text against the cell code, which summaries do
 * not carry: callers refetch rather than trust this when `text` is set.
 */
export function matchesFilter(run: IRunSummary, filter: IRunFilter): boolean {
  if (filter.status && run.status !== filter.status) {
    return false;
  }
  if (filter.kind && run.kind !== filter.kind) {
    return false;
  }
  if (!byAuthor(run, filter.author)) {
    return false;
  }
  const text = filter.text.trim().toLowerCase();
  if (text) {
    const haystack = `${run.name ?? ''}\n${JSON.stringify(run.params ?? {})}`;
    return haystack.toLowerCase().includes(text);
  }
  return true;
}

/** Runs by id, newest first (ULIDs sort by time). */
function byIdDesc(a: IRunSummary, b: IRunSummary): number {
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/**
 * Merge `incoming` summaries into `existing` (newest first): a run already
 * present is replaced by its newer summary, new runs are inserted in order.
 * Returns `existing` itself when nothing changed.
 */
export function mergeRuns(
  existing: IRunSummary[],
  incoming: IRunSummary[]
): IRunSummary[] {
  if (!incoming.length) {
    return existing;
  }
  const byId = new Map<string, IRunSummary>();
  for (const run of existing) {
    byId.set(run.id, run);
  }
  for (const run of incoming) {
    byId.set(run.id, run);
  }
  return Array.from(byId.values()).sort(byIdDesc);
}

function sortValue(run: IRunSummary, sort: IRunSort): number | string | null {
  switch (sort.by) {
    case 'duration':
      return run.duration_s ?? null;
    case 'metric': {
      const v = sort.metric ? run.metrics?.[sort.metric] : undefined;
      return typeof v === 'number' ? v : null;
    }
    default:
      return run.id;
  }
}

/** A sorted copy; runs without a value for the sort key go last. */
export function sortRuns(runs: IRunSummary[], sort: IRunSort): IRunSummary[] {
  if (isServerOrder(sort)) {
    return runs;
  }
  const sign = sort.descending ? -1 : 1;
  return runs
    .map((run, index) => ({ run, index, key: sortValue(run, sort) }))
    .sort((a, b) => {
      if (a.key === null || b.key === null) {
        return a.key === b.key ? a.index - b.index : a.key === null ? 1 : -1;
      }
      if (a.key < b.key) {
        return -sign;
      }
      if (a.key > b.key) {
        return sign;
      }
      return a.index - b.index;
    })
    .map(entry => entry.run);
}

/** One list section: runs of the current notebook, or of the others. */
export interface ISectionState {
  runs: IRunSummary[];
  /** The API's paging cursor; null once every page is loaded. */
  next: string | null;
  loading: boolean;
  error: string | null;
  /** False until the first page arrived. */
  loaded: boolean;
}

export const EMPTY_SECTION: ISectionState = {
  runs: [],
  next: null,
  loading: false,
  error: null,
  loaded: false
};

export type Row =
  | { type: 'header'; key: string; label: string; detail: string }
  | { type: 'run'; key: string; run: IRunSummary }
  | { type: 'more'; key: string; section: SectionId; loading: boolean }
  | { type: 'note'; key: string; text: string };

export type SectionId = 'current' | 'others';

/** Row heights in pixels: the virtual list positions rows from these. */
export const ROW_HEIGHT: Record<Row['type'], number> = {
  header: 28,
  run: 52,
  more: 32,
  note: 32
};

/**
 * The flat row list: the current notebook's runs first, then the others
 * (without the current notebook's, which the first section already shows).
 */
export function buildRows(
  current: { path: string | null; state: ISectionState },
  others: ISectionState,
  sort: IRunSort
): Row[] {
  const rows: Row[] = [];
  const section = (
    id: SectionId,
    label: string,
    state: ISectionState,
    keep: (run: IRunSummary) => boolean
  ) => {
    const runs = sortRuns(state.runs.filter(keep), sort);
    const settled =
      state.loaded && !state.loading && !state.next && !state.error;
    if (id === 'others' && current.path && settled && !runs.length) {
      return; // no other notebook has runs: no empty second section
    }
    const count = state.next ? `${runs.length}+` : `${runs.length}`;
    rows.push({
      type: 'header',
      key: `h-${id}`,
      label,
      detail: state.loaded ? count : ''
    });
    for (const run of runs) {
      rows.push({ type: 'run', key: run.id, run });
    }
    if (state.error) {
      rows.push({ type: 'note', key: `e-${id}`, text: state.error });
    } else if (state.next || state.loading || !state.loaded) {
      rows.push({
        type: 'more',
        key: `m-${id}`,
        section: id,
        loading: state.loading || !state.loaded
      });
    } else if (!runs.length) {
      rows.push({ type: 'note', key: `n-${id}`, text: 'No runs' });
    }
  };
  if (current.path) {
    const path = current.path;
    section('current', path, current.state, () => true);
    section('others', 'Other notebooks', others, run => run.notebook !== path);
  } else {
    section('others', 'All runs', others, () => true);
  }
  return rows;
}

/** Prefix sums of row heights: offsets[i] is row i's top, offsets[n] the total. */
export function rowOffsets(rows: Row[]): number[] {
  const offsets = new Array<number>(rows.length + 1);
  offsets[0] = 0;
  for (let i = 0; i < rows.length; i++) {
    offsets[i + 1] = offsets[i] + ROW_HEIGHT[rows[i].type];
  }
  return offsets;
}

/** Index of the row at pixel `y` (binary search over the offsets). */
export function rowAt(offsets: number[], y: number): number {
  let lo = 0;
  let hi = offsets.length - 2;
  if (hi < 0) {
    return 0;
  }
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (offsets[mid] <= y) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

/** The rows to render for a viewport, with `overscan` extra rows each side. */
export function visibleRange(
  offsets: number[],
  scrollTop: number,
  height: number,
  overscan = 6
): [number, number] {
  const n = offsets.length - 1;
  if (n <= 0) {
    return [0, 0];
  }
  const first = Math.max(0, rowAt(offsets, scrollTop) - overscan);
  const last = Math.min(n, rowAt(offsets, scrollTop + height) + 1 + overscan);
  return [first, last];
}
