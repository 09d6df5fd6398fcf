/**
 * The Experiments view: its pure logic (columns, cells, deltas, CSV, N-run
 * comparison), its model against a fake `GET table`, its chart specs compiled
 * by the Vega versions JupyterLab ships, and its rendering (text only, ARIA
 * grid, keyboard).
 */

import { nullTranslator } from '@jupyterlab/translation';
import { act, fireEvent, render } from '@testing-library/react';
import * as vega from 'vega';
import { compile } from 'vega-lite';
import * as React from 'react';
import { describe, expect, it, vi } from 'vitest';

import type { ITableQuery } from '../src/api';
import { columnWindow } from '../src/components/ExperimentsGrid';
import { ExperimentsView } from '../src/components/ExperimentsView';
import {
  allColumns,
  cellText,
  compareRows,
  csvField,
  delta,
  formatDelta,
  toCsv,
  visibleColumns
} from '../src/experiments';
import {
  BRUSH,
  brushFilters,
  parallelBrushFilters,
  parallelRanges,
  parallelSpec,
  roundOutward,
  scatterSpec
} from '../src/experimentsChart';
import {
  CACHED_PAGES,
  CHART_ROWS,
  ExperimentsModel,
  groupValue,
  PAGE_SIZE
} from '../src/experimentsModel';
import { IRunAnnotations, IRunSummary, IRunTablePage } from '../src/types';
import { settle } from './fakes';
import { summary, XSS } from './fixtures';

const trans = nullTranslator.load('dotnb');

const runs: IRunSummary[] = [
  summary(1, { params: { lr: 0.1, opt: 'adam' }, metrics: { acc: 0.8 } }),
  summary(2, {
    params: { lr: 0.3 },
    metrics: { acc: 0.9, [XSS]: 2 },
    tags: ['baseline'],
    note: XSS
  }),
  summary(3, { params: { lr: 0.3, [XSS]: XSS }, metrics: { acc: 0.95 } })
];

const columns = allColumns({ params: ['lr', 'opt', XSS], metrics: ['acc'] });
const col = (key: string) => columns.find(c => c.key === key)!;

describe('experiments table logic', () => {
  it('has builtin, param and metric columns, defaults shown until chosen', () => {
    expect(columns.map(c => c.key).slice(-4)).toEqual([
      'param:lr',
      'param:opt',
      `param:${XSS}`,
      'metric:acc'
    ]);
    const shown = visibleColumns(columns, null).map(c => c.key);
    expect(shown).toContain('tags');
    expect(shown).not.toContain('notebook');
    expect(
      visibleColumns(columns, ['metric:acc', 'number', 'gone']).map(c => c.key)
    ).toEqual(['metric:acc', 'number']);
  });

  it('shows cells as text and deltas against a baseline', () => {
    expect(cellText(runs[1], col('tags'))).toBe('baseline');
    expect(cellText(runs[0], col('number'))).toBe('#1');
    expect(cellText(runs[0], col('param:opt'))).toBe('adam');
    expect(cellText(runs[1], col('param:opt'))).toBe('');
    expect(delta(runs[2], runs[0], col('metric:acc'))).toBeCloseTo(0.15);
    expect(delta(runs[0], runs[0], col('metric:acc'))).toBeNull();
    expect(delta(runs[1], runs[0], col('param:opt'))).toBeNull();
    expect(formatDelta(0.15)).toBe('+0.15');
    expect(formatDelta(-2)).toBe('−2');
  });

  it('exports CSV quoted and safe from formula injection', () => {
    expect(csvField('a,"b"')).toBe('"a,""b"""');
    expect(csvField('=HYPERLINK("x")')).toBe('"\'=HYPERLINK(""x"")"');
    expect(csvField('-1+2')).toBe("'-1+2");
    expect(csvField(-1.5)).toBe('-1.5');
    const csv = toCsv(
      [col('number'), col('param:lr'), col('metric:acc')],
      runs
    );
    expect(csv.split('\r\n')[0]).toBe('number,param:lr,metric:acc,id');
    expect(csv.split('\r\n')[1]).toBe(`1,0.1,0.8,${runs[0].id}`);
  });

  it('compares N runs, differences first', () => {
    const rows = compareRows(runs);
    expect(rows[0].differs).toBe(true);
    const lr = rows.find(r => r.name === 'lr')!;
    expect(lr.values).toEqual([0.1, 0.3, 0.3]);
    expect(compareRows([runs[1], runs[1]]).every(r => !r.differs)).toBe(true);
  });
});

