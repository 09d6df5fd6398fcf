/**
 * Sweeps in JupyterLab: the specs the form's fields become, the counts and
 * chart of a sweep, the form's checks, and the view that follows a sweep
 * (progress, best point, results, Cancel) with strings rendered as text.
 */

import { nullTranslator } from '@jupyterlab/translation';
import { act, fireEvent, render } from '@testing-library/react';
import * as React from 'react';
import { describe, expect, it } from 'vitest';

import {
  formRequest,
  ISweepForm,
  ISweepViewServices,
  SweepFormBody,
  SweepView
} from '../src/components/Sweep';
import {
  sweepChartSpec,
  sweepCounts,
  sweepSpecs,
  sweptParams
} from '../src/sweep';
import { ISweepResult, ISweepState } from '../src/types';
import { settle } from './fakes';
import { XSS } from './fixtures';

const trans = nullTranslator.load('dotnb');

function result(
  index: number,
  lr: number,
  acc: number | null,
  status: ISweepResult['status'] = 'ok'
): ISweepResult {
  return {
    index,
    params: { lr, epochs: 3 },
    status,
    runs: status === 'ok' ? [`RUN${index}`] : [],
    metrics: acc === null ? {} : { acc },
    error: status === 'error' ? 'ValueError: bad point' : null
  };
}

function state(extra: Partial<ISweepState> = {}): ISweepState {
  return {
    sweep: '01M98SWEEP0000000000000000',
    tag: 'sweep:01M98SWEEP0000000000000000',
    state: 'running',
    failure: null,
    running: 1,
    points: 4,
    ok: 2,
    error: 1,
    interrupted: 0,
    metric: 'acc',
    goal: 'max',
    best: { index: 1, params: { lr: 0.1, epochs: 3 }, value: 0.9 },
    results: [
      result(0, 0.01, 0.7),
      result(1, 0.1, 0.9),
      result(2, 1, null, 'error')
    ],
    ...extra
  };
}

describe('sweep specs and counts', () => {
  it('sweeps only the fields changed from the run', () => {
    const params = { lr: '0.1', opt: "'adam'", epochs: '3', other: null };
    expect(
      sweepSpecs(params, {
        lr: '0.01,0.1,1',
        opt: "'adam'",
        epochs: ' 3 ',
        other: ''
      })
    ).toEqual(['lr=0.01,0.1,1']);
    expect(
      sweepSpecs(params, {
        lr: '0.1',
        opt: 'sgd,adam',
        epochs: '1:10:4',
        other: '7'
      })
    ).toEqual(['opt=sgd,adam', 'epochs=1:10:4', 'other=7']);
  });

  it('counts what is done, failed, cancelled, running and waiting', () => {
    expect(sweepCounts(state())).toEqual({
      done: 3,
      ok: 2,
      failed: 1,
      interrupted: 0,
      running: 1,
      waiting: 0
    });
    expect(
      sweepCounts(state({ state: 'done', running: 1, points: 6 })).waiting
    ).toBe(3);
  });

  it('names the swept params and charts the metric with fixed field names', () => {
    const results = state().results;
    expect(sweptParams(results)).toEqual(['lr']);
    const spec = sweepChartSpec(results, 'lr', 'acc') as any;
    expect(spec.data.values).toEqual([
      { id: 'RUN0', x: 0.01, y: 0.7, point: '#0' },
      { id: 'RUN1', x: 0.1, y: 0.9, point: '#1' }
    ]);
    // Names reach the chart only as axis titles, never as fields or tooltip text.
    const odd = results.map(r => ({
      ...r,
      params: { [XSS]: r.params.lr },
      metrics: { 'acc "x"': r.metrics.acc }
    }));
    const named = sweepChartSpec(odd, XSS, 'acc "x"') as any;
    expect(named.data.values).toHaveLength(2);
    expect([named.encoding.x.field, named.encoding.y.field]).toEqual([
      'x',
      'y'
    ]);
    expect(named.encoding.x.axis.title).toBe(XSS);
    expect(JSON.stringify(named.encoding.tooltip)).not.toContain(XSS);
  });

  it('checks the form before anything starts', () => {
    const source = {
      run: 'R',
      title: 'run #1',
      params: { lr: '0.1' },
      metrics: ['acc']
    };
    const options = {
      random: '',
      seed: '',
      maxFailures: '',
      metric: 'acc',
      minimize: false
    };
    expect(formRequest(source, { lr: '0.1' }, options, trans).problem).toMatch(
      /at least one param/
    );
    expect(
      formRequest(source, { lr: '1,2' }, { ...options, random: '-1' }, trans)
        .problem
    ).toMatch(/whole numbers/);
    const ok = formRequest(
      source,
      { lr: '1,2' },
      { ...options, random: '3', seed: '7' },
      trans
    );
    expect(ok.problem).toBeNull();
    expect(ok.request).toEqual({
      source: 'R',
      params: ['lr=1,2'],
      random: 3,
      seed: 7,
      max_failures: null,
      metric: 'acc',
      minimize: false
    });
  });
});

