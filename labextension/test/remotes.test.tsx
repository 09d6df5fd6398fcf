/**
 * Team remotes in the sidebar: the author on rows and in details, the author
 * filter, the Push / Pull buttons (shown only with a remote), their busy state
 * and outcome messages, and the API requests behind them.
 */

import { ServerConnection } from '@jupyterlab/services';
import { act, fireEvent, render } from '@testing-library/react';
import * as React from 'react';
import { afterEach, describe, expect, it } from 'vitest';

import { ApiError, DotnbApi } from '../src/api';
import { ListView } from '../src/components/ListView';
import { RemoteBar } from '../src/components/RemoteBar';
import { RunDetails } from '../src/components/RunDetails';
import { RunRow } from '../src/components/RunRow';
import * as fmt from '../src/format';
import { RemotesModel } from '../src/remotes';
import {
  authorOptions,
  EMPTY_FILTER,
  matchesFilter
} from '../src/runListState';
import { IPullResult, IPushResult, IRemote } from '../src/types';
import { fakeServices, FakeApi, settle } from './fakes';
import { manifest, summary } from './fixtures';

const ORIGIN: IRemote = {
  name: 'origin',
  url: 's3://team-runs/project',
  default: true,
  endpoint_url: null,
  region: null,
  profile: null
};
const BACKUP: IRemote = {
  ...ORIGIN,
  name: 'backup',
  url: 'file:///mnt/backup',
  default: false
};

const PUSHED: IPushResult = {
  remote: 'origin',
  url: ORIGIN.url,
  runs_pushed: 3,
  runs_already: 0,
  objects_uploaded: 12,
  bytes_uploaded: Math.round(4.1 * 1024 * 1024),
  conflicts: []
};

const PULLED: IPullResult = {
  remote: 'origin',
  url: ORIGIN.url,
  runs_new: 2,
  runs_rejected: [],
  objects_downloaded: 5,
  bytes_downloaded: 2048
};

const disposables: { dispose(): void }[] = [];
afterEach(() => {
  for (const d of disposables.splice(0)) {
    d.dispose();
  }
});

function services(api: FakeApi) {
  const s = fakeServices(api);
  disposables.push(s.model, s.remotes);
  return s;
}

describe('formatting', () => {
  it('names the author as user@host', () => {
    expect(fmt.author({ user: 'ada', host: 'gpu-box' })).toBe('ada@gpu-box');
    expect(fmt.author({ user: 'ada', host: null })).toBe('ada');
    expect(fmt.author({ user: null, host: 'gpu-box' })).toBe('');
    expect(fmt.author({})).toBe('');
  });

  it('sums up a push', () => {
    expect(fmt.pushSummary(PUSHED)).toEqual({
      text: 'Pushed 3 runs (12 objects, 4.1 MB) to origin.',
      problems: []
    });
    expect(
      fmt.pushSummary({
        ...PUSHED,
        runs_pushed: 1,
        objects_uploaded: 0,
        runs_already: 1
      }).text
    ).toBe('Pushed 1 run to origin; 1 was already there.');
    expect(
      fmt.pushSummary({
        ...PUSHED,
        runs_pushed: 0,
        objects_uploaded: 0,
        runs_already: 8
      }).text
    ).toBe('Nothing to push: origin already has these 8 runs.');
    expect(
      fmt.pushSummary({
        ...PUSHED,
        runs_pushed: 0,
        objects_uploaded: 0,
        runs_already: 0
      }).text
    ).toBe('Nothing to push to origin.');
  });

  it('lists the runs a push or pull left alone, at most three', () => {
    const conflicts = [1, 2, 3, 4, 5].map(n => ({
      id: `01J${String(n).repeat(23)}`,
      reason: 'the remote holds a different manifest'
    }));
    const summary = fmt.pushSummary({ ...PUSHED, conflicts });
    expect(summary.text).toBe(
      'Pushed 3 runs (12 objects, 4.1 MB) to origin. 5 runs not pushed: origin holds a different version.'
    );
    expect(summary.problems).toEqual([
      '01J1111111: the remote holds a different manifest',
      '01J2222222: the remote holds a different manifest',
      '01J3333333: the remote holds a different manifest',
      'and 2 more'
    ]);
    const pulled = fmt.pullSummary({
      ...PULLED,
      runs_rejected: [{ id: conflicts[0].id, reason: 'invalid manifest' }]
    });
    expect(pulled.text).toBe(
      'Pulled 2 runs (5 objects, 2.0 KB) from origin. 1 run rejected.'
    );
    expect(pulled.problems).toEqual(['01J1111111: invalid manifest']);
  });

  it('sums up a pull with nothing new', () => {
    expect(
      fmt.pullSummary({ ...PULLED, runs_new: 0, objects_downloaded: 0 }).text
    ).toBe('No new runs on origin.');
  });
});

