/**
 * The Experiments table's pure logic: its columns (builtin, one per param and
 * per metric), what a cell shows, deltas against a pinned baseline, the CSV
 * export, and the rows of an N-run comparison. No DOM, no JupyterLab: tested
 * on its own (labextension/test/experiments.test.ts).
 *
 * Every string here comes from users' runs: it is returned as data, and the
 * views render it as text.
 */

import { IRunSummary, JSONValue } from './types';

export type ColumnKind = 'builtin' | 'param' | 'metric';

export interface IExperimentColumn {
  /** Unique: a builtin name, `param:NAME` or `metric:NAME` (also the server's sort key). */
  key: string;
  kind: ColumnKind;
  /** The param's or metric's name, or the builtin's label. */
  name: string;
  /** Width in pixels. */
  width: number;
  /** Numeric columns align right and show deltas. */
  numeric: boolean;
}

/** The builtin columns, in their default order. */
export const BUILTIN_COLUMNS: IExperimentColumn[] = [
  { key: 'number', kind: 'builtin', name: '#', width: 56, numeric: true },
  { key: 'name', kind: 'builtin', name: 'name', width: 150, numeric: false },
  { key: 'tags', kind: 'builtin', name: 'tags', width: 140, numeric: false },
  { key: 'status', kind: 'builtin', name: 'status', width: 70, numeric: false },
  {
    key: 'author',
    kind: 'builtin',
    name: 'author',
    width: 110,
    numeric: false
  },
  {
    key: 'started',
    kind: 'builtin',
    name: 'started',
    width: 150,
    numeric: false
  },
  {
    key: 'duration',
    kind: 'builtin',
    name: 'duration',
    width: 80,
    numeric: true
  },
  {
    key: 'notebook',
    kind: 'builtin',
    name: 'notebook',
    width: 140,
    numeric: false
  },
  // Files new or with other bytes than in the run before (same notebook).
  {
    key: 'inputs_changed',
    kind: 'builtin',
    name: 'inputs changed',
    width: 124,
    numeric: true
  },
  {
    key: 'outputs_changed',
    kind: 'builtin',
    name: 'outputs changed',
    width: 132,
    numeric: true
  }
];

/** What the settings schema's `defaultColumns` defaults to. */
export const DEFAULT_BUILTINS = [
  'number',
  'name',
  'tags',
  'status',
  'author',
  'started',
  'duration',
  'inputs_changed',
  'outputs_changed'
];

/** Every column of a table: the builtins, then params, then metrics. */
export function allColumns(discovered: {
  params: string[];
  metrics: string[];
}): IExperimentColumn[] {
  return [
    ...BUILTIN_COLUMNS,
    ...discovered.params.map(name => ({
      key: `param:${name}`,
      kind: 'param' as const,
      name,
      width: 100,
      numeric: true
    })),
    ...discovered.metrics.map(name => ({
      key: `metric:${name}`,
      kind: 'metric' as const,
      name,
      width: 100,
      numeric: true
    }))
  ];
}

/**
 * The columns shown: `chosen` (keys, in order) when given, else the default
 * builtins (`defaults`), every param and every metric.
 */
export function visibleColumns(
  all: IExperimentColumn[],
  chosen: string[] | null,
  defaults: string[] = DEFAULT_BUILTINS
): IExperimentColumn[] {
  const byKey = new Map(all.map(c => [c.key, c]));
  if (chosen) {
    return chosen.flatMap(key => (byKey.has(key) ? [byKey.get(key)!] : []));
  }
  return all.filter(c => c.kind !== 'builtin' || defaults.includes(c.key));
}

/** A cell's raw value (a number where the column has one). */
export function cellValue(
  run: IRunSummary,
  column: IExperimentColumn
): JSONValue | undefined {
  switch (column.kind) {
    case 'param':
      return run.params?.[column.name];
    case 'metric':
      return run.metrics?.[column.name] ?? undefined;
  }
  switch (column.key) {
    case 'number':
      return run.number;
    case 'name':
      return run.name ?? '';
    case 'tags':
      return (run.tags ?? []).join(', ');
    case 'status':
      return run.status;
    case 'author':
      return run.user ?? '';
    case 'started':
      return run.started_at;
    case 'duration':
      return run.duration_s;
    case 'notebook':
      return run.notebook ?? '';
    case 'inputs_changed':
      return run.inputs_changed;
    case 'outputs_changed':
      return run.outputs_changed;
  }
  return undefined;
}

