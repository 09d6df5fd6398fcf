import { describe, expect, it } from 'vitest';

import { isChartable, metricAcrossRunsSpec, seriesSpec } from '../src/chart';
import { XSS } from './fixtures';

describe('chart specs', () => {
  const values = [
    {
      id: 'A',
      number: 1,
      notebook: 'nb.ipynb',
      started_at: '2024-01-01T00:00:00Z',
      name: XSS,
      status: 'ok' as const,
      value: 0.5
    },
    {
      id: 'B',
      number: 2,
      notebook: 'nb.ipynb',
      started_at: '2024-01-02T00:00:00Z',
      name: null,
      status: 'ok' as const,
      value: 0.7
    }
  ];

  it('puts user strings in data and axis titles, never in field names or expressions', () => {
    const metric = "acc'];alert(1);//";
    const spec = metricAcrossRunsSpec(values, metric, {
      mark: 'line',
      selected: 'B'
    }) as any;
    const text = JSON.stringify(spec);
    expect(spec.data.values[0]).toMatchObject({
      id: 'A',
      run: '#1',
      name: XSS,
      value: 0.5
    });
    expect(spec.params).toEqual([{ name: 'selectedRun', value: 'B' }]);
    expect(spec.layer).toHaveLength(2);
    for (const layer of spec.layer) {
      expect(layer.encoding.y.field).toBe('value');
      // the encoding's title reaches Vega-Lite's expressions: only the axis names the metric
      expect(layer.encoding.y.title).toBe('value');
      expect(layer.encoding.y.axis.title).toBe(metric);
    }
    // the only expressions are the fixed selection tests
    const tests = text.match(/"test":"[^"]*"/g) ?? [];
    expect(new Set(tests)).toEqual(
      new Set(['"test":"datum.id === selectedRun"'])
    );
  });

  it('scatter has points only', () => {
    const spec = metricAcrossRunsSpec(values, 'acc', { mark: 'point' }) as any;
    expect(spec.layer).toHaveLength(1);
    expect(spec.layer[0].mark.type).toBe('point');
  });

  it('charts a step series', () => {
    const points = [
      { step: 0, value: 1 },
      { step: 1, value: 0.5 },
      { step: 2, value: 'n/a' }
    ];
    expect(isChartable(points)).toBe(true);
    expect(isChartable([{ value: 1 }])).toBe(false);
    const spec = seriesSpec(points, 'loss') as any;
    expect(spec.data.values).toEqual([
      { step: 0, metric: 'loss', value: 1 },
      { step: 1, metric: 'loss', value: 0.5 }
    ]);
  });
});