describe('the author filter', () => {
  it('matches user on any host, or user@host, as the server does', () => {
    const run = summary(1, { user: 'ada', host: 'gpu' });
    const filter = (author: string) => ({ ...EMPTY_FILTER, author });
    expect(matchesFilter(run, filter(''))).toBe(true);
    expect(matchesFilter(run, filter('ada'))).toBe(true);
    expect(matchesFilter(run, filter('ada@gpu'))).toBe(true);
    expect(matchesFilter(run, filter('ada@laptop'))).toBe(false);
    expect(matchesFilter(run, filter('bob'))).toBe(false);
  });

  it('offers each author seen, and a user on several hosts as "any host"', () => {
    const options = authorOptions(
      ['bob@lab', 'ada@gpu', 'ada@laptop'],
      'carol@x'
    );
    expect(options).toEqual([
      { value: '', label: 'Any author' },
      { value: 'ada', label: 'ada (any host)' },
      { value: 'ada@gpu', label: 'ada@gpu' },
      { value: 'ada@laptop', label: 'ada@laptop' },
      { value: 'bob@lab', label: 'bob@lab' },
      { value: 'carol@x', label: 'carol@x' }
    ]);
  });

  it('asks the server for one author and keeps the others on offer', async () => {
    const api = new FakeApi();
    api.runs_ = [
      summary(1, { user: 'ada', host: 'gpu' }),
      summary(2, { user: 'bob', host: 'lab' })
    ];
    const s = services(api);
    const { container } = render(<ListView services={s} activeId={null} />);
    await act(() => s.model.refresh());
    const select = container.querySelector(
      'select[aria-label="Author"]'
    ) as HTMLSelectElement;
    expect(Array.from(select.options).map(o => o.value)).toEqual([
      '',
      'ada@gpu',
      'bob@lab'
    ]);
    await act(async () => {
      fireEvent.change(select, { target: { value: 'bob@lab' } });
      await settle();
    });
    expect(api.requests.at(-1)).toContain('"author":"bob@lab"');
    expect(
      Array.from(container.querySelectorAll('.jp-dotnb-Row')).map(r =>
        r.getAttribute('data-run-number')
      )
    ).toEqual(['2']);
    // Ada's runs are filtered out, but she can still be chosen.
    expect(Array.from(select.options).map(o => o.value)).toContain('ada@gpu');
    expect(container.textContent).toContain('1 run match');
  });
});

describe('author and origin of a run', () => {
  const row = (run = summary(4)) =>
    render(
      <RunRow
        run={run}
        showNotebook={false}
        selected={false}
        focused={false}
        active={false}
        onOpen={() => undefined}
        onToggle={() => undefined}
      />
    ).container;

  it('shows user@host on a row, and "from <remote>" for a pulled run', () => {
    const local = row(summary(4, { user: 'ada', host: 'lab', remote: null }));
    expect(local.querySelector('.jp-dotnb-Row-author')?.textContent).toBe(
      'ada@lab'
    );
    expect(local.querySelector('.jp-dotnb-Row-remote')).toBeNull();
    const pulled = row(
      summary(5, { user: 'bob', host: 'gpu', remote: 'origin' })
    );
    expect(pulled.querySelector('.jp-dotnb-Row-remote')?.textContent).toBe(
      'from origin'
    );
    const title = pulled.querySelector('.jp-dotnb-Row')?.getAttribute('title');
    expect(title).toContain('by bob@gpu');
    expect(title).toContain('pulled from origin');
  });

  it('shows the author and the remote in the run details', async () => {
    const api = new FakeApi();
    const m = manifest(5, { environment: { user: 'bob', host: 'gpu' } });
    api.manifests.set(m.id, m);
    api.runs_ = [summary(5, { user: 'bob', host: 'gpu', remote: 'origin' })];
    const s = services(api);
    await s.model.refresh();
    const { container } = render(<RunDetails id={m.id} services={s} />);
    await act(() => settle());
    expect(
      container.querySelector('.jp-dotnb-Details-author')?.textContent
    ).toBe('bob@gpu');
    expect(
      container.querySelector('.jp-dotnb-Details-remote')?.textContent
    ).toBe('from origin');
    const rows = Array.from(
      container.querySelectorAll('.jp-dotnb-KeyValues tr')
    )
      .map(tr => tr.textContent)
      .join('\n');
    expect(rows).toContain('Recorded bybob@gpu');
    expect(rows).toContain('Pulled fromorigin');
  });
});