/** A fake `GET table` over an array, sorting by a metric like the server. */
/** Ask for rows as the grid does while scrolling `from`…`to`, 40 rows in view. */
async function scrollThrough(
  model: ExperimentsModel,
  from: number,
  to: number,
  keep = -1
): Promise<void> {
  for (let top = from; top < to; top += 40) {
    model.ensureRows(top - 100, top + 140, keep);
    await settle(1);
  }
}

class FakeTableApi {
  rows: IRunSummary[];
  queries: ITableQuery[] = [];
  changes: unknown[] = [];
  constructor(n: number) {
    this.rows = Array.from({ length: n }, (_, i) =>
      summary(i + 1, { metrics: { acc: (i % 97) / 100 }, params: { lr: i } })
    );
  }
  async table(query: ITableQuery): Promise<IRunTablePage> {
    this.queries.push(query);
    if ((query.filters ?? []).some(f => f.startsWith('nope'))) {
      throw new Error(
        "filter 'nope > 1': no metric, param or column is called 'nope'"
      );
    }
    const rows = [...this.rows];
    if (query.sort === 'metric:acc') {
      rows.sort(
        (a, b) => (a.metrics.acc as number) - (b.metrics.acc as number)
      );
    }
    if (query.order !== 'asc') {
      rows.reverse();
    }
    if (query.group) {
      const key = query.group;
      // Stable: sorted within each group as above, groups in order.
      // As the server: groups in order, runs without one last.
      const value = (run: IRunSummary) => groupValue(run, key) || '\uffff';
      rows.sort((a, b) => value(a).localeCompare(value(b)));
    }
    const offset = query.offset ?? 0;
    return {
      total: rows.length,
      offset,
      runs: rows.slice(offset, offset + (query.limit ?? 100)),
      ...(query.columns
        ? { columns: { params: ['lr'], metrics: ['acc'] } }
        : {})
    };
  }
  async annotate(
    id: string,
    change: { tag: string[] } | { untag: string[] } | { note: string }
  ): Promise<IRunAnnotations> {
    this.changes.push([id, change]);
    return {
      id,
      tags: 'tag' in change ? change.tag : [],
      note: 'note' in change ? change.note : null,
      note_author: null,
      note_at: null,
      history: []
    };
  }
}

