import { IRunManifest, IRunSummary } from '../src/types';

/** A ULID-like id that sorts by `n` (newer runs have larger ids). */
export function runId(n: number): string {
  return `01J${String(n).padStart(23, '0')}`;
}

export function summary(
  n: number,
  extra: Partial<IRunSummary> = {}
): IRunSummary {
  return {
    id: runId(n),
    number: n,
    notebook: 'nb.ipynb',
    name: 'train',
    kind: 'run',
    status: 'ok',
    started_at: new Date(Date.UTC(2024, 0, 1, 0, 0, n % 60)).toISOString(),
    duration_s: n / 10,
    params: { lr: n / 100 },
    metrics: { acc: 0.5 + (n % 10) / 100 },
    inputs: 1,
    outputs: 1,
    user: 'ada',
    host: 'lab',
    reproduces: null,
    checkpoint_of: null,
    ...extra
  };
}

export function manifest(
  n: number,
  extra: Partial<IRunManifest> = {}
): IRunManifest {
  const s = summary(n);
  return {
    format: 1,
    id: s.id,
    kind: 'run',
    number: n,
    name: s.name,
    notebook: s.notebook,
    notebook_source: 'frontend',
    notebook_snapshot: { hash: 'a'.repeat(64), size: 1000 },
    code: 'lr = 0.1\nacc = fit(lr)\n',
    lineage: [],
    params: s.params,
    metrics: s.metrics,
    metric_series: {},
    inputs: [{ path: 'data/train.csv', hash: 'b'.repeat(64), size: 12 }],
    outputs: [{ path: 'out/model.txt', hash: 'c'.repeat(64), size: 23 }],
    environment: { python: '3.11.2', user: 'ada', host: 'lab' },
    status: 'ok',
    error: null,
    started_at: s.started_at,
    duration_s: 0.5,
    ...extra
  };
}

export const XSS = '<img src=x onerror=alert(1)>';
