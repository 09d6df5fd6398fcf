/**
 * Vega-Lite specifications for metric charts. JupyterLab renders them with its
 * own Vega-Lite renderer (rendermime, `application/vnd.vegalite.v5+json`), so
 * the extension ships no charting code.
 *
 * User strings (metric, run and notebook names) only ever appear as data values
 * and as axis titles, which Vega draws as text. They are never field names and
 * never encoding titles: Vega-Lite splices encoding titles into the expressions
 * it generates for tooltips and ARIA descriptions (unescaped in the latter), so
 * a metric called `loss "train"` broke the chart, and a crafted one could run
 * its own Vega expression.
 */

import { IMetricPoint, IMetricValue } from './types';

export type ChartMark = 'line' | 'point';

/** Colours and font taken from JupyterLab's CSS variables at render time. */
export interface IChartTheme {
  font: string;
  foreground: string;
  muted: string;
  grid: string;
  accent: string;
  selected: string;
}

export const FALLBACK_THEME: IChartTheme = {
  font: 'sans-serif',
  foreground: '#333',
  muted: '#777',
  grid: '#ddd',
  accent: '#1976d2',
  selected: '#f57c00'
};

/** Read the theme from the live document (the current JupyterLab theme). */
export function themeFromDocument(node: Element = document.body): IChartTheme {
  const style = getComputedStyle(node);
  const read = (name: string, fallback: string) =>
    style.getPropertyValue(name).trim() || fallback;
  return {
    font: read('--jp-ui-font-family', FALLBACK_THEME.font),
    foreground: read('--jp-ui-font-color1', FALLBACK_THEME.foreground),
    muted: read('--jp-ui-font-color2', FALLBACK_THEME.muted),
    grid: read('--jp-border-color2', FALLBACK_THEME.grid),
    accent: read('--jp-brand-color1', FALLBACK_THEME.accent),
    selected: read('--jp-warn-color0', FALLBACK_THEME.selected)
  };
}

/** The Vega-Lite config every dotnb chart shares: JupyterLab's colours and fonts. */
export function baseConfig(theme: IChartTheme): Record<string, unknown> {
  return {
    background: null,
    font: theme.font,
    view: { stroke: null },
    axis: {
      labelColor: theme.muted,
      titleColor: theme.foreground,
      gridColor: theme.grid,
      domainColor: theme.grid,
      tickColor: theme.grid,
      labelFontSize: 10,
      titleFontSize: 11,
      titleFontWeight: 'normal'
    }
  };
}

function config(theme: IChartTheme): Record<string, unknown> {
  return {
    ...baseConfig(theme),
    line: { color: theme.accent },
    point: { color: theme.accent }
  };
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';

/**
 * The y channel of a metric's values. The encoding keeps the fixed title
 * "value" (it is what Vega-Lite writes into expressions); the metric's name is
 * only the axis's title, a literal that Vega draws as text.
 */
function valueAxis(metric: string, values: unknown[]): Record<string, unknown> {
  return {
    field: 'value',
    type: 'quantitative',
    title: 'value',
    axis: { title: metric },
    scale: { zero: false, ...flatDomain(values) }
  };
}

/**
 * One value (or several equal ones) gives a scale with an empty domain, whose
 * only tick Vega labels with too few digits (0.5 sat on a tick labelled "1"):
 * give it a domain around the value instead.
 */
function flatDomain(values: unknown[]): { domain?: [number, number] } {
  const numbers = values.filter(
    (v): v is number => typeof v === 'number' && isFinite(v)
  );
  if (!numbers.length || numbers.some(v => v !== numbers[0])) {
    return {};
  }
  const v = numbers[0];
  const half = Math.abs(v) / 2 || 1;
  return { domain: [v - half, v + half] };
}

/**
 * A summary metric across runs: x is the run number, y the value. A point's
 * datum carries the run id (`id`), which a click handler reads.
 */
export function metricAcrossRunsSpec(
  values: IMetricValue[],
  metric: string,
  options: {
    mark: ChartMark;
    selected?: string | null;
    theme?: IChartTheme;
    height?: number;
  }
): Record<string, unknown> {
  const theme = options.theme ?? FALLBACK_THEME;
  const data = values.map(v => ({
    id: v.id,
    number: v.number,
    run: `#${v.number}`,
    metric,
    name: v.name ?? '',
    notebook: v.notebook ?? '',
    value: v.value,
    started: v.started_at,
    status: v.status
  }));
  const x = {
    field: 'number',
    type: 'quantitative',
    title: 'run',
    // Run numbers are integers: label each run when there are few of them.
    axis:
      values.length <= 12
        ? { format: 'd', values: values.map(v => v.number) }
        : { format: 'd', tickMinStep: 1 },
    scale: { zero: false, nice: false, padding: 12 }
  };
  const y = valueAxis(
    metric,
    values.map(v => v.value)
  );
  const tooltip = [
    { field: 'run', title: 'run' },
    { field: 'name', title: 'name' },
    { field: 'metric', title: 'metric' },
    { field: 'value', title: 'value', format: '.4~g' },
    {
      field: 'started',
      title: 'started',
      type: 'temporal',
      format: '%Y-%m-%d %H:%M:%S'
    },
    { field: 'notebook', title: 'notebook' }
  ];
  const points = {
    mark: { type: 'point', filled: true, size: 60, cursor: 'pointer' },
    encoding: {
      x,
      y,
      tooltip,
      color: {
        condition: { test: 'datum.id === selectedRun', value: theme.selected },
        value: theme.accent
      },
      size: {
        condition: { test: 'datum.id === selectedRun', value: 140 },
        value: 60
      }
    }
  };
  const layer: Record<string, unknown>[] = [];
  if (options.mark === 'line') {
    layer.push({
      mark: { type: 'line', interpolate: 'linear', strokeWidth: 1.5 },
      encoding: { x, y }
    });
  }
  layer.push(points);
  return {
    $schema: SCHEMA,
    width: 'container',
    height: options.height ?? 200,
    autosize: { type: 'fit-x', contains: 'padding' },
    config: config(theme),
    // A variable param (not a selection): the highlighted run, set from outside.
    params: [{ name: 'selectedRun', value: options.selected ?? '' }],
    data: { values: data },
    layer
  };
}

/** One run's step series (dotnb.metric(name, value, step=…)). */
export function seriesSpec(
  points: IMetricPoint[],
  metric: string,
  theme: IChartTheme = FALLBACK_THEME
): Record<string, unknown> {
  const data = points
    .map((p, index) => ({ step: p.step ?? index, metric, value: p.value }))
    .filter(p => typeof p.value === 'number');
  return {
    $schema: SCHEMA,
    width: 'container',
    height: 90,
    autosize: { type: 'fit-x', contains: 'padding' },
    config: config(theme),
    data: { values: data },
    mark: { type: 'line', point: data.length <= 30 },
    encoding: {
      tooltip: [
        { field: 'step', title: 'step', type: 'quantitative' },
        { field: 'metric', title: 'metric', type: 'nominal' },
        { field: 'value', title: 'value', type: 'quantitative', format: '.4~g' }
      ],
      x: {
        field: 'step',
        type: 'quantitative',
        title: 'step',
        axis: { format: 'd', tickMinStep: 1 },
        scale: { padding: 8 }
      },
      y: valueAxis(
        metric,
        data.map(p => p.value)
      )
    }
  };
}

/** Whether a series is worth a chart (two or more numeric points). */
export function isChartable(points: IMetricPoint[] | undefined): boolean {
  return (
    !!points && points.filter(p => typeof p.value === 'number').length >= 2
  );
}
