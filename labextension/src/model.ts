/**
 * The Runs panel's model: paged run lists (the current notebook's, then all),
 * filters and sort, selection for compare, a manifest cache, and live updates
 * from the API's `events` long poll.
 */

import { ISignal, Signal } from '@lumino/signaling';

import { ApiError, DotnbApi } from './api';
import { author } from './format';
import {
  DEFAULT_SORT,
  EMPTY_FILTER,
  EMPTY_SECTION,
  IRunFilter,
  IRunSort,
  ISectionState,
  Row,
  SectionId,
  buildRows,
  isServerOrder,
  matchesFilter,
  mergeRuns
} from './runListState';
import { IRunManifest, IRunSummary } from './types';

/** Runs per request: the API's maximum page. */
export const PAGE_SIZE = 200;
/** Pages loaded at most for a client-side sort (20,000 runs a section). */
const MAX_SORT_PAGES = 100;
const MANIFEST_CACHE = 50;

function message(error: unknown): string {
  if (error instanceof ApiError) {
    return error.message;
  }
  return error instanceof Error ? error.message : String(error);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export class RunsModel {
  constructor(readonly api: DotnbApi) {}

  /** Emitted whenever anything shown in the list changed. */
  get changed(): ISignal<this, void> {
    return this._changed;
  }

  /** Runs added or updated on the server (live), after the lists took them in. */
  get runsUpdated(): ISignal<this, IRunSummary[]> {
    return this._runsUpdated;
  }

  get filter(): IRunFilter {
    return this._filter;
  }

  get sort(): IRunSort {
    return this._sort;
  }

  get currentNotebook(): string | null {
    return this._currentPath;
  }

  get metricNames(): string[] {
    return this._metricNames;
  }

  /** Every `user@host` seen in a loaded run, sorted (the author filter's choices). */
  get authors(): string[] {
    return Array.from(this._authors).sort();
  }

  /** Whether the live connection (events long poll) is up. */
  get live(): boolean {
    return this._live;
  }

  /** The error of the last failed live poll, if the connection is down. */
  get liveError(): string | null {
    return this._liveError;
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Ids selected for compare, in the order they were selected (at most 2). */
  get selection(): string[] {
    return this._selection;
  }

  /** True while a client-side sort waits for every page. */
  get loadingAll(): boolean {
    return this._loadingAll;
  }

  /** No run at all in the store (drives the empty state). */
  get storeEmpty(): boolean {
    return (
      this._others.loaded &&
      !this._others.runs.length &&
      !this._others.next &&
      !this._filterActive()
    );
  }

  get rows(): Row[] {
    if (this._rows === null) {
      this._rows = buildRows(
        { path: this._currentPath, state: this._current },
        this._others,
        this._sort
      );
    }
    return this._rows;
  }

  section(id: SectionId): ISectionState {
    return id === 'current' ? this._current : this._others;
  }

  /** A loaded summary by id, if any list holds it. */
  summary(id: string): IRunSummary | undefined {
    return (
      this._current.runs.find(r => r.id === id) ??
      this._others.runs.find(r => r.id === id)
    );
  }

  setCurrentNotebook(path: string | null): void {
    if (path === this._currentPath) {
      return;
    }
    this._currentPath = path;
    this._current = { ...EMPTY_SECTION };
    this._emit();
    if (path) {
      void this._loadFirst('current');
    }
    void this._loadMetricNames();
  }

  setFilter(filter: Partial<IRunFilter>): void {
    const next = { ...this._filter, ...filter };
    if (
      next.text === this._filter.text &&
      next.status === this._filter.status &&
      next.kind === this._filter.kind &&
      next.author === this._filter.author
    ) {
      return;
    }
    this._filter = next;
    void this.refresh();
  }

  setSort(sort: IRunSort): void {
    this._sort = sort;
    this._emit();
    if (!isServerOrder(sort)) {
      void this._loadEverything();
    }
  }

  toggleSelected(id: string): void {
    if (this._selection.includes(id)) {
      this._selection = this._selection.filter(s => s !== id);
    } else {
      this._selection = [...this._selection, id].slice(-2);
    }
    this._emit();
  }

  clearSelection(): void {
    this._selection = [];
    this._emit();
  }

  /** Reload the first page of every section (filters changed, or on demand). */
  async refresh(): Promise<void> {
    this._generation += 1;
    this._current = { ...EMPTY_SECTION };
    this._others = { ...EMPTY_SECTION };
    this._emit();
    const loads = [this._loadFirst('others')];
    if (this._currentPath) {
      loads.push(this._loadFirst('current'));
    }
    void this._loadMetricNames();
    await Promise.all(loads);
    if (!isServerOrder(this._sort)) {
      await this._loadEverything();
    }
  }

  /** Load the next page of a section (the list's "more" row came into view). */
  async loadMore(id: SectionId): Promise<void> {
    const state = this.section(id);
    if (state.loading || !state.next) {
      return;
    }
    await this._loadPage(id, state.next);
  }

  /** A run's manifest (with lineage code), cached until the run changes. */
  async manifest(id: string): Promise<IRunManifest> {
    const cached = this._manifests.get(id);
    if (cached) {
      return cached;
    }
    const manifest = await this.api.run(id);
    this._manifests.set(manifest.id, manifest);
    if (this._manifests.size > MANIFEST_CACHE) {
      const oldest = this._manifests.keys().next().value;
      if (oldest !== undefined) {
        this._manifests.delete(oldest);
      }
    }
    return manifest;
  }

  /** Start the lists and the live connection. */
  async start(): Promise<void> {
    // Take the change cursor before the first pages: a run recorded in between
    // then arrives as an event instead of being missed.
    let cursor: number | null = null;
    try {
      cursor = (await this.api.events(null, this._abort.signal)).cursor;
      // The server answered: the panel is live now, not when the first long
      // poll returns (up to the server's events timeout when nothing happens).
      this._setLive(true, null);
    } catch (error) {
      this._setLive(false, message(error));
    }
    await this.refresh();
    void this._poll(cursor);
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this._disposed = true;
    this._abort.abort();
    Signal.clearData(this);
  }

  // -- loading -------------------------------------------------------------

  private _filterActive(): boolean {
    return !!(
      this._filter.text.trim() ||
      this._filter.status ||
      this._filter.kind ||
      this._filter.author
    );
  }

  private _query(id: SectionId, before: string | null) {
    return {
      notebook: id === 'current' ? this._currentPath : null,
      kind: this._filter.kind,
      status: this._filter.status,
      q: this._filter.text.trim(),
      author: this._filter.author,
      limit: PAGE_SIZE,
      before
    };
  }

  /** Remember who recorded these runs: the author filter offers them. */
  private _noteAuthors(runs: IRunSummary[]): void {
    for (const run of runs) {
      const who = author(run);
      if (who) {
        this._authors.add(who);
      }
    }
  }

  private _set(id: SectionId, state: ISectionState): void {
    if (id === 'current') {
      this._current = state;
    } else {
      this._others = state;
    }
    this._emit();
  }

  private _loadFirst(id: SectionId): Promise<void> {
    return this._loadPage(id, null);
  }

  private async _loadPage(id: SectionId, before: string | null): Promise<void> {
    const generation = this._generation;
    const path = this._currentPath;
    this._set(id, { ...this.section(id), loading: true, error: null });
    try {
      const page = await this.api.runs(
        this._query(id, before),
        this._abort.signal
      );
      this._noteAuthors(page.runs);
      // A newer refresh replaces every section; a change of notebook replaces only
      // 'current' (the others' query does not depend on it), so 'others' must
      // still take its page, or it would stay "Loading…" for good.
      if (
        generation !== this._generation ||
        (id === 'current' && path !== this._currentPath)
      ) {
        return;
      }
      const state = this.section(id);
      this._set(id, {
        runs: before
          ? [...state.runs, ...page.runs]
          : mergeRuns(state.runs, page.runs),
        next: page.next,
        loading: false,
        error: null,
        loaded: true
      });
    } catch (error) {
      if (generation !== this._generation || this._disposed) {
        return;
      }
      this._set(id, {
        ...this.section(id),
        loading: false,
        loaded: true,
        error: message(error)
      });
    }
  }

  /** Every page of every section, for sort orders the server does not offer. */
  private async _loadEverything(): Promise<void> {
    const generation = this._generation;
    this._loadingAll = true;
    this._emit();
    try {
      for (const id of ['current', 'others'] as SectionId[]) {
        if (id === 'current' && !this._currentPath) {
          continue;
        }
        for (let i = 0; i < MAX_SORT_PAGES; i++) {
          const state = this.section(id);
          if (
            generation !== this._generation ||
            this._disposed ||
            !state.next
          ) {
            break;
          }
          await this._loadPage(id, state.next);
        }
      }
    } finally {
      this._loadingAll = false;
      this._emit();
    }
  }

  private async _loadMetricNames(): Promise<void> {
    try {
      const reply = await this.api.metricNames(this._currentPath);
      this._metricNames = reply.names;
      this._emit();
    } catch {
      // The sort menu then offers no metrics; the list itself reports errors.
    }
  }

  // -- live updates ----------------------------------------------------------

  private async _poll(cursor: number | null): Promise<void> {
    const signal = this._abort.signal;
    let backoff = 1000;
    while (!this._disposed) {
      try {
        if (cursor === null) {
          cursor = (await this.api.events(null, signal)).cursor;
          this._setLive(true, null);
          // Reconnected: whatever happened meanwhile is in the first pages.
          await this.refresh();
        }
        const reply = await this.api.events(cursor, signal);
        cursor = reply.cursor;
        this._setLive(true, null);
        backoff = 1000;
        if (reply.runs.length) {
          this._applyEvents(reply.runs);
        }
      } catch (error) {
        if (this._disposed) {
          return;
        }
        this._setLive(false, message(error));
        cursor = null;
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, 30000);
      }
    }
  }

  private _setLive(live: boolean, error: string | null): void {
    if (this._live !== live || this._liveError !== error) {
      this._live = live;
      this._liveError = error;
      this._emit();
    }
  }

  /** Take in runs the server reports as added or updated. */
  private _applyEvents(runs: IRunSummary[]): void {
    for (const run of runs) {
      this._manifests.delete(run.id);
    }
    this._noteAuthors(runs);
    if (this._filter.text.trim()) {
      // The server matches text against the code, which summaries lack: ask it.
      void this._mergeHead();
    } else {
      const keep = runs.filter(run => matchesFilter(run, this._filter));
      const drop = new Set(
        runs.filter(run => !matchesFilter(run, this._filter)).map(r => r.id)
      );
      const update = (
        state: ISectionState,
        mine: IRunSummary[]
      ): ISectionState => {
        const kept = drop.size
          ? state.runs.filter(r => !drop.has(r.id))
          : state.runs;
        return { ...state, runs: mergeRuns(kept, mine) };
      };
      if (this._currentPath) {
        const path = this._currentPath;
        this._current = update(
          this._current,
          keep.filter(r => r.notebook === path)
        );
      }
      this._others = update(this._others, keep);
      this._emit();
    }
    if (runs.some(r => r.kind === 'run')) {
      void this._loadMetricNames();
    }
    this._runsUpdated.emit(runs);
  }

  /** Merge the first page of each section into what is loaded. */
  private async _mergeHead(): Promise<void> {
    const generation = this._generation;
    for (const id of ['current', 'others'] as SectionId[]) {
      if (id === 'current' && !this._currentPath) {
        continue;
      }
      try {
        const page = await this.api.runs(
          this._query(id, null),
          this._abort.signal
        );
        if (generation !== this._generation) {
          return;
        }
        const state = this.section(id);
        this._set(id, { ...state, runs: mergeRuns(state.runs, page.runs) });
      } catch {
        // The next event or a manual refresh tries again.
      }
    }
  }

  private _emit(): void {
    this._rows = null;
    if (!this._disposed) {
      this._changed.emit();
    }
  }

  private _abort = new AbortController();
  private _authors = new Set<string>();
  private _changed = new Signal<this, void>(this);
  private _runsUpdated = new Signal<this, IRunSummary[]>(this);
  private _current: ISectionState = { ...EMPTY_SECTION };
  private _currentPath: string | null = null;
  private _disposed = false;
  private _filter: IRunFilter = { ...EMPTY_FILTER };
  private _generation = 0;
  private _live = false;
  private _liveError: string | null = null;
  private _loadingAll = false;
  private _manifests = new Map<string, IRunManifest>();
  private _metricNames: string[] = [];
  private _others: ISectionState = { ...EMPTY_SECTION };
  private _rows: Row[] | null = null;
  private _selection: string[] = [];
  private _sort: IRunSort = DEFAULT_SORT;
}