describe('experiments model', () => {
  it('loads pages as rows come into view and sorts on the server', async () => {
    const api = new FakeTableApi(1000);
    const model = new ExperimentsModel(api as any, { notebook: 'nb.ipynb' });
    await model.reload();
    expect(model.total).toBe(1000);
    expect(model.columns.map(c => c.key)).toContain('metric:acc');
    expect(api.queries[0]).toMatchObject({
      notebook: 'nb.ipynb',
      offset: 0,
      limit: PAGE_SIZE,
      columns: true
    });
    expect(model.rowAt(PAGE_SIZE)).toBeUndefined();
    model.ensureRows(PAGE_SIZE - 5, PAGE_SIZE + 5);
    await settle();
    expect(model.rowAt(PAGE_SIZE)).toBeDefined();
    await model.setSort('metric:acc');
    expect(api.queries.at(-1)).toMatchObject({
      sort: 'metric:acc',
      order: 'desc'
    });
    expect(model.rowAt(0)!.metrics.acc).toBe(0.96);
    await model.setSort('metric:acc');
    expect(model.sort.order).toBe('asc');
  });

  it("charts the table's first rows, never a page a scroll loaded further down", async () => {
    const api = new FakeTableApi(50 * PAGE_SIZE);
    const model = new ExperimentsModel(api as any);
    await model.reload();
    const shown = (i: number) => api.rows[api.rows.length - 1 - i].id; // newest first
    const first = (n: number) => Array.from({ length: n }, (_, i) => shown(i));
    expect(model.loadedRows().map(r => r.id)).toEqual(first(PAGE_SIZE));
    // A jump far down loads that page: the first rows stay the first rows.
    model.ensureRows(30 * PAGE_SIZE, 30 * PAGE_SIZE + 40);
    await settle();
    expect(model.loadedPages).toContain(30);
    expect(model.loadedRows().map(r => r.id)).toEqual(first(PAGE_SIZE));
    // A chart asks for the rest of its rows, once.
    model.ensureChartRows();
    model.ensureChartRows();
    await settle();
    expect(model.loadedRows().map(r => r.id)).toEqual(first(CHART_ROWS));
    const offsets = api.queries.map(q => q.offset);
    expect(offsets.filter(o => o === PAGE_SIZE)).toHaveLength(1);
    expect(offsets.filter(o => o === 2 * PAGE_SIZE)).toHaveLength(1);
  });

  it("charts every row of a table shorter than the chart's rows", async () => {
    const api = new FakeTableApi(PAGE_SIZE + 30);
    const model = new ExperimentsModel(api as any);
    await model.reload();
    model.ensureChartRows();
    await settle();
    expect(model.loadedRows()).toHaveLength(PAGE_SIZE + 30);
    expect(api.queries.map(q => q.offset)).toEqual([0, PAGE_SIZE]);
  });

  it('drops pages far from the view and fetches one again when scrolled back to', async () => {
    const api = new FakeTableApi(50 * PAGE_SIZE);
    const model = new ExperimentsModel(api as any);
    await model.reload();
    const shown = (i: number) => api.rows[api.rows.length - 1 - i].id; // newest first
    await scrollThrough(model, 0, model.total!);
    // The chart's pages, the view's, and the CACHED_PAGES viewed last: not all 50.
    const chartPages = [0, 1, 2];
    expect(CHART_ROWS).toBeLessThanOrEqual(chartPages.length * PAGE_SIZE);
    expect(CACHED_PAGES).toBe(4);
    expect(model.loadedPages).toEqual([...chartPages, 45, 46, 47, 48, 49]);
    expect(model.rowAt(0)!.id).toBe(shown(0));
    expect(model.rowAt(20 * PAGE_SIZE)).toBeUndefined();
    expect(model.loadedRows().map(r => r.id)).toEqual(
      Array.from({ length: CHART_ROWS }, (_, i) => shown(i))
    );
    // Scrolled back: the page is asked for again, its rows wait meanwhile.
    const asked = api.queries.length;
    model.ensureRows(20 * PAGE_SIZE - 100, 20 * PAGE_SIZE + 140);
    expect(api.queries.slice(asked).map(q => q.offset)).toEqual([
      19 * PAGE_SIZE,
      20 * PAGE_SIZE
    ]);
    expect(model.rowAt(20 * PAGE_SIZE)).toBeUndefined();
    await settle();
    expect(model.rowAt(20 * PAGE_SIZE)!.id).toBe(shown(20 * PAGE_SIZE));
    expect(model.loadedPages).toEqual([...chartPages, 19, 20, 46, 47, 48, 49]);
  });

  it('keeps the page of the row the grid keeps (the active one) while scrolling away', async () => {
    const model = new ExperimentsModel(new FakeTableApi(50 * PAGE_SIZE) as any);
    await model.reload();
    const active = 10 * PAGE_SIZE + 7;
    await scrollThrough(model, active, model.total!, active);
    expect(model.rowAt(active)).toBeDefined();
    expect(model.loadedPages).toContain(10);
  });

  it('keeps the selection and the baseline when their page is dropped', async () => {
    const api = new FakeTableApi(50 * PAGE_SIZE);
    const model = new ExperimentsModel(api as any);
    await model.reload();
    const index = 30 * PAGE_SIZE + 3;
    model.ensureRows(index, index + 40);
    await settle();
    const run = model.rowAt(index)!;
    model.toggleSelected(run);
    model.toggleSelected(model.rowAt(index + 1)!);
    model.pin(run);
    await scrollThrough(model, index, model.total!);
    await scrollThrough(model, 0, 10 * PAGE_SIZE);
    expect(model.rowAt(index)).toBeUndefined();
    expect(model.selection.map(r => r.id)).toEqual([
      run.id,
      api.rows[api.rows.length - 2 - index].id
    ]);
    expect(model.isSelected(run.id)).toBe(true);
    expect(model.baseline!.id).toBe(run.id);
    // Tagging reaches runs whose page is not loaded.
    await model.tagSelected(['kept']);
    expect(model.selection.map(r => r.tags)).toEqual([['kept'], ['kept']]);
    expect(model.baseline!.tags).toEqual(['kept']);
    // Back in view: the row fetched again is the selected one.
    model.ensureRows(index - 100, index + 140);
    await settle();
    expect(model.isSelected(model.rowAt(index)!.id)).toBe(true);
    expect(model.rowAt(index)!.id).toBe(model.baseline!.id);
  });

  it('takes back a filter the server refuses and shows why', async () => {
    const api = new FakeTableApi(3);
    const model = new ExperimentsModel(api as any);
    await model.reload();
    await model.addFilter('acc > 0.5');
    expect(model.filters).toEqual(['acc > 0.5']);
    await model.addFilter('nope > 1');
    expect(model.filters).toEqual(['acc > 0.5']);
    expect(model.error).toContain('nope');
  });

  it("groups a sweep's runs by their sweep tag", async () => {
    const api = new FakeTableApi(0);
    api.rows = [
      summary(1, { tags: ['best', 'sweep:01M98A'] }),
      summary(2, { tags: ['sweep:01M98A'] }),
      summary(3, { tags: ['sweep:01M98B', 'baseline'] }),
      summary(4, { tags: ['baseline'] })
    ];
    const model = new ExperimentsModel(api as any);
    await model.setGroup('sweep');
    expect(api.queries[api.queries.length - 1].group).toBe('sweep');
    expect([0, 1, 2, 3].map(i => model.startsGroup(i))).toEqual([
      true,
      false,
      true,
      true
    ]);
  });

  it('groups rows by notebook on the server, the value shown once per group', async () => {
    const api = new FakeTableApi(0);
    api.rows = [
      summary(1, { notebook: 'a.ipynb' }),
      summary(2, { notebook: 'a.ipynb' }),
      summary(3, { notebook: 'b.ipynb' })
    ];
    const model = new ExperimentsModel(api as any);
    await model.reload();
    expect(model.startsGroup(0)).toBe(false); // not grouped
    await model.setGroup('notebook');
    expect(api.queries[api.queries.length - 1].group).toBe('notebook');
    expect([0, 1, 2].map(i => model.startsGroup(i))).toEqual([
      true,
      false,
      true
    ]);
    const { container } = render(
      <ExperimentsView
        model={model}
        services={{
          renderChart: () => () => undefined,
          openRun: vi.fn(),
          compareTwo: vi.fn(),
          currentNotebook: () => null,
          download: vi.fn()
        }}
        trans={trans}
      />
    );
    await act(() => settle());
    const rows = [...container.querySelectorAll('[role="row"][data-run-id]')];
    expect(rows.map(r => r.classList.contains('jp-mod-groupStart'))).toEqual([
      true,
      false,
      true
    ]);
    // The grouping column comes first, its value on each group's first row only.
    const firstCells = rows.map(
      r => r.querySelectorAll('[role="gridcell"]')[1].textContent
    );
    expect(firstCells).toEqual(['a.ipynb', '', 'b.ipynb']);
    await model.setGroup(null);
    expect(api.queries[api.queries.length - 1].group).toBeNull();
  });

  it('shows columns in the order the user chose, moved one place at a time', async () => {
    const model = new ExperimentsModel(new FakeTableApi(3) as any);
    await model.reload();
    model.chooseColumns(['number', 'param:lr', 'metric:acc']);
    model.moveColumn('metric:acc', -1);
    expect(model.visible.map(c => c.key)).toEqual([
      'number',
      'metric:acc',
      'param:lr'
    ]);
    model.moveColumn('number', -1); // already first: nothing moves
    model.moveColumn('param:lr', 1); // already last
    expect(model.visible.map(c => c.key)).toEqual([
      'number',
      'metric:acc',
      'param:lr'
    ]);
    model.toggleColumn('metric:acc');
    model.toggleColumn('metric:acc'); // shown again: it goes last
    expect(model.visible.map(c => c.key)).toEqual([
      'number',
      'param:lr',
      'metric:acc'
    ]);
  });

  it('tags the selected runs and writes notes, rows updated in place', async () => {
    const api = new FakeTableApi(5);
    const model = new ExperimentsModel(api as any);
    await model.reload();
    model.toggleSelected(model.rowAt(0)!);
    model.toggleSelected(model.rowAt(1)!);
    await model.tagSelected(['best']);
    expect(api.changes).toHaveLength(2);
    expect(model.rowAt(0)!.tags).toEqual(['best']);
    await model.setNote(model.rowAt(2)!.id, 'hello');
    expect(model.rowAt(2)!.note).toBe('hello');
  });
});

