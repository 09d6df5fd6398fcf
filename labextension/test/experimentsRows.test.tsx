/**
 * The Experiments grid's row pool: rows drawn in place (no React) show the
 * right run after a scroll jump, keep their elements while in view, fill in
 * place when a page arrives, set run strings as text, and report clicks and
 * checkbox changes; the grid draws them on scroll without a React render.
 */

import { nullTranslator } from '@jupyterlab/translation';
import { act, render } from '@testing-library/react';
import * as React from 'react';
import { describe, expect, it, vi } from 'vitest';

import { ExperimentsGrid } from '../src/components/ExperimentsGrid';
import {
  IRowsView,
  ROW_HEIGHT,
  RowPool
} from '../src/components/experimentsRows';
import { allColumns } from '../src/experiments';
import { ExperimentsModel } from '../src/experimentsModel';
import { IRunSummary, IRunTablePage } from '../src/types';
import { settle } from './fakes';
import { summary, XSS } from './fixtures';

const trans = nullTranslator.load('dotnb');
const columns = allColumns({ params: ['lr'], metrics: ['acc'] }).filter(c =>
  ['number', 'name', 'param:lr', 'metric:acc'].includes(c.key)
);

function table(n: number): IRunSummary[] {
  return Array.from({ length: n }, (_, i) =>
    summary(i + 1, { params: { lr: i }, metrics: { acc: i / 1000 } })
  );
}

function view(
  runs: (IRunSummary | undefined)[],
  first: number,
  last: number,
  extra: Partial<IRowsView> = {}
): IRowsView {
  return {
    first,
    last,
    columns,
    from: 0,
    to: columns.length,
    offset: 0,
    width: 500,
    active: -1,
    baseline: null,
    grouped: null,
    rowAt: i => runs[i],
    isSelected: () => false,
    startsGroup: () => false,
    ...extra
  };
}

const rowsOf = (body: HTMLElement) =>
  [...body.querySelectorAll<HTMLElement>('[role="row"]')].sort(
    (a, b) => Number(a.ariaRowIndex) - Number(b.ariaRowIndex)
  );
const cellsOf = (row: Element) =>
  [...row.querySelectorAll('[role="gridcell"]')].map(c => c.textContent);

