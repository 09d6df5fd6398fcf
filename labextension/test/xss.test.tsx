/**
 * Regression: every string that comes from a run is rendered as text. A run
 * named `<img src=x onerror=alert(1)>` (and params, metric names, paths,
 * errors, code with the same payload) must never become an element.
 */

import { act, render } from '@testing-library/react';
import * as React from 'react';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { RunBadge } from '../src/components/Badge';
import { RemoteBar } from '../src/components/RemoteBar';
import { CodeDiff, Compare } from '../src/components/Compare';
import { RunDetails } from '../src/components/RunDetails';
import { RunList } from '../src/components/RunList';
import { RunRow } from '../src/components/RunRow';
import { RunsModel } from '../src/model';
import { PlanTable } from '../src/restore';
import { buildRows, EMPTY_SECTION, parseSortKey } from '../src/runListState';
import { fakeServices, FakeApi, settle } from './fakes';
import { manifest, summary, XSS } from './fixtures';

const alerted = vi.fn();
(window as any).alert = alerted;

function expectInert(container: HTMLElement): void {
  expect(container.querySelector('img')).toBeNull();
  expect(container.querySelector('script')).toBeNull();
  expect(container.querySelector('[onerror]')).toBeNull();
  expect(container.textContent).toContain(XSS);
  expect(alerted).not.toHaveBeenCalled();
}

const evil = summary(7, {
  name: XSS,
  notebook: `${XSS}.ipynb`,
  params: { [XSS]: XSS },
  metrics: { [XSS]: 1 },
  user: XSS,
  host: XSS,
  remote: XSS
});

afterEach(() => alerted.mockReset());

