/**
 * The Experiments view's state: which runs (one notebook or all), sorted and
 * filtered by the server (`GET table`), loaded a page at a time as rows come
 * into view; the columns discovered from the runs and those chosen; the
 * selection, the pinned baseline; tags and notes written from the table.
 */

import { ISignal, Signal } from '@lumino/signaling';

import type { DotnbApi, ITableQuery, TableGroup } from './api';
import {
  allColumns,
  DEFAULT_BUILTINS,
  IExperimentColumn,
  visibleColumns
} from './experiments';
import { IRunAnnotations, IRunSummary } from './types';

export const PAGE_SIZE = 200;
/**
 * Rows the charts draw when fewer than two runs are selected: the first rows
 * loaded. The pages holding them are never dropped, so scrolling the table
 * does not change (and redraw) a chart.
 */
export const CHART_ROWS = 500;
/**
 * Pages kept besides those around the view (and the chart's): the most
 * recently viewed, so a short scroll back finds its rows loaded. Every other
 * page is dropped, and fetched again when scrolled back to: the memory held
 * stays the same however many runs are scrolled through.
 */
export const CACHED_PAGES = 4;

export interface ISortState {
  key: string;
  order: 'asc' | 'desc';
}

export class ExperimentsModel {
  constructor(
    readonly api: Pick<DotnbApi, 'table' | 'annotate'>,
    options: { notebook?: string | null; defaultColumns?: string[] } = {}
  ) {
    this._notebook = options.notebook ?? null;
    this.defaultColumns = options.defaultColumns ?? DEFAULT_BUILTINS;
  }

  /** Builtin columns shown until the user chooses (the settings' `defaultColumns`). */
  defaultColumns: string[];

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** The notebook whose runs are shown; null: every notebook's. */
  get notebook(): string | null {
    return this._notebook;
  }
  get sort(): ISortState {
    return this._sort;
  }
  get filters(): string[] {
    return this._filters;
  }
  get tags(): string[] {
    return this._tags;
  }
  get query(): string {
    return this._q;
  }
  /** Rows the filters keep (null until the first page arrives). */
  get total(): number | null {
    return this._total;
  }
  get error(): string | null {
    return this._error;
  }
  get loading(): boolean {
    return this._inflight.size > 0;
  }
  /** Milliseconds the last page took, request to rows (for the status line and benches). */
  get lastLoadMs(): number | null {
    return this._lastLoadMs;
  }
  get columns(): IExperimentColumn[] {
    return this._all;
  }
  /** The columns shown (the same array until the columns change: rows memoize on it). */
  get visible(): IExperimentColumn[] {
    if (this._visible === null) {
      this._visible = visibleColumns(
        this._all,
        this._chosen,
        this.defaultColumns
      );
    }
    return this._visible;
  }
  get baseline(): IRunSummary | null {
    return this._baseline;
  }
  /** Selected runs, in the order they were selected. */
  get selection(): IRunSummary[] {
    return [...this._selected.values()];
  }
  isSelected(id: string): boolean {
    return this._selected.has(id);
  }

  /** The pages loaded (for tests and benches). */
  get loadedPages(): number[] {
    return [...this._pages.keys()].sort((a, b) => a - b);
  }

  /** The run at row `index`, if its page is loaded. */
  rowAt(index: number): IRunSummary | undefined {
    return this._pages.get(Math.floor(index / PAGE_SIZE))?.[index % PAGE_SIZE];
  }

  /**
   * The table's first rows, in order, up to `limit` (the charts' runs when
   * fewer than two are selected): those of the pages loaded from the first one
   * on, up to the first page not loaded. A page loaded further down for a
   * scroll never joins them, so scrolling does not change what a chart shows.
   */
  loadedRows(limit = CHART_ROWS): IRunSummary[] {
    const rows: IRunSummary[] = [];
    for (let page = 0; rows.length < limit; page++) {
      const got = this._pages.get(page);
      if (!got) {
        break;
      }
      rows.push(...got);
      if (got.length < PAGE_SIZE) {
        break; // the last page
      }
    }
    return rows.slice(0, limit);
  }

  /** Ask for the pages of the first `CHART_ROWS` rows not loaded or loading yet. */
  ensureChartRows(): void {
    const rows = Math.min(CHART_ROWS, this._total ?? 0);
    for (let page = 0; page * PAGE_SIZE < rows; page++) {
      if (!this._pages.has(page) && !this._inflight.has(page)) {
        void this._fetch(page, false);
      }
    }
  }

  setNotebook(notebook: string | null): Promise<void> {
    this._notebook = notebook;
    return this.reload();
  }

  setSort(key: string, order?: 'asc' | 'desc'): Promise<void> {
    const next =
      order ??
      (this._sort.key === key && this._sort.order === 'desc' ? 'asc' : 'desc');
    this._sort = { key, order: next };
    return this.reload();
  }