describe('the row pool', () => {
  it('shows the right runs after a scroll jump, reusing its row elements', () => {
    const runs = table(1000);
    const body = document.createElement('div');
    const pool = new RowPool(body, trans, {
      onToggle: vi.fn(),
      onActivate: vi.fn()
    });
    pool.render(view(runs, 0, 9));
    expect(rowsOf(body)).toHaveLength(10);
    const before = new Set(rowsOf(body));
    pool.render(view(runs, 500, 509));
    const rows = rowsOf(body);
    expect(rows).toHaveLength(10);
    expect(rows.every(r => before.has(r))).toBe(true);
    expect(rows.map(r => r.getAttribute('aria-rowindex'))).toEqual(
      Array.from({ length: 10 }, (_, i) => String(502 + i))
    );
    expect(rows.map(r => r.dataset.runId)).toEqual(
      runs.slice(500, 510).map(r => r.id)
    );
    expect(cellsOf(rows[0])).toEqual(['', '#501', 'train', '500', '0.5']);
    expect(rows[3].style.transform).toBe(`translateY(${503 * ROW_HEIGHT}px)`);
    // Back to the top: the first rows again, and fewer rows take the others out.
    pool.render(view(runs, 0, 4));
    expect(rowsOf(body).map(r => r.dataset.runId)).toEqual(
      runs.slice(0, 5).map(r => r.id)
    );
  });

  it('fills a loading row in place when its page arrives', () => {
    const runs: (IRunSummary | undefined)[] = table(3);
    runs[1] = undefined;
    const body = document.createElement('div');
    const pool = new RowPool(body, trans, {
      onToggle: vi.fn(),
      onActivate: vi.fn()
    });
    pool.render(view(runs, 0, 2));
    const loading = rowsOf(body)[1];
    expect(loading.getAttribute('aria-busy')).toBe('true');
    expect(loading.dataset.runId).toBeUndefined();
    expect(loading.classList.contains('jp-mod-loading')).toBe(true);
    expect(loading.querySelector('input')!.disabled).toBe(true);
    expect(cellsOf(loading).every(t => t === '')).toBe(true);
    runs[1] = summary(2, { name: 'arrived' });
    pool.render(view(runs, 0, 2));
    expect(rowsOf(body)[1]).toBe(loading);
    expect(loading.hasAttribute('aria-busy')).toBe(false);
    expect(loading.dataset.runId).toBe(runs[1]!.id);
    expect(loading.id).toBe(`jp-dotnb-xrow-${runs[1]!.id}`);
    expect(cellsOf(loading)[2]).toBe('arrived');
  });

  it("formats a run's cells when it comes into view, not again while it stays", () => {
    const runs = table(3);
    let reads = 0;
    const params = runs[1].params;
    Object.defineProperty(runs[1], 'params', {
      get: () => {
        reads++;
        return params;
      }
    });
    const body = document.createElement('div');
    const pool = new RowPool(body, trans, {
      onToggle: vi.fn(),
      onActivate: vi.fn()
    });
    pool.render(view(runs, 0, 2));
    const formatted = reads;
    expect(formatted).toBeGreaterThan(0);
    pool.render(view(runs, 0, 2));
    pool.render(view(runs, 1, 2));
    expect(reads).toBe(formatted);
    // A run changed (tagged, fetched again) is a new object: formatted afresh.
    runs[1] = { ...runs[1], params: { lr: 42 } };
    pool.render(view(runs, 1, 2));
    expect(cellsOf(rowsOf(body)[0])[3]).toBe('42');
  });

  it('sets run strings as text, never as markup', () => {
    const runs = [summary(1, { name: XSS, params: { lr: XSS } })];
    const body = document.createElement('div');
    const pool = new RowPool(body, trans, {
      onToggle: vi.fn(),
      onActivate: vi.fn()
    });
    pool.render(view(runs, 0, 0));
    expect(body.querySelector('img')).toBeNull();
    const cells = cellsOf(rowsOf(body)[0]);
    expect(cells[2]).toBe(XSS);
    expect(cells[3]).toBe(XSS);
    expect(
      rowsOf(body)[0]
        .querySelectorAll('[role="gridcell"]')[2]
        .getAttribute('title')
    ).toBe(XSS);
  });

  it('shows selection, the baseline with deltas, groups and the active row', () => {
    const runs = table(3);
    const body = document.createElement('div');
    const pool = new RowPool(body, trans, {
      onToggle: vi.fn(),
      onActivate: vi.fn()
    });
    pool.render(
      view(runs, 0, 2, {
        active: 2,
        baseline: runs[0],
        isSelected: id => id === runs[1].id
      })
    );
    const rows = rowsOf(body);
    expect(rows[0].classList.contains('jp-mod-baseline')).toBe(true);
    expect(rows[0].textContent).toContain('base');
    expect(rows[1].getAttribute('aria-selected')).toBe('true');
    expect(rows[1].querySelector('input')!.checked).toBe(true);
    expect(rows[2].classList.contains('jp-mod-active')).toBe(true);
    // Row 3's lr is 2, the baseline's 0.
    expect(
      rows[2].querySelector('.jp-dotnb-XDelta.jp-mod-up')!.textContent
    ).toBe('+2');
    // Unpinned: the deltas and the mark go.
    pool.render(view(runs, 0, 2));
    expect(body.querySelector('.jp-dotnb-XDelta')).toBeNull();
    expect(body.querySelector('.jp-dotnb-XBaselineMark')).toBeNull();
    expect(rows[1].getAttribute('aria-selected')).toBe('false');
    // Grouped by name: the value on the group's first row only.
    pool.render(
      view(runs, 0, 2, { grouped: 'name', startsGroup: i => i === 0 })
    );
    expect(rows.map(r => cellsOf(r)[2])).toEqual(['train', '', '']);
    expect(rows[0].classList.contains('jp-mod-groupStart')).toBe(true);
  });

  it('holds only the columns in the window, each saying its place', () => {
    const runs = table(2);
    const body = document.createElement('div');
    const pool = new RowPool(body, trans, {
      onToggle: vi.fn(),
      onActivate: vi.fn()
    });
    pool.render(view(runs, 0, 1, { from: 2, to: 4, offset: 180 }));
    const cells = [...rowsOf(body)[0].querySelectorAll('[role="gridcell"]')];
    expect(cells.map(c => c.getAttribute('aria-colindex'))).toEqual([
      '1',
      '4',
      '5'
    ]);
    expect((cells[1] as HTMLElement).style.marginLeft).toBe('180px');
    expect(cells.map(c => c.textContent)).toEqual(['', '0', '0']);
  });

  it('reports a click on a row and a checkbox change with its run', () => {
    const runs = table(3);
    const body = document.createElement('div');
    const onToggle = vi.fn();
    const onActivate = vi.fn();
    // A checkbox reports a change only in the document.
    document.body.appendChild(body);
    const pool = new RowPool(body, trans, { onToggle, onActivate });
    pool.render(view(runs, 0, 2));
    const row = rowsOf(body)[2];
    (row.querySelectorAll('[role="gridcell"]')[2] as HTMLElement).click();
    expect(onActivate).toHaveBeenCalledWith(2);
    row.querySelector('input')!.click();
    expect(onToggle).toHaveBeenCalledWith(runs[2]);
    pool.dispose();
    expect(body.children).toHaveLength(0);
    body.remove();
  });
});

