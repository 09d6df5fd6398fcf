import { describe, expect, it } from 'vitest';

import {
  buildRows,
  EMPTY_SECTION,
  matchesFilter,
  mergeRuns,
  parseSortKey,
  rowAt,
  rowOffsets,
  sortKey,
  sortRuns,
  visibleRange
} from '../src/runListState';
import { summary } from './fixtures';

const loaded = (runs = [summary(1)], next: string | null = null) => ({
  ...EMPTY_SECTION,
  runs,
  next,
  loaded: true
});

describe('run list logic', () => {
  it('merges live updates: replaces known runs, inserts new ones in order', () => {
    const existing = [summary(3), summary(1)];
    const merged = mergeRuns(existing, [
      summary(2),
      summary(3, { status: 'error' })
    ]);
    expect(merged.map(r => r.number)).toEqual([3, 2, 1]);
    expect(merged[0].status).toBe('error');
    expect(mergeRuns(existing, [])).toBe(existing);
  });

  it('sorts by duration and by a metric, missing values last', () => {
    const runs = [
      summary(1, { duration_s: 5 }),
      summary(2, { duration_s: null, metrics: {} }),
      summary(3, { duration_s: 1, metrics: { acc: 0.9 } })
    ];
    expect(
      sortRuns(runs, parseSortKey('duration:desc')).map(r => r.number)
    ).toEqual([1, 3, 2]);
    expect(
      sortRuns(runs, parseSortKey('duration:asc')).map(r => r.number)
    ).toEqual([3, 1, 2]);
    expect(
      sortRuns(runs, parseSortKey('metric:desc:acc')).map(r => r.number)
    ).toEqual([3, 1, 2]);
    expect(sortRuns(runs, parseSortKey('time:asc')).map(r => r.number)).toEqual(
      [1, 2, 3]
    );
    expect(sortKey(parseSortKey('metric:asc:a:b'))).toBe('metric:asc:a:b');
  });

  it('matches filters on status, kind, name and params', () => {
    const run = summary(1, { name: 'Train big', params: { opt: 'adam' } });
    const filter = { text: '', status: '' as const, kind: '' as const };
    expect(matchesFilter(run, filter)).toBe(true);
    expect(matchesFilter(run, { ...filter, status: 'error' })).toBe(false);
    expect(matchesFilter(run, { ...filter, kind: 'checkpoint' })).toBe(false);
    expect(matchesFilter(run, { ...filter, text: 'BIG' })).toBe(true);
    expect(matchesFilter(run, { ...filter, text: 'adam' })).toBe(true);
    expect(matchesFilter(run, { ...filter, text: 'sgd' })).toBe(false);
  });

  it("lists the current notebook's runs first, then the others without them", () => {
    const others = loaded([
      summary(9, { notebook: 'other.ipynb' }),
      summary(2),
      summary(1)
    ]);
    const rows = buildRows(
      { path: 'nb.ipynb', state: loaded([summary(2), summary(1)]) },
      others,
      parseSortKey('time:desc')
    );
    expect(rows.map(r => r.type)).toEqual([
      'header',
      'run',
      'run',
      'header',
      'run'
    ]);
    expect(rows[0]).toMatchObject({ label: 'nb.ipynb', detail: '2' });
    expect(rows[4]).toMatchObject({ run: { notebook: 'other.ipynb' } });
  });

  it('hides an empty "other notebooks" section and pages with a more row', () => {
    const current = { path: 'nb.ipynb', state: loaded([summary(2)], 'cursor') };
    const rows = buildRows(
      current,
      loaded([summary(2)]),
      parseSortKey('time:desc')
    );
    expect(rows.map(r => r.type)).toEqual(['header', 'run', 'more']);
    expect(rows[0]).toMatchObject({ detail: '1+' });
    const none = buildRows(
      { path: null, state: EMPTY_SECTION },
      loaded([]),
      parseSortKey('')
    );
    expect(none.map(r => r.type)).toEqual(['header', 'note']);
  });

  it('positions 10,000 rows and renders only a window of them', () => {
    const runs = Array.from({ length: 10000 }, (_, i) => summary(10000 - i));
    const rows = buildRows(
      { path: null, state: EMPTY_SECTION },
      loaded(runs),
      parseSortKey('')
    );
    const offsets = rowOffsets(rows);
    expect(offsets[offsets.length - 1]).toBe(28 + 10000 * 52);
    expect(rowAt(offsets, 0)).toBe(0);
    expect(rowAt(offsets, 28)).toBe(1);
    expect(rowAt(offsets, 28 + 52 * 5000 + 1)).toBe(5001);
    const [first, last] = visibleRange(offsets, 52 * 5000, 600);
    expect(last - first).toBeLessThan(30);
    expect(first).toBeGreaterThan(4990);
  });
});