describe('run strings are rendered as text', () => {
  it('in a list row', () => {
    const { container } = render(
      <RunRow
        run={evil}
        showNotebook
        selected={false}
        focused={false}
        active={false}
        onOpen={() => undefined}
        onToggle={() => undefined}
      />
    );
    expectInert(container);
    expect(container.querySelector('.jp-dotnb-Row-name')?.textContent).toBe(
      XSS
    );
    expect(container.querySelector('.jp-dotnb-Row-author')?.textContent).toBe(
      `${XSS}@${XSS}`
    );
    expect(container.querySelector('.jp-dotnb-Row-remote')?.textContent).toBe(
      `from ${XSS}`
    );
  });

  it('in the remote bar: remote names, URLs, results and errors', async () => {
    const api = new FakeApi();
    api.remotes_ = [
      {
        name: XSS,
        url: `file:///${XSS}`,
        default: true,
        endpoint_url: null,
        region: null,
        profile: null
      },
      {
        name: `${XSS}2`,
        url: 's3://b',
        default: false,
        endpoint_url: XSS,
        region: null,
        profile: null
      }
    ];
    api.pullReply = {
      remote: XSS,
      url: XSS,
      runs_new: 1,
      runs_rejected: [{ id: XSS, reason: XSS }],
      objects_downloaded: 1,
      bytes_downloaded: 1
    };
    api.pushReply = new Error(XSS);
    const services = fakeServices(api);
    const { container } = render(<RemoteBar remotes={services.remotes} />);
    await act(() => settle());
    await act(async () => {
      (container.querySelector('.jp-dotnb-PullButton') as HTMLElement).click();
      await settle(10);
    });
    expectInert(container);
    expect(container.querySelector('option')?.textContent).toBe(
      `${XSS} (default)`
    );
    expect(
      container.querySelector('.jp-dotnb-TransferNote-details')?.textContent
    ).toContain(XSS);
    await act(async () => {
      (container.querySelector('.jp-dotnb-PushButton') as HTMLElement).click();
      await settle();
    });
    expectInert(container);
    expect(
      container.querySelector('.jp-dotnb-Message-error')?.textContent
    ).toContain(XSS);
    services.remotes.dispose();
    services.model.dispose();
  });

  it('in the run badge of a cell output', () => {
    const { container } = render(
      <RunBadge
        bundle={{
          id: evil.id,
          number: 7,
          notebook: 'nb.ipynb',
          name: XSS,
          status: 'error',
          inputs: [XSS],
          outputs: [],
          params: { [XSS]: XSS },
          metrics: { acc: 0.9 },
          duration_s: 1,
          overridden: []
        }}
        onOpen={() => undefined}
      />
    );
    expectInert(container);
    expect(container.querySelector('.jp-dotnb-Badge-name')?.textContent).toBe(
      XSS
    );
    expect(container.querySelector('button')?.getAttribute('title')).toContain(
      XSS
    );
  });

  it('in the run details: name, params, metrics, files, error, code', async () => {
    const api = new FakeApi();
    const m = manifest(7, {
      name: XSS,
      params: { [XSS]: XSS },
      metrics: { [XSS]: 0.5 },
      code: `print("${XSS}")`,
      inputs: [{ path: `${XSS}.csv`, hash: 'd'.repeat(64), size: 1 }],
      status: 'error',
      error: { type: 'ValueError', message: XSS },
      warnings: [XSS],
      environment: { user: XSS, host: XSS, platform: XSS },
      external_inputs: [{ path: `/tmp/${XSS}`, size: 3 }]
    });
    api.manifests.set(m.id, m);
    const services = fakeServices(api);
    const { container } = render(<RunDetails id={m.id} services={services} />);
    await act(() => settle());
    expect(container.querySelector('.jp-dotnb-Details')).not.toBeNull();
    expectInert(container);
    expect(container.querySelector('.jp-dotnb-Details-name')?.textContent).toBe(
      XSS
    );
    expect(container.querySelector('.jp-dotnb-Code')?.textContent).toBe(
      `print("${XSS}")`
    );
    expect(
      container.querySelector('.jp-dotnb-Message-error')?.textContent
    ).toContain(XSS);
    expect(container.querySelector('.jp-dotnb-FileState-same')).not.toBeNull();
  });

  it('in the run details: tags and note', async () => {
    const api = new FakeApi();
    const m = manifest(8);
    api.manifests.set(m.id, m);
    api.runs_ = [
      summary(8, { tags: [XSS, 'baseline'], note: `${XSS}\nsecond line` })
    ];
    const services = fakeServices(api);
    await services.model.refresh();
    const { container } = render(<RunDetails id={m.id} services={services} />);
    await act(() => settle());
    expectInert(container);
    const tags = [
      ...container.querySelectorAll('.jp-dotnb-Details-tagName')
    ].map(t => t.textContent);
    expect(tags).toEqual([XSS, 'baseline']);
    expect(container.querySelector('.jp-dotnb-Details-note')?.textContent).toBe(
      `${XSS}\nsecond line`
    );
  });

  it('in compare: the code diff and the side-by-side tables', async () => {
    const api = new FakeApi();
    const a = manifest(1, { params: { [XSS]: 1 }, name: XSS });
    const b = manifest(2, { params: { [XSS]: 2 } });
    api.manifests.set(a.id, a);
    api.manifests.set(b.id, b);
    api.diffs.set(`${a.id}/${b.id}`, {
      runs: [a.id, b.id],
      code: `--- a\n+++ b\n@@ -1 +1 @@\n-${XSS}\n+ok\n`,
      params: { [XSS]: [1, 2] },
      metrics: {},
      inputs: { [`${XSS}.csv`]: ['e'.repeat(64), null] },
      outputs: {},
      environment: { [`pkg:${XSS}`]: ['1', '2'] }
    });
    const { container } = render(
      <Compare ids={[b.id, a.id]} services={fakeServices(api)} />
    );
    await act(() => settle());
    expect(container.querySelector('.jp-dotnb-Compare')).not.toBeNull();
    expectInert(container);
    expect(container.querySelector('.jp-dotnb-Diff-del')?.textContent).toBe(
      `-${XSS}`
    );
    expect(container.querySelector('tr.jp-mod-changed th')?.textContent).toBe(
      XSS
    );
  });

  it('in a bare code diff', () => {
    const { container } = render(<CodeDiff diff={`+${XSS}\n`} />);
    expectInert(container);
  });

  it('in the restore plan', () => {
    const { container } = render(
      <PlanTable
        plan={{
          run: evil.id,
          items: [
            {
              path: `${XSS}.csv`,
              role: 'data',
              current: null,
              target: 'f'.repeat(64),
              size: 3,
              action: 'create'
            }
          ],
          skipped: [{ path: 'big.bin', reason: XSS }],
          bytes_to_write: 3
        }}
      />
    );
    expectInert(container);
  });

  it('in the virtualized list', () => {
    const model = new RunsModel(new FakeApi() as any);
    const rows = buildRows(
      { path: null, state: EMPTY_SECTION },
      { ...EMPTY_SECTION, loaded: true, runs: [evil] },
      parseSortKey('')
    );
    const { container } = render(
      <RunList
        model={model}
        rows={rows}
        activeId={null}
        onOpen={() => undefined}
      />
    );
    expectInert(container);
  });
});