  addFilter(text: string): Promise<void> {
    const trimmed = text.trim();
    if (!trimmed || this._filters.includes(trimmed)) {
      return Promise.resolve();
    }
    this._filters = [...this._filters, trimmed];
    return this.reload().then(async () => {
      // A filter the server refused (unknown column, not a number) is taken
      // back; its message stays on screen.
      const refused = this._error;
      if (refused && this._filters.includes(trimmed)) {
        this._filters = this._filters.filter(f => f !== trimmed);
        await this.reload();
        this._error = refused;
        this._changed.emit();
      }
    });
  }

  /**
   * Swap filters in one reload (a brush on a chart replaces the filters of the
   * brush before it).  On a refusal every added filter is taken back.
   */
  replaceFilters(remove: string[], add: string[]): Promise<void> {
    const before = this._filters;
    const kept = before.filter(f => !remove.includes(f));
    this._filters = [...kept, ...add.filter(f => !kept.includes(f))];
    return this.reload().then(async () => {
      const refused = this._error;
      if (refused) {
        this._filters = kept;
        await this.reload();
        this._error = refused;
        this._changed.emit();
      }
    });
  }

  removeFilter(text: string): Promise<void> {
    this._filters = this._filters.filter(f => f !== text);
    return this.reload();
  }

  setTagFilter(tags: string[]): Promise<void> {
    this._tags = tags;
    return this.reload();
  }

  /** The column runs are grouped by (null: no groups). */
  get group(): TableGroup | null {
    return this._group;
  }

  setGroup(group: TableGroup | null): Promise<void> {
    this._group = group;
    return this.reload();
  }

  /**
   * Whether row `index` starts a group: its group value differs from the row
   * before (or that row is not loaded, or it is the first).
   */
  startsGroup(index: number): boolean {
    if (this._group === null) {
      return false;
    }
    const run = this.rowAt(index);
    const before = index > 0 ? this.rowAt(index - 1) : undefined;
    return (
      !run ||
      !before ||
      groupValue(run, this._group) !== groupValue(before, this._group)
    );
  }

  setQuery(q: string): Promise<void> {
    this._q = q;
    return this.reload();
  }

  /** Show these columns (keys), in this order; null: the defaults. */
  chooseColumns(keys: string[] | null): void {
    this._chosen = keys;
    this._visible = null;
    this._changed.emit();
  }

  /** Show or hide a column; one shown again goes last (the order is the user's). */
  toggleColumn(key: string): void {
    const current = this.visible.map(c => c.key);
    this.chooseColumns(
      current.includes(key) ? current.filter(k => k !== key) : [...current, key]
    );
  }

  /** Move a shown column one place earlier (-1) or later (1). */
  moveColumn(key: string, delta: -1 | 1): void {
    const keys = this.visible.map(c => c.key);
    const from = keys.indexOf(key);
    const to = from + delta;
    if (from < 0 || to < 0 || to >= keys.length) {
      return;
    }
    [keys[from], keys[to]] = [keys[to], keys[from]];
    this.chooseColumns(keys);
  }

  toggleSelected(run: IRunSummary): void {
    if (this._selected.has(run.id)) {
      this._selected.delete(run.id);
    } else {
      this._selected.set(run.id, run);
    }
    this._changed.emit();
  }

  clearSelection(): void {
    this._selected.clear();
    this._changed.emit();
  }

  /** Pin `run` as the baseline that deltas are shown against (null: unpin). */
  pin(run: IRunSummary | null): void {
    this._baseline = this._baseline?.id === run?.id ? null : run;
    this._changed.emit();
  }

  /** Load the first page again (and the columns), dropping every loaded page. */
  async reload(): Promise<void> {
    this._generation++;
    this._pages.clear();
    this._inflight.clear();
    this._firstWanted = this._lastWanted = 0;
    this._keptPage = -1;
    this._error = null;
    this._changed.emit();
    await this._fetch(0, true);
  }

  /**
   * Make sure rows `first`…`last` (those in and around the view) and row
   * `keep` (the active row) are loaded or loading; pages away from them are
   * dropped beyond `CACHED_PAGES`, least recently wanted first. Called on
   * every scroll event.
   */
  ensureRows(first: number, last: number, keep = -1): void {
    if (this._total === null) {
      return;
    }
    const end = Math.min(last, this._total - 1);
    this._firstWanted = Math.floor(Math.max(0, first) / PAGE_SIZE);
    this._lastWanted = Math.floor(end / PAGE_SIZE);
    this._keptPage = keep >= 0 ? Math.floor(keep / PAGE_SIZE) : -1;
    for (let page = this._firstWanted; page <= this._lastWanted; page++) {
      this._want(page);
    }
    if (this._keptPage >= 0 && keep < this._total) {
      this._want(this._keptPage);
    }
    this._trim();
  }

  /** Every row the filters keep, in order (the CSV export), a page at a time. */
  async allRows(): Promise<IRunSummary[]> {
    const rows: IRunSummary[] = [];
    for (let offset = 0; ; offset += 1000) {
      const page = await this.api.table({
        ...this._query(),
        offset,
        limit: 1000
      });
      rows.push(...page.runs);
      if (page.runs.length < 1000 || rows.length >= page.total) {
        return rows;
      }
    }
  }