describe('the sweep form and view', () => {
  it('prefills each param with the run value and reports the request', () => {
    let form: ISweepForm | null = null;
    const { container } = render(
      <SweepFormBody
        source={{
          run: 'R',
          title: `run #3 ${XSS}`,
          params: { lr: '0.1', [XSS]: "'a'" },
          metrics: ['acc']
        }}
        trans={trans}
        onChange={f => {
          form = f;
        }}
      />
    );
    expect(container.querySelector('img')).toBeNull();
    const lr = container.querySelector<HTMLInputElement>('#jp-dotnb-sweep-lr')!;
    expect(lr.value).toBe('0.1');
    fireEvent.change(lr, { target: { value: '0.01,0.1' } });
    expect(form!.request.params).toEqual(['lr=0.01,0.1']);
    expect(form!.problem).toBeNull();
  });

  it('asks where to run when a scheduler is configured', () => {
    let form: ISweepForm | null = null;
    const { container } = render(
      <SweepFormBody
        source={{
          run: 'R',
          title: 'run #3',
          params: { lr: '0.1' },
          metrics: [],
          clusters: { local: { workers: 2 }, scheduler: `tcp://${XSS}:8786` }
        }}
        trans={trans}
        onChange={f => {
          form = f;
        }}
      />
    );
    const where = container.querySelector('.jp-dotnb-SweepCluster')!;
    expect(where.textContent).toContain(
      'this machine: 2 local worker processes'
    );
    expect(where.textContent).toContain(
      `the Dask scheduler at tcp://${XSS}:8786`
    );
    expect(container.querySelector('img')).toBeNull();
    expect(form!.request.cluster).toBe('scheduler'); // the configured default
    fireEvent.click(where.querySelectorAll('input[type=radio]')[0]);
    expect(form!.request.cluster).toBe('local');
  });

  it('follows a sweep until it ends, and cancels', async () => {
    const done = state({
      state: 'done',
      running: 0,
      ok: 3,
      error: 1,
      results: [...state().results, result(3, 10, 0.5)]
    });
    const calls: string[] = [];
    let finished = false;
    const services: ISweepViewServices = {
      sweep: async () => {
        calls.push('get');
        return finished ? done : state();
      },
      cancel: async () => {
        calls.push('cancel');
        return state({ stopped: 'interrupted' });
      },
      openRun: id => calls.push(`open ${id}`),
      renderChart: () => () => undefined
    };
    const { container } = render(
      <SweepView id="S" services={services} trans={trans} pollMs={20} />
    );
    await act(() => settle());
    expect(container.querySelector('.jp-dotnb-SweepCounts')?.textContent).toBe(
      '3 of 4 points done · 1 failed · 1 running'
    );
    expect(
      container.querySelector('.jp-dotnb-SweepBest')?.textContent
    ).toContain('Best acc = 0.9 at lr=0.1');
    expect(
      container.querySelectorAll('.jp-dotnb-SweepResults tbody tr')
    ).toHaveLength(3);
    fireEvent.click(
      [...container.querySelectorAll('button')].find(
        b => b.textContent === 'open its run'
      )!
    );
    expect(calls).toContain('open RUN1');
    fireEvent.click(
      [...container.querySelectorAll('button')].find(
        b => b.textContent === 'Cancel'
      )!
    );
    await act(() => settle());
    expect(calls).toContain('cancel');
    finished = true;
    await act(() => new Promise(resolve => setTimeout(resolve, 100)));
    expect(container.querySelector('.jp-dotnb-SweepState')?.textContent).toBe(
      'done'
    );
    expect(
      container.querySelectorAll('.jp-dotnb-SweepResults tbody tr')
    ).toHaveLength(4);
    const polls = calls.filter(c => c === 'get').length;
    await act(() => new Promise(resolve => setTimeout(resolve, 100)));
    expect(calls.filter(c => c === 'get')).toHaveLength(polls); // no polling once done
  });
});