function tableApi(rows: IRunSummary[]) {
  return {
    queries: [] as number[],
    async table(query: {
      offset?: number;
      limit?: number;
    }): Promise<IRunTablePage> {
      const offset = query.offset ?? 0;
      this.queries.push(offset);
      return {
        total: rows.length,
        offset,
        runs: rows.slice(offset, offset + (query.limit ?? 100)),
        columns: { params: ['lr'], metrics: ['acc'] }
      };
    },
    annotate: vi.fn()
  };
}

function scrollTo(grid: HTMLElement, row: number): void {
  Object.defineProperty(grid, 'scrollTop', {
    configurable: true,
    value: row * ROW_HEIGHT
  });
  act(() => {
    grid.dispatchEvent(new Event('scroll', { bubbles: true }));
  });
}

describe('the grid on scroll', () => {
  it('drops the pages scrolled away from, and loads them again when scrolled back', async () => {
    const rows = table(10_000);
    const api = tableApi(rows);
    const model = new ExperimentsModel(api as any);
    await model.reload();
    const onActiveChange = vi.fn();
    const { container } = render(
      <ExperimentsGrid
        model={model}
        trans={trans}
        onOpen={vi.fn()}
        onActiveChange={onActiveChange}
        initialHeight={10 * ROW_HEIGHT}
      />
    );
    const grid = container.querySelector<HTMLElement>('[role="grid"]')!;
    const row = (index: number) =>
      container.querySelector<HTMLElement>(
        `[role="row"][aria-rowindex="${index + 2}"]`
      );
    scrollTo(grid, 1500);
    await act(() => settle());
    // The row clicked is the active one: its page stays while the view moves on.
    act(() => {
      (
        row(1500)!.querySelectorAll('[role="gridcell"]')[2] as HTMLElement
      ).click();
    });
    scrollTo(grid, 1000);
    await act(() => settle());
    for (let top = 2000; top < 10_000; top += 1000) {
      scrollTo(grid, top);
      await act(() => settle());
    }
    expect(model.loadedPages.length).toBeLessThan(12);
    expect(model.rowAt(1000)).toBeUndefined();
    expect(model.rowAt(1500)!.id).toBe(rows[1500].id);
    expect(onActiveChange).toHaveBeenLastCalledWith(rows[1500]);
    // Back to row 1000: its rows wait for the page, asked for again, then fill in.
    const asked = api.queries.length;
    scrollTo(grid, 1000);
    expect(row(1000)!.getAttribute('aria-busy')).toBe('true');
    expect(row(1000)!.dataset.runId).toBeUndefined();
    expect(api.queries.slice(asked)).toContain(1000);
    await act(() => settle());
    expect(row(1000)!.hasAttribute('aria-busy')).toBe(false);
    expect(row(1000)!.dataset.runId).toBe(rows[1000].id);
    expect(row(1000)!.textContent).toContain('#1001');
  });

  it('draws the rows scrolled to and loads their page', async () => {
    const rows = table(1000);
    const api = tableApi(rows);
    const model = new ExperimentsModel(api as any);
    await model.reload();
    const { container } = render(
      <ExperimentsGrid
        model={model}
        trans={trans}
        onOpen={vi.fn()}
        onActiveChange={vi.fn()}
        initialHeight={10 * ROW_HEIGHT}
      />
    );
    const grid = container.querySelector<HTMLElement>('[role="grid"]')!;
    const firstRow = () =>
      container.querySelector<HTMLElement>('[role="row"][aria-rowindex="2"]');
    expect(firstRow()!.dataset.runId).toBe(rows[0].id);
    // A jump to row 700: its page is not loaded yet; the rows wait for it.
    Object.defineProperty(grid, 'scrollTop', {
      configurable: true,
      value: 700 * ROW_HEIGHT
    });
    act(() => {
      grid.dispatchEvent(new Event('scroll', { bubbles: true }));
    });
    const row700 = () =>
      container.querySelector<HTMLElement>('[role="row"][aria-rowindex="702"]');
    expect(row700()).not.toBeNull();
    expect(firstRow()).toBeNull();
    await act(() => settle());
    expect(row700()!.dataset.runId).toBe(rows[700].id);
    expect(row700()!.textContent).toContain('#701');
  });
});