const NAMES = [
  'loss "train"',
  "acc'];alert(1);//",
  '" + (window.pwned = 1) + "',
  XSS
];

function expressions(node: unknown, key = '', found: string[] = []): string[] {
  if (typeof node === 'string') {
    if (['signal', 'expr', 'test', 'update', 'filter'].includes(key)) {
      found.push(node);
    }
  } else if (Array.isArray(node)) {
    node.forEach(item => expressions(item, key, found));
  } else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      expressions(v, k, found);
    }
  }
  return found;
}

describe('brushing the scatter', () => {
  const [lr, acc] = allColumns({ params: ['lr'], metrics: ['acc'] }).filter(
    c => c.kind !== 'builtin'
  );

  it('turns a box into range filters on both axes, edges in order', () => {
    expect(brushFilters(lr, acc, { x: [0.3, 0.1], y: [0.8, 0.95] })).toEqual([
      'param:lr >= 0.1',
      'param:lr <= 0.3',
      'metric:acc >= 0.8',
      'metric:acc <= 0.95'
    ]);
    expect(brushFilters(lr, acc, { y: [0.5, 0.6] })).toEqual([
      'metric:acc >= 0.5',
      'metric:acc <= 0.6'
    ]);
  });

  it('makes nothing of a cleared brush or a malformed value', () => {
    expect(brushFilters(lr, acc, {})).toEqual([]);
    expect(brushFilters(lr, acc, null)).toEqual([]);
    expect(brushFilters(lr, acc, { x: ['a', 'b'], y: [1] })).toEqual([]);
    expect(brushFilters(lr, acc, { x: [NaN, 1] })).toEqual([]);
  });

  it('replaces the previous brush filters in one reload, keeping the others', async () => {
    const api = new FakeTableApi(5);
    const model = new ExperimentsModel(api as any);
    await model.reload();
    await model.addFilter('lr >= 0');
    const before = api.queries.length;
    await model.replaceFilters([], ['metric:acc >= 0.1']);
    await model.replaceFilters(['metric:acc >= 0.1'], ['metric:acc >= 0.2']);
    expect(model.filters).toEqual(['lr >= 0', 'metric:acc >= 0.2']);
    expect(api.queries.length - before).toBe(2);
  });
});

