/**
 * The chart specs compiled by the Vega-Lite and Vega versions JupyterLab 4
 * ships (pinned in package.json), then parsed and run headless: a metric name
 * must never reach a Vega expression, whatever it holds.
 */
import * as vega from 'vega';
import { compile } from 'vega-lite';
import { describe, expect, it } from 'vitest';

import { metricAcrossRunsSpec, seriesSpec } from '../src/chart';
import { IMetricValue } from '../src/types';
import { XSS } from './fixtures';

const NAMES = [
  'loss "train"',
  "acc'];alert(1);//",
  '" + (window.pwned = 1) + "',
  "' + (window.pwned = 1) + '",
  'a\\"b',
  XSS,
  'validation_balanced_accuracy'
];

const values: IMetricValue[] = [1, 2, 3].map(n => ({
  id: `R${n}`,
  number: n,
  notebook: 'nb.ipynb',
  started_at: `2024-01-0${n}T00:00:00Z`,
  name: n === 2 ? XSS : null,
  status: 'ok',
  value: n / 4
}));

/** Every string of the compiled Vega spec that Vega parses as an expression. */
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

async function draw(spec: Record<string, unknown>): Promise<{
  vg: vega.Spec;
  svg: string;
}> {
  const vg = compile(spec as any).spec;
  const view = new vega.View(vega.parse(vg), { renderer: 'none' });
  await view.runAsync();
  const svg = await view.toSVG();
  view.finalize();
  return { vg, svg };
}

describe('compiled metric charts', () => {
  for (const metric of NAMES) {
    it(`draws ${JSON.stringify(metric)} as text, never as an expression`, async () => {
      const specs = [
        metricAcrossRunsSpec(values, metric, { mark: 'line', selected: 'R2' }),
        metricAcrossRunsSpec(values, metric, { mark: 'point' }),
        seriesSpec(
          [0.9, 0.5, 0.25].map((value, step) => ({ step, value })),
          metric
        )
      ];
      for (const spec of specs) {
        const { vg, svg } = await draw(spec);
        for (const expr of expressions(vg)) {
          expect(expr).not.toContain(metric);
        }
        // The name is the y axis's title, escaped by the SVG writer.
        const escaped = metric
          .replace(/&/g, '&amp;')
          .replace(/</g, '&lt;')
          .replace(/>/g, '&gt;')
          .replace(/"/g, '&quot;');
        expect(svg).toContain(escaped);
        expect((globalThis as any).pwned).toBeUndefined();
      }
    });
  }

  it('names the metric in the tooltip as data', async () => {
    const spec = metricAcrossRunsSpec(values, 'loss "train"', {
      mark: 'point'
    }) as any;
    expect(spec.data.values[0].metric).toBe('loss "train"');
    const { vg } = await draw(spec);
    const tooltip = expressions(vg).find(e => e.includes('"metric"'));
    expect(tooltip).toContain('datum["metric"]');
  });
});

describe('a chart of one value', () => {
  it('labels the axis with ticks around the value', async () => {
    const spec = metricAcrossRunsSpec([{ ...values[0], value: 0.5 }], 'acc', {
      mark: 'line'
    });
    const vg = compile(spec as any).spec;
    const view = new vega.View(vega.parse(vg), { renderer: 'none' });
    await view.runAsync();
    const y = view.scale('y');
    const labels = (y.ticks(5) as number[]).map(t => String(t));
    expect(labels).toContain('0.5');
    expect(y.domain()).toEqual([0.25, 0.75]);
    view.finalize();
  });

  it('leaves the scale alone when values differ', () => {
    const spec = metricAcrossRunsSpec(values, 'acc', { mark: 'line' }) as any;
    expect(spec.layer[0].encoding.y.scale).toEqual({ zero: false });
  });
});
