/**
 * Vega-Lite specs of the Experiments view: a param (or metric) against a metric
 * over the chosen runs, and parallel coordinates over several params and
 * metrics. Drawn by JupyterLab's renderer, as the sidebar's metric chart.
 *
 * As in chart.ts, user strings (param, metric and run names) are data values
 * and axis titles only: never field names, encoding titles, sort arrays or
 * expressions (Vega-Lite splices those into the expressions it generates).
 * Field names are fixed (`x`, `y`, `name`, `value`…); each axis's name in the
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

/**
 * The interval selection of the scatter and of the parallel coordinates: its
 * signal holds `{x: [lo, hi], y: [lo, hi]}` (the charts' field names).
 */
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

/** `x` against `y` (numeric params or metrics), one point per run that has both. */
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

/** Each parallel axis's range: the min and max of its column over the runs. */
export interface IAxisRange {
  min: number;
  max: number;
}

export function parallelRanges(
  runs: IRunSummary[],
  columns: IExperimentColumn[]
): IAxisRange[] {
  return columns.map(column => {
    const numbers = runs
      .map(r => cellValue(r, column))
      .filter((v): v is number => typeof v === 'number');
    const min = numbers.length ? Math.min(...numbers) : 0;
    const max = numbers.length ? Math.max(...numbers) : 1;
    return { min, max };
  });
}

/**
 * `value` rounded to 4 significant digits away from the brushed range's
 * inside (`down` for a lower edge), so a chip reads `acc >= 0.8123` and never
 * drops a run the brush covered.
 */
export function roundOutward(value: number, down: boolean): number {
  if (value === 0 || !Number.isFinite(value)) {
    return value;
  }
  // Floating-point noise (0.6 + 0.5 * 0.2 is 0.7000000000000001, 0.68 / 1e-4
  // is 6800.000000000001) must not round a whole edge up: 12 digits are kept.
  const clean = (v: number) => Number(v.toPrecision(12));
  const digits = Math.floor(Math.log10(Math.abs(clean(value)))) - 3;
  const scaled = clean(clean(value) / 10 ** digits);
  return clean((down ? Math.floor : Math.ceil)(scaled) * 10 ** digits);
}

/** The filters a brush on the parallel coordinates sets on one column. */
export interface IAxisBrush {
  /** The column's key (its filters replace that column's earlier brush). */
  key: string;
  /** Empty when the brush spans the whole axis: that column is not filtered. */
  filters: string[];
}

/**
 * The table filters a brush on the parallel coordinates stands for.  The
 * brush is a box `{x: [lo, hi], y: [lo, hi]}` in the chart's own units: `x`
 * covers axes by position (axis `i` sits at `x = i`), `y` is the unit interval
 * each axis is scaled to, mapped back to the column's values.  An edge beyond
 * the axis's end sets no bound; a column holding one value is kept whole when
 * the box covers its mark (the middle) and skipped otherwise.  A cleared or
 * malformed brush, or one covering no axis, gives nothing.
 */
export function parallelBrushFilters(
  columns: IExperimentColumn[],
  ranges: IAxisRange[],
  brush: unknown
): IAxisBrush[] {
  if (!brush || typeof brush !== 'object') {
    return [];
  }
  const pair = (field: string): [number, number] | null => {
    const range = (brush as Record<string, unknown>)[field];
    return Array.isArray(range) &&
      range.length === 2 &&
      range.every(v => typeof v === 'number' && Number.isFinite(v))
      ? ([...(range as number[])].sort((a, b) => a - b) as [number, number])
      : null;
  };
  const xs = pair('x');
  const ys = pair('y');
  if (!xs || !ys) {
    return [];
  }
  const brushes: IAxisBrush[] = [];
  columns.forEach((column, i) => {
    if (i < xs[0] || i > xs[1] || !ranges[i]) {
      return;
    }
    const { min, max } = ranges[i];
    const filters: string[] = [];
    if (max > min) {
      if (ys[0] > 0) {
        const lo = roundOutward(min + ys[0] * (max - min), true);
        filters.push(`${column.key} >= ${lo}`);
      }
      if (ys[1] < 1) {
        const hi = roundOutward(min + ys[1] * (max - min), false);
        filters.push(`${column.key} <= ${hi}`);
      }
    } else if (ys[0] > 0.5 || ys[1] < 0.5) {
      return;
    }
    brushes.push({ key: column.key, filters });
  });
  return brushes;
}

/**
 * Parallel coordinates: one vertical axis per column (scaled to its own
 * min–max), one line per run. The axes' names and ranges are text marks.
 * Axis `i` sits at `x = i`; dragging a box over axes sets the `brush` signal
 * (see parallelBrushFilters).
 */
export function parallelSpec(
  runs: IRunSummary[],
  columns: IExperimentColumn[],
  theme: IChartTheme = FALLBACK_THEME
): Record<string, unknown> {
  const ranges = parallelRanges(runs, columns);
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
          x: i,
          name: column.name,
          value: v,
          y: max > min ? (v - min) / (max - min) : 0.5
        }
      ];
    })
  );
  const axes = columns.map((column, i) => ({
    x: i,
    name: column.name,
    top: formatNumber(ranges[i].max),
    bottom: formatNumber(ranges[i].min)
  }));
  // Axes at 0…n-1 with half an axis of room either side; no axis of its own.
  const x = {
    field: 'x',
    type: 'quantitative',
    title: null,
    axis: null,
    scale: { domain: [-0.5, columns.length - 0.5], nice: false, zero: false }
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
        // A box dragged over axes: the view turns it into table filters.
        params: [
          {
            name: BRUSH,
            select: { type: 'interval', encodings: ['x', 'y'] }
          }
        ],
        mark: { type: 'line', strokeWidth: 1.5, opacity: 0.7 },
        encoding: {
          x,
          y: { field: 'y', ...y },
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