describe('brushing the parallel coordinates', () => {
  const cols = allColumns({ params: ['lr'], metrics: ['acc', 'loss'] }).filter(
    c => c.kind !== 'builtin'
  ); // axes: lr (0), acc (1), loss (2)
  const data = [1, 2, 3].map(n =>
    summary(n, {
      params: { lr: n / 10 },
      metrics: { acc: 0.5 + n / 10, loss: 1 }
    })
  );
  const ranges = parallelRanges(data, cols);

  it('maps a box over one axis to a range on that column', () => {
    expect(ranges).toEqual([
      { min: 0.1, max: 0.3 },
      { min: 0.6, max: 0.8 },
      { min: 1, max: 1 }
    ]);
    // x: around axis 1 only; y: the lower half of the axis, edges in any order
    expect(
      parallelBrushFilters(cols, ranges, { x: [1.2, 0.8], y: [0.5, 0.1] })
    ).toEqual([
      {
        key: 'metric:acc',
        filters: ['metric:acc >= 0.62', 'metric:acc <= 0.7']
      }
    ]);
  });

  it('covers several axes, leaves out bounds past an axis end and one-value columns off the box', () => {
    expect(
      parallelBrushFilters(cols, ranges, { x: [-0.4, 2.4], y: [-0.2, 0.4] })
    ).toEqual([
      { key: 'param:lr', filters: ['param:lr <= 0.18'] },
      { key: 'metric:acc', filters: ['metric:acc <= 0.68'] }
      // loss has one value, drawn in the middle: not under the box
    ]);
    expect(
      parallelBrushFilters(cols, ranges, { x: [1.6, 2.4], y: [0.3, 0.7] })
    ).toEqual([{ key: 'metric:loss', filters: [] }]);
    // The whole of an axis: no bound, that column's earlier brush goes.
    expect(
      parallelBrushFilters(cols, ranges, { x: [-0.1, 0.1], y: [-1, 2] })
    ).toEqual([{ key: 'param:lr', filters: [] }]);
  });

  it('makes nothing of a cleared brush, a malformed one or a box between axes', () => {
    expect(parallelBrushFilters(cols, ranges, {})).toEqual([]);
    expect(parallelBrushFilters(cols, ranges, null)).toEqual([]);
    expect(parallelBrushFilters(cols, ranges, { x: [0.2, 0.8] })).toEqual([]);
    expect(
      parallelBrushFilters(cols, ranges, { x: [0.2, 0.8], y: [0, 1] })
    ).toEqual([]);
    expect(
      parallelBrushFilters(cols, ranges, { x: ['a', 'b'], y: [0, 1] })
    ).toEqual([]);
    expect(
      parallelBrushFilters(cols, ranges, { x: [0, NaN], y: [0, 1] })
    ).toEqual([]);
  });

  it('rounds edges outward to four significant digits', () => {
    expect(roundOutward(0.123456, true)).toBe(0.1234);
    expect(roundOutward(0.123456, false)).toBe(0.1235);
    expect(roundOutward(-0.123456, true)).toBe(-0.1235);
    expect(roundOutward(12345.6, false)).toBe(12350);
    expect(roundOutward(0.7, false)).toBe(0.7);
    expect(roundOutward(0, true)).toBe(0);
  });

  it('compiles to a chart with an interval brush over both channels', async () => {
    const spec = parallelSpec(data, cols);
    const vg = compile(spec as any).spec;
    const view = new vega.View(vega.parse(vg), { renderer: 'none' });
    await view.runAsync();
    expect(view.signal(BRUSH)).toEqual({});
    view.finalize();
    const layer = (spec.layer as any[]).find(l => l.params);
    expect(layer.params[0]).toEqual({
      name: BRUSH,
      select: { type: 'interval', encodings: ['x', 'y'] }
    });
  });

  it('sets each axis filters from its brush, replacing only that axis earlier ones', async () => {
    const api = new FakeTableApi(0);
    api.rows = data;
    const model = new ExperimentsModel(api as any);
    const brushes: ((value: unknown) => void)[] = [];
    const { container, services } = await openView(
      model,
      (
        _spec: unknown,
        _host: unknown,
        _select: unknown,
        brush?: { signal: string; handler: (value: unknown) => void }
      ) => {
        if (brush) {
          brushes.push(brush.handler);
        }
        return () => undefined;
      }
    );
    act(() =>
      model.chooseColumns(['number', 'param:lr', 'metric:acc', 'metric:loss'])
    );
    await act(async () => {
      [...container.querySelectorAll('button')]
        .find(b => b.textContent === 'Parallel coordinates')!
        .click();
      await settle();
    });
    // A render that changes neither runs nor columns keeps the chart (and its brush).
    const drawn = services.renderChart.mock.calls.length;
    act(() => model.pin(data[0]));
    expect(services.renderChart.mock.calls.length).toBe(drawn);
    const brush = (value: unknown) => brushes.at(-1)!(value);
    await act(async () => {
      brush({ x: [0.8, 1.2], y: [0.1, 0.5] });
      await settle();
    });
    expect(model.filters).toEqual(['metric:acc >= 0.62', 'metric:acc <= 0.7']);
    await act(async () => {
      brush({ x: [-0.2, 0.2], y: [0.5, 0.9] });
      await settle();
    });
    expect(model.filters).toEqual([
      'metric:acc >= 0.62',
      'metric:acc <= 0.7',
      'param:lr >= 0.2',
      'param:lr <= 0.28'
    ]);
    await act(async () => {
      brush({ x: [0.8, 1.2], y: [0.5, 2] });
      await settle();
    });
    expect(model.filters).toEqual([
      'param:lr >= 0.2',
      'param:lr <= 0.28',
      'metric:acc >= 0.7'
    ]);
    expect(api.queries.at(-1)!.filters).toEqual(model.filters);
  });
});