/** A number as the table shows it: up to 4 significant digits, integers whole. */
export function formatNumber(value: number): string {
  if (Number.isInteger(value) && Math.abs(value) < 1e9) {
    return String(value);
  }
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) {
    return value.toExponential(3);
  }
  return String(Number(value.toPrecision(4)));
}

/** A cell's text. */
export function cellText(run: IRunSummary, column: IExperimentColumn): string {
  const value = cellValue(run, column);
  if (value === undefined || value === null) {
    return '';
  }
  if (column.key === 'number') {
    return `#${value}`;
  }
  if (column.key === 'started' && typeof value === 'string') {
    return value.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  }
  if (typeof value === 'number') {
    return formatNumber(value);
  }
  if (typeof value === 'string') {
    return value;
  }
  return JSON.stringify(value);
}

/**
 * The difference of a numeric cell from the baseline run's: null when either
 * is not a number, or the row is the baseline itself.
 */
export function delta(
  run: IRunSummary,
  baseline: IRunSummary | null,
  column: IExperimentColumn
): number | null {
  if (!baseline || baseline.id === run.id || column.kind === 'builtin') {
    return null;
  }
  const a = cellValue(run, column);
  const b = cellValue(baseline, column);
  return typeof a === 'number' && typeof b === 'number' ? a - b : null;
}

export function formatDelta(value: number): string {
  return `${value > 0 ? '+' : value < 0 ? '−' : '±'}${formatNumber(Math.abs(value))}`;
}

/** The header text of a column (params and metrics say which they are). */
export function columnLabel(column: IExperimentColumn): string {
  return column.name;
}

/**
 * One CSV field (RFC 4180): quoted when it holds a quote, comma or line break.
 * A text that a spreadsheet would read as a formula (`=`, `+`, `-`, `@`, tab,
 * carriage return first) is prefixed with `'`: a run name must not run as a
 * formula when the export is opened (CSV injection).
 */
export function csvField(value: JSONValue | undefined): string {
  let text: string;
  if (value === undefined || value === null) {
    text = '';
  } else if (typeof value === 'number') {
    text = String(value);
  } else if (typeof value === 'string') {
    text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  } else if (typeof value === 'boolean') {
    text = String(value);
  } else {
    text = JSON.stringify(value);
  }
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The table as CSV: a header line and one line per run, raw values (not rounded), and each run's id last. */
export function toCsv(
  columns: IExperimentColumn[],
  runs: IRunSummary[]
): string {
  const header = columns
    .map(c => csvField(c.kind === 'builtin' ? c.key : `${c.kind}:${c.name}`))
    .concat('id');
  const lines = [header.join(',')];
  for (const run of runs) {
    const fields = columns.map(c => csvField(cellValue(run, c)));
    lines.push(fields.concat(csvField(run.id)).join(','));
  }
  return lines.join('\r\n') + '\r\n';
}

/** One row of an N-run comparison: a param or metric across the runs. */
export interface ICompareRow {
  kind: 'param' | 'metric';
  name: string;
  values: (JSONValue | undefined)[];
  /** Whether the runs disagree on it. */
  differs: boolean;
}

/** Params and metrics of `runs` side by side, those that differ first. */
export function compareRows(runs: IRunSummary[]): ICompareRow[] {
  const rows: ICompareRow[] = [];
  for (const kind of ['param', 'metric'] as const) {
    const names = new Set<string>();
    for (const run of runs) {
      Object.keys((kind === 'param' ? run.params : run.metrics) ?? {}).forEach(
        n => names.add(n)
      );
    }
    for (const name of [...names].sort()) {
      const values = runs.map(r =>
        kind === 'param' ? r.params?.[name] : (r.metrics?.[name] ?? undefined)
      );
      const first = JSON.stringify(values[0] ?? null);
      const differs = values.some(v => JSON.stringify(v ?? null) !== first);
      rows.push({ kind, name, values, differs });
    }
  }
  return rows.sort((a, b) => Number(b.differs) - Number(a.differs));
}

/** Whether a filter condition looks like `COLUMN OP VALUE` (the server checks the rest). */
export function looksLikeFilter(text: string): boolean {
  return /^\s*\S.*?\s*(>=|<=|==|!=|>|<|=|~)\s*\S/.test(text);
}

/** The numeric columns a chart can use (params and metrics). */
export function numericColumns(
  columns: IExperimentColumn[],
  runs: IRunSummary[]
): IExperimentColumn[] {
  return columns.filter(
    c =>
      c.kind !== 'builtin' &&
      runs.some(r => typeof cellValue(r, c) === 'number')
  );
}
