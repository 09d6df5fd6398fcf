/**
 * Vega-Lite specs of the Experiments view: a param (or metric) against a metric
 * over the chosen runs, and parallel coordinates over several params and
 * metrics. Drawn by JupyterLab's renderer, as the sidebar's metric chart.
 *
 * As in chart.ts, user strings (param, metric and run names) are data values
 * and axis titles only: never field names, encoding titles, sort arrays or
 * expressions (Vega-Lite splices those into the expressions it generates).
 * Field names are fixed (`x`, `y`, `axis`, `norm`…); each axis's name in the
 * parallel coordinates is a text mark's datum.
 */

import { baseConfig, FALLBACK_THEME, IChartTheme } from './chart';
import { cellValue, formatNumber, IExperimentColumn } from './experiments';
import { IRunSummary } from './types';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';

function config(theme: IChartTheme): Record<string, unknown> {
  return { ...baseConfig(theme), text: { color: theme.foreground } };
}

function label(run: IRunSummary): string {
  return run.name ? `#${run.number} ${run.name}` : `#${run.number}`;
}

/** `x` against `y` (numeric params or metrics), one point per run that has both. */
/** The scatter's interval selection: its signal holds `{x: [lo, hi], y: [lo, hi]}`. */
export const BRUSH = 'brush';

/**
 * The table filters a brush on the scatter stands for: each brushed axis's
 * column between the box's edges.  An empty brush (cleared) means none.
 */
export function brushFilters(
  x: IExperimentColumn,
  y: IExperimentColumn,
  brush: unknown
): string[] {
  if (!brush || typeof brush !== 'object') {
    return [];
  }
  const filters: string[] = [];
  for (const [field, column] of [
    ['x', x],
    ['y', y]
  ] as const) {
    const range = (brush as Record<string, unknown>)[field];
    if (
      Array.isArray(range) &&
      range.length === 2 &&
      range.every(v => typeof v === 'number' && Number.isFinite(v))
    ) {
      const [lo, hi] = [...(range as number[])].sort((a, b) => a - b);
      filters.push(`${column.key} >= ${lo}`, `${column.key} <= ${hi}`);
    }
  }
  return filters;
}

export function scatterSpec(
  runs: IRunSummary[],
  x: IExperimentColumn,
  y: IExperimentColumn,
  theme: IChartTheme = FALLBACK_THEME
): Record<string, unknown> {
  const values = runs.flatMap(run => {
    const xv = cellValue(run, x);
    const yv = cellValue(run, y);
    return typeof xv === 'number' && typeof yv === 'number'
      ? [{ id: run.id, run: label(run), x: xv, y: yv, status: run.status }]
      : [];
  });
  return {
    $schema: SCHEMA,
    width: 'container',
    height: 260,
    autosize: { type: 'fit-x', contains: 'padding' },
    config: config(theme),
    data: { values },
    // Dragging over points draws a box; the view turns it into table filters.
    params: [{ name: BRUSH, select: { type: 'interval' } }],
    mark: { type: 'point', filled: true, size: 70, cursor: 'pointer' },
    encoding: {
      x: {
        field: 'x',
        type: 'quantitative',
        title: 'x',
        axis: { title: x.name },
        scale: { zero: false }
      },
      y: {
        field: 'y',
        type: 'quantitative',
        title: 'y',
        axis: { title: y.name },
        scale: { zero: false }
      },
      color: { value: theme.accent },
      tooltip: [
        { field: 'run', title: 'run' },
        { field: 'x', title: 'x', format: '.4~g' },
        { field: 'y', title: 'y', format: '.4~g' },
        { field: 'status', title: 'status' }
      ]
    }
  };
}

/**
 * Parallel coordinates: one vertical axis per column (scaled to its own
 * min–max), one line per run. The axes' names and ranges are text marks.
 */
export function parallelSpec(
  runs: IRunSummary[],
  columns: IExperimentColumn[],
  theme: IChartTheme = FALLBACK_THEME
): Record<string, unknown> {
  const ranges = columns.map(column => {
    const numbers = runs
      .map(r => cellValue(r, column))
      .filter((v): v is number => typeof v === 'number');
    const min = numbers.length ? Math.min(...numbers) : 0;
    const max = numbers.length ? Math.max(...numbers) : 1;
    return { min, max };
  });
  // Axis keys sort in column order without a sort array: "a000", "a001"…
  const key = (i: number) => `a${String(i).padStart(3, '0')}`;
  const lines = runs.flatMap(run =>
    columns.flatMap((column, i) => {
      const v = cellValue(run, column);
      if (typeof v !== 'number') {
        return [];
      }
      const { min, max } = ranges[i];
      return [
        {
          id: run.id,
          run: label(run),
          axis: key(i),
          name: column.name,
          value: v,
          norm: max > min ? (v - min) / (max - min) : 0.5
        }
      ];
    })
  );
  const axes = columns.map((column, i) => ({
    axis: key(i),
    name: column.name,
    top: formatNumber(ranges[i].max),
    bottom: formatNumber(ranges[i].min)
  }));
  const x = {
    field: 'axis',
    type: 'ordinal',
    title: null,
    axis: null,
    scale: { padding: 0.3 }
  };
  // Every layer's y: the unit interval, no axis (each column has its own range).
  const y = {
    type: 'quantitative',
    title: null,
    axis: null,
    scale: { domain: [0, 1] }
  };
  return {
    $schema: SCHEMA,
    width: 'container',
    height: 260,
    autosize: { type: 'fit-x', contains: 'padding' },
    config: config(theme),
    layer: [
      {
        data: { values: axes },
        mark: { type: 'rule', color: theme.grid },
        encoding: { x, y: { datum: 0, ...y }, y2: { datum: 1 } }
      },
      {
        data: { values: lines },
        mark: { type: 'line', strokeWidth: 1.5, opacity: 0.7 },
        encoding: {
          x,
          y: { field: 'norm', ...y },
          detail: { field: 'id', type: 'nominal' },
          color: { value: theme.accent },
          tooltip: [
            { field: 'run', title: 'run' },
            { field: 'name', title: 'column' },
            { field: 'value', title: 'value', format: '.4~g' }
          ]
        }
      },
      {
        data: { values: axes },
        mark: { type: 'text', dy: -22, fontSize: 11 },
        encoding: {
          x,
          y: { datum: 1, ...y },
          text: { field: 'name' }
        }
      },
      {
        data: { values: axes },
        mark: { type: 'text', dy: 12, fontSize: 9, color: theme.muted },
        encoding: {
          x,
          y: { datum: 0, ...y },
          text: { field: 'bottom' }
        }
      },
      {
        data: { values: axes },
        mark: { type: 'text', dy: -8, fontSize: 9, color: theme.muted },
        encoding: {
          x,
          y: { datum: 1, ...y },
          text: { field: 'top' }
        }
      }
    ]
  };
}