describe('experiments charts', () => {
  for (const name of NAMES) {
    it(`keeps ${JSON.stringify(name)} out of Vega expressions`, async () => {
      const cols = allColumns({ params: [name], metrics: [`${name}m`] });
      const x = cols.find(c => c.kind === 'param')!;
      const y = cols.find(c => c.kind === 'metric')!;
      const data = [1, 2, 3].map(n =>
        summary(n, {
          name: XSS,
          params: { [name]: n },
          metrics: { [`${name}m`]: n / 4 }
        })
      );
      for (const spec of [
        scatterSpec(data, x, y),
        parallelSpec(data, [x, y])
      ]) {
        const vg = compile(spec as any).spec;
        for (const expr of expressions(vg)) {
          expect(expr).not.toContain(name);
        }
        const view = new vega.View(vega.parse(vg), { renderer: 'none' });
        await view.runAsync();
        const svg = await view.toSVG();
        view.finalize();
        expect(svg).not.toContain('<img');
        expect((globalThis as any).pwned).toBeUndefined();
      }
    });
  }
});

describe('the grid holds the columns in view', () => {
  // 52 px of checkbox, then 10 columns of 100 px: column i spans 52 + 100 i …
  const cols = allColumns({
    params: Array.from({ length: 10 }, (_, i) => `p${i}`),
    metrics: []
  }).filter(c => c.kind === 'param');

  it('keeps the columns overlapping the view and one more either side', () => {
    // View 0–300: columns 0–2 (52–352) overlap, column 3 is the one after.
    expect(columnWindow(cols, 0, 300)).toEqual({ from: 0, to: 4, offset: 0 });
    // View 400–700: columns 3–6 overlap (352–752); 2 and 7 kept either side.
    expect(columnWindow(cols, 400, 300)).toEqual({
      from: 2,
      to: 8,
      offset: 200
    });
    // Scrolled to the end.
    expect(columnWindow(cols, 800, 300)).toEqual({
      from: 6,
      to: 10,
      offset: 600
    });
  });

  it('keeps every column before the view is measured', () => {
    expect(columnWindow(cols, 0, null)).toEqual({
      from: 0,
      to: 10,
      offset: 0
    });
  });
});