describe('Push and Pull', () => {
  it('are hidden when the store has no remote', async () => {
    const api = new FakeApi();
    const s = services(api);
    const { container } = render(<RemoteBar remotes={s.remotes} />);
    await act(() => settle());
    expect(api.requests).toContain('remotes');
    expect(container.querySelector('.jp-dotnb-PushButton')).toBeNull();
    expect(container.querySelector('.jp-dotnb-PullButton')).toBeNull();
  });

  it('push: busy while it runs, then says what was sent', async () => {
    const api = new FakeApi();
    api.remotes_ = [ORIGIN];
    api.pushReply = PUSHED;
    let release: () => void = () => undefined;
    api.gate = new Promise(resolve => (release = resolve));
    const s = services(api);
    const { container } = render(<RemoteBar remotes={s.remotes} />);
    await act(() => settle());
    const push = container.querySelector(
      '.jp-dotnb-PushButton'
    ) as HTMLButtonElement;
    const pull = container.querySelector(
      '.jp-dotnb-PullButton'
    ) as HTMLButtonElement;
    expect(push.textContent).toBe('Push');
    expect(container.querySelector('.jp-dotnb-RemoteName')?.textContent).toBe(
      'origin'
    );
    await act(async () => {
      fireEvent.click(push);
      await settle();
    });
    expect(push.textContent).toBe('Pushing…');
    expect(push.disabled).toBe(true);
    expect(pull.disabled).toBe(true);
    expect(
      container.querySelector('.jp-dotnb-RemoteBar')?.getAttribute('aria-busy')
    ).toBe('true');
    await act(async () => {
      release();
      await settle();
    });
    expect(push.disabled).toBe(false);
    expect(api.transfers).toEqual([
      { kind: 'push', options: { remote: 'origin' } }
    ]);
    expect(container.querySelector('.jp-dotnb-Message')?.textContent).toContain(
      'Pushed 3 runs (12 objects, 4.1 MB) to origin.'
    );
    fireEvent.click(container.querySelector('.jp-dotnb-Dismiss') as Element);
    expect(container.querySelector('.jp-dotnb-Message')).toBeNull();
  });

  it('pull: says what arrived and reloads the list', async () => {
    const api = new FakeApi();
    api.remotes_ = [ORIGIN];
    api.runs_ = [summary(1)];
    api.pulledRuns = [
      summary(2, { user: 'bob', host: 'gpu', remote: 'origin' })
    ];
    api.pullReply = PULLED;
    const s = services(api);
    const { container } = render(<ListView services={s} activeId={null} />);
    await act(() => s.model.refresh());
    await act(() => settle());
    expect(container.querySelectorAll('.jp-dotnb-Row')).toHaveLength(1);
    await act(async () => {
      fireEvent.click(
        container.querySelector('.jp-dotnb-PullButton') as Element
      );
      await settle(10);
    });
    expect(api.transfers).toEqual([
      { kind: 'pull', options: { remote: 'origin' } }
    ]);
    expect(container.textContent).toContain(
      'Pulled 2 runs (5 objects, 2.0 KB) from origin.'
    );
    expect(container.querySelectorAll('.jp-dotnb-Row')).toHaveLength(2);
    expect(container.querySelector('.jp-dotnb-Row-remote')?.textContent).toBe(
      'from origin'
    );
  });

  it("shows the server's error message", async () => {
    const api = new FakeApi();
    api.remotes_ = [ORIGIN];
    api.pushReply = new ApiError(
      502,
      "remote 'origin' (s3://team-runs/project): access denied"
    );
    const s = services(api);
    const { container } = render(<RemoteBar remotes={s.remotes} />);
    await act(() => settle());
    await act(async () => {
      fireEvent.click(
        container.querySelector('.jp-dotnb-PushButton') as Element
      );
      await settle();
    });
    const error = container.querySelector('.jp-dotnb-Message-error');
    expect(error?.getAttribute('role')).toBe('alert');
    expect(error?.textContent).toContain(
      "Push failed: remote 'origin' (s3://team-runs/project): access denied"
    );
    expect(
      (container.querySelector('.jp-dotnb-PushButton') as HTMLButtonElement)
        .disabled
    ).toBe(false);
  });

  it('lets the user choose among several remotes, the default first', async () => {
    const api = new FakeApi();
    api.remotes_ = [BACKUP, ORIGIN];
    api.pullReply = { ...PULLED, remote: 'backup', runs_new: 0 };
    const s = services(api);
    const { container } = render(<RemoteBar remotes={s.remotes} />);
    await act(() => settle());
    const select = container.querySelector(
      'select[aria-label="Remote"]'
    ) as HTMLSelectElement;
    expect(select.value).toBe('origin');
    expect(Array.from(select.options).map(o => o.textContent)).toEqual([
      'backup',
      'origin (default)'
    ]);
    fireEvent.change(select, { target: { value: 'backup' } });
    await act(async () => {
      fireEvent.click(
        container.querySelector('.jp-dotnb-PullButton') as Element
      );
      await settle();
    });
    expect(api.transfers).toEqual([
      { kind: 'pull', options: { remote: 'backup' } }
    ]);
    expect(container.textContent).toContain('No new runs on backup.');
  });

  it('a second click while busy starts nothing', async () => {
    const api = new FakeApi();
    api.remotes_ = [ORIGIN];
    api.pushReply = PUSHED;
    let release: () => void = () => undefined;
    api.gate = new Promise(resolve => (release = resolve));
    const remotes = new RemotesModel(api as any, null);
    disposables.push(remotes);
    await remotes.load();
    const first = remotes.push();
    const second = remotes.pull();
    expect(remotes.busy).toBe('push');
    release();
    await Promise.all([first, second]);
    expect(api.transfers.map(t => t.kind)).toEqual(['push']);
    expect(remotes.busy).toBeNull();
  });
});