  /** Tag (or untag) every selected run; the rows update in place. */
  async tagSelected(names: string[], remove = false): Promise<void> {
    const runs = this.selection;
    for (const run of runs) {
      const change = remove ? { untag: names } : { tag: names };
      this._apply(await this.api.annotate(run.id, change));
    }
    this._error = null; // an earlier refusal is not news any more
    this._changed.emit();
  }

  async setNote(runId: string, text: string): Promise<void> {
    this._apply(await this.api.annotate(runId, { note: text }));
    this._error = null;
    this._changed.emit();
  }

  /** Fetch `page` if it is not loaded; if it is, it becomes the most recently wanted. */
  private _want(page: number): void {
    const rows = this._pages.get(page);
    if (rows) {
      // The map's order is the pages' last use (oldest first): move it last.
      this._pages.delete(page);
      this._pages.set(page, rows);
    } else if (!this._inflight.has(page)) {
      void this._fetch(page, false);
    }
  }

  /** Whether `page` stays loaded whatever the cache holds. */
  private _needed(page: number): boolean {
    return (
      (page >= this._firstWanted && page <= this._lastWanted) ||
      page === this._keptPage ||
      page * PAGE_SIZE < CHART_ROWS
    );
  }

  /**
   * Drop the least recently wanted pages beyond `CACHED_PAGES` of those not
   * needed. Their runs go with them (and their formatted cell texts, kept per
   * run object); the selection and the baseline keep their own runs.
   */
  private _trim(): void {
    let spare = 0;
    for (const page of this._pages.keys()) {
      if (!this._needed(page)) {
        spare++;
      }
    }
    // Oldest first: the map's order is the pages' last use.
    for (const page of this._pages.keys()) {
      if (spare <= CACHED_PAGES) {
        break;
      }
      if (!this._needed(page)) {
        this._pages.delete(page);
        spare--;
      }
    }
  }

  private _apply(result: IRunAnnotations): void {
    // New objects, not edits: the grid's rows re-render when their run changes identity.
    const update = (run: IRunSummary) =>
      run.id === result.id
        ? { ...run, tags: result.tags, note: result.note }
        : run;
    this._pages.forEach((rows, page) =>
      this._pages.set(page, rows.map(update))
    );
    this._selected.forEach((run, id) => this._selected.set(id, update(run)));
    if (this._baseline) {
      this._baseline = update(this._baseline);
    }
  }

  private _query(): ITableQuery {
    return {
      notebook: this._notebook,
      filters: this._filters,
      tags: this._tags,
      q: this._q,
      sort: this._sort.key,
      order: this._sort.order,
      group: this._group
    };
  }

  private async _fetch(page: number, withColumns: boolean): Promise<void> {
    const generation = this._generation;
    this._inflight.add(page);
    const started = performance.now();
    try {
      const reply = await this.api.table({
        ...this._query(),
        offset: page * PAGE_SIZE,
        limit: PAGE_SIZE,
        columns: withColumns
      });
      if (generation !== this._generation) {
        return; // the sort or filters changed meanwhile
      }
      this._pages.set(page, reply.runs);
      this._total = reply.total;
      // Pages asked for during a fast scroll arrive after the view moved on.
      this._trim();
      if (reply.columns) {
        this._all = allColumns(reply.columns);
        this._visible = null;
      }
      this._lastLoadMs = performance.now() - started;
    } catch (error) {
      if (generation === this._generation) {
        this._error = (error as Error).message ?? String(error);
        if (page === 0) {
          this._total = 0;
        }
      }
    } finally {
      if (generation === this._generation) {
        this._inflight.delete(page);
        this._changed.emit();
      }
    }
  }

  private _notebook: string | null;
  private _sort: ISortState = { key: 'started', order: 'desc' };
  private _filters: string[] = [];
  private _tags: string[] = [];
  private _q = '';
  private _group: TableGroup | null = null;
  private _total: number | null = null;
  private _error: string | null = null;
  private _lastLoadMs: number | null = null;
  private _all: IExperimentColumn[] = allColumns({ params: [], metrics: [] });
  private _chosen: string[] | null = null;
  private _visible: IExperimentColumn[] | null = null;
  private _baseline: IRunSummary | null = null;
  private _selected = new Map<string, IRunSummary>();
  private _pages = new Map<number, IRunSummary[]>();
  private _inflight = new Set<number>();
  // The pages the last ensureRows wanted: first…last, and the active row's (-1: none).
  private _firstWanted = 0;
  private _lastWanted = 0;
  private _keptPage = -1;
  private _generation = 0;
  private _changed = new Signal<this, void>(this);
}

/** A run's value for grouping (a run without a name, or of no sweep, is in the group ''). */
export function groupValue(run: IRunSummary, group: TableGroup): string {
  if (group === 'sweep') {
    return (run.tags ?? []).filter(t => t.startsWith('sweep:')).sort()[0] ?? '';
  }
  return (group === 'notebook' ? run.notebook : run.name) ?? '';
}