/** The Experiments view of `model`, its charts drawn by `renderChart`, first page loaded. */
async function openView(
  model: ExperimentsModel,
  renderChart: (...args: any[]) => () => void
) {
  const services = {
    renderChart: vi.fn(renderChart),
    openRun: vi.fn(),
    compareTwo: vi.fn(),
    currentNotebook: () => null,
    download: vi.fn()
  };
  const { container } = render(
    <ExperimentsView model={model} services={services} trans={trans} />
  );
  await act(async () => {
    await model.reload();
  });
  return { container, services };
}

describe('the scatter of the first rows', () => {
  it('is drawn from the first CHART_ROWS rows and not again on a scroll jump', async () => {
    const api = new FakeTableApi(50 * PAGE_SIZE);
    const model = new ExperimentsModel(api as any);
    const drawn: { data: { values: unknown[] } }[] = [];
    const { container } = await openView(model, (spec: any) => {
      drawn.push(spec);
      return () => undefined;
    });
    await act(async () => {
      [...container.querySelectorAll('button')]
        .find(b => b.textContent === 'Scatter')!
        .click();
      await settle();
    });
    expect(drawn.at(-1)!.data.values).toHaveLength(CHART_ROWS);
    const times = drawn.length;
    await act(async () => {
      model.ensureRows(30 * PAGE_SIZE, 30 * PAGE_SIZE + 40);
      await settle();
    });
    expect(model.loadedPages).toContain(30);
    expect(drawn).toHaveLength(times);
  });
});