describe('the API client', () => {
  // ServerConnection adds a cache-busting argument to GETs: compare paths.
  const path = (url: string) => new URL(url).pathname;

  function recordingApi(reply: unknown, status = 200) {
    const calls: { url: string; method: string; body: string | null }[] = [];
    const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
      const request = input instanceof Request ? input : null;
      calls.push({
        url: request ? request.url : String(input),
        method: request ? request.method : (init?.method ?? 'GET'),
        body: request ? await request.text() : ((init?.body as string) ?? null)
      });
      return new Response(JSON.stringify(reply), {
        status,
        headers: { 'Content-Type': 'application/json' }
      });
    };
    const settings = ServerConnection.makeSettings({
      baseUrl: 'http://localhost:8888/lab-base/',
      fetch: fetch as typeof globalThis.fetch
    });
    return { api: new DotnbApi(settings), calls };
  }

  it('lists remotes, pushes and pulls with JSON bodies', async () => {
    const listed = recordingApi({ remotes: [ORIGIN] });
    expect((await listed.api.remotes()).remotes).toEqual([ORIGIN]);
    expect(listed.calls[0].method).toBe('GET');
    expect(path(listed.calls[0].url)).toBe('/lab-base/dotnb/api/remotes');

    const pushing = recordingApi(PUSHED);
    expect(
      await pushing.api.push({ remote: 'origin', runs: ['#3', 'latest'] })
    ).toEqual(PUSHED);
    expect(path(pushing.calls[0].url)).toBe('/lab-base/dotnb/api/push');
    expect(pushing.calls[0].method).toBe('POST');
    expect(JSON.parse(pushing.calls[0].body ?? '')).toEqual({
      remote: 'origin',
      runs: ['#3', 'latest']
    });

    const pulling = recordingApi(PULLED);
    await pulling.api.pull({ with_data: true });
    expect(path(pulling.calls[0].url)).toBe('/lab-base/dotnb/api/pull');
    expect(JSON.parse(pulling.calls[0].body ?? '')).toEqual({
      with_data: true
    });
  });

  it('sends the author filter as a query argument', async () => {
    const { api, calls } = recordingApi({ runs: [], next: null });
    await api.runs({ author: 'ada@gpu box', limit: 5 });
    const url = new URL(calls[0].url);
    expect(url.pathname).toBe('/lab-base/dotnb/api/runs');
    expect(url.searchParams.get('author')).toBe('ada@gpu box');
    expect(url.searchParams.get('limit')).toBe('5');
  });

  it("turns an error reply into an ApiError with the server's message", async () => {
    const { api } = recordingApi({ message: "no remote named 'nope'" }, 404);
    await expect(api.push({ remote: 'nope' })).rejects.toMatchObject({
      status: 404,
      message: "no remote named 'nope'"
    });
  });
});
