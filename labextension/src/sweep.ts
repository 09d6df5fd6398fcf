/**
 * Parameter sweeps, presentation only: the specs a form's fields become
 * (`NAME=V1,V2,…`), a sweep's counts, and the chart of a metric against a
 * swept param. The sweep itself runs on the server (`POST sweeps`).
 */

import { baseConfig, FALLBACK_THEME, IChartTheme } from './chart';
import { ISweepResult, ISweepState, JSONValue } from './types';

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';

/** A param's value as the form shows it (`0.1`, `"adam"`, `true`). */
export function fieldText(value: JSONValue): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/**
 * The `NAME=SPEC` of every field that sweeps: one whose text differs from the
 * value the notebook's parameters cell gives (several values, a range, or one
 * other value). Fields left as they were are not swept.
 */
export function sweepSpecs(
  params: Record<string, string | null>,
  fields: Record<string, string>
): string[] {
  const specs: string[] = [];
  for (const [name, text] of Object.entries(fields)) {
    const spec = text.trim();
    if (spec && spec !== (params[name] ?? '').trim()) {
      specs.push(`${name}=${spec}`);
    }
  }
  return specs;
}

/** How far a sweep has come, for a progress bar and its words. */
export function sweepCounts(state: ISweepState): {
  done: number;
  ok: number;
  failed: number;
  interrupted: number;
  running: number;
  waiting: number;
} {
  const ok = state.ok ?? state.results.filter(r => r.status === 'ok').length;
  const failed =
    state.error ?? state.results.filter(r => r.status === 'error').length;
  const interrupted =
    state.interrupted ??
    state.results.filter(r => r.status === 'interrupted').length;
  const done = ok + failed + interrupted;
  const running = state.state === 'running' ? state.running : 0;
  return {
    done,
    ok,
    failed,
    interrupted,
    running,
    waiting: Math.max(0, state.points - done - running)
  };
}

/** The params that differ between the sweep's points (what was swept). */
export function sweptParams(results: ISweepResult[]): string[] {
  const names = new Set<string>();
  for (const result of results) {
    for (const name of Object.keys(result.params)) {
      names.add(name);
    }
  }
  return [...names]
    .filter(
      name =>
        new Set(results.map(r => JSON.stringify(r.params[name] ?? null))).size >
        1
    )
    .sort();
}

/**
 * A metric against a swept param, one point per finished point. Field names
 * are fixed (`x`, `y`): the param's and metric's names are only axis titles,
 * literals Vega draws as text, never parts of an expression.
 */
export function sweepChartSpec(
  results: ISweepResult[],
  param: string,
  metric: string,
  theme: IChartTheme = FALLBACK_THEME
): Record<string, unknown> {
  const values = results.flatMap(result => {
    const x = result.params[param];
    const y = result.metrics[metric];
    return typeof x === 'number' && typeof y === 'number'
      ? [
          {
            id: result.runs[result.runs.length - 1] ?? '',
            x,
            y,
            point: `#${result.index}`
          }
        ]
      : [];
  });
  return {
    $schema: SCHEMA,
    width: 520,
    height: 220,
    config: baseConfig(theme),
    data: { values },
    mark: {
      type: 'point',
      filled: true,
      size: 70,
      cursor: 'pointer',
      color: theme.accent
    },
    encoding: {
      x: {
        field: 'x',
        type: 'quantitative',
        title: 'x',
        axis: { title: param },
        scale: { zero: false }
      },
      y: {
        field: 'y',
        type: 'quantitative',
        title: 'y',
        axis: { title: metric },
        scale: { zero: false }
      },
      tooltip: [
        { field: 'point', title: 'point' },
        { field: 'x', title: 'x' },
        { field: 'y', title: 'y' }
      ]
    }
  };
}