describe('experiments view', () => {
  const services = {
    renderChart: vi.fn(() => () => undefined),
    openRun: vi.fn(),
    compareTwo: vi.fn(),
    currentNotebook: () => 'nb.ipynb',
    download: vi.fn()
  };

  it('renders run strings as text in an ARIA grid, keyboard reachable', async () => {
    const api = new FakeTableApi(0);
    api.rows = runs;
    const model = new ExperimentsModel(api as any);
    const alerted = vi.fn();
    (window as any).alert = alerted;
    const { container } = render(
      <ExperimentsView model={model} services={services} trans={trans} />
    );
    await act(async () => {
      await model.reload();
    });
    // every column is discovered from the fake: show the XSS param too
    act(() =>
      model.chooseColumns(['number', 'tags', 'param:lr', 'metric:acc'])
    );
    const grid = container.querySelector('[role="grid"]')!;
    expect(grid.getAttribute('aria-rowcount')).toBe('4');
    expect(
      container.querySelectorAll('[role="row"][data-run-id]')
    ).toHaveLength(3);
    // Each cell says its column, as the header does (rows may hold only some).
    const cells = container.querySelectorAll(
      '[role="row"][data-run-id] [role="gridcell"]'
    );
    expect(
      [...cells].slice(0, 5).map(c => c.getAttribute('aria-colindex'))
    ).toEqual(['1', '2', '3', '4', '5']);
    expect(grid.getAttribute('aria-colcount')).toBe('5');
    expect(container.querySelector('img')).toBeNull();
    expect(container.textContent).toContain('baseline');
    // Keyboard: the grid is focusable; Space selects the active row, P pins it.
    expect(grid.getAttribute('tabindex')).toBe('0');
    fireEvent.keyDown(grid, { key: 'ArrowDown' });
    fireEvent.keyDown(grid, { key: ' ' });
    expect(model.selection.map(r => r.number)).toEqual([2]);
    fireEvent.keyDown(grid, { key: 'p' });
    expect(model.baseline?.number).toBe(2);
    fireEvent.keyDown(grid, { key: 'Enter' });
    expect(services.openRun).toHaveBeenCalledWith(runs[1].id);
    // The note of the active run (an XSS payload) is in a textarea, as text.
    const note = container.querySelector('textarea')!;
    expect(note.value).toBe(XSS);
    // Sorting from a header button.
    const header = container.querySelector(
      'button[data-column="metric:acc"]'
    ) as HTMLButtonElement;
    await act(async () => {
      header.click();
      await settle();
    });
    expect(api.queries.at(-1)).toMatchObject({ sort: 'metric:acc' });
    expect(
      header.closest('[role="columnheader"]')!.getAttribute('aria-sort')
    ).toBe('descending');
    // Again: the other way, the header (made again only on such changes) says so.
    await act(async () => {
      (
        container.querySelector(
          'button[data-column="metric:acc"]'
        ) as HTMLButtonElement
      ).click();
      await settle();
    });
    const sorted = container.querySelector('button[data-column="metric:acc"]')!;
    expect(
      sorted.closest('[role="columnheader"]')!.getAttribute('aria-sort')
    ).toBe('ascending');
    expect(sorted.textContent).toContain('▲');
    // The column chooser follows the columns shown.
    const shown = () =>
      [
        ...container.querySelectorAll<HTMLInputElement>(
          '.jp-dotnb-XColumns input[type="checkbox"]'
        )
      ].filter(c => c.checked).length;
    expect(shown()).toBe(4);
    act(() => model.toggleColumn('metric:acc'));
    expect(shown()).toBe(3);
    expect(
      container.querySelector('button[data-column="metric:acc"]')
    ).toBeNull();
    expect(alerted).not.toHaveBeenCalled();
  });
});
