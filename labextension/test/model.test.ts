import { afterEach, describe, expect, it } from 'vitest';

import { PAGE_SIZE, RunsModel } from '../src/model';
import { parseSortKey } from '../src/runListState';
import { FakeApi, settle } from './fakes';
import { summary } from './fixtures';

let model: RunsModel | null = null;
afterEach(() => model?.dispose());

describe('RunsModel', () => {
  it("loads the current notebook's runs and all runs, page by page", async () => {
    const api = new FakeApi();
    api.runs_ = Array.from({ length: PAGE_SIZE + 5 }, (_, i) => summary(i + 1));
    api.runs_.push(summary(1000, { notebook: 'other.ipynb' }));
    model = new RunsModel(api as any);
    model.setCurrentNotebook('nb.ipynb');
    await model.refresh();
    expect(model.section('current').runs).toHaveLength(PAGE_SIZE);
    expect(model.section('current').next).not.toBeNull();
    await model.loadMore('current');
    expect(model.section('current').runs).toHaveLength(PAGE_SIZE + 5);
    expect(model.section('current').next).toBeNull();
    const headers = model.rows
      .filter(r => r.type === 'header')
      .map(r => (r as any).label);
    expect(headers).toEqual(['nb.ipynb', 'Other notebooks']);
  });

  it('takes in live events without a reload, and keeps filters', async () => {
    const api = new FakeApi();
    api.runs_ = [summary(1)];
    model = new RunsModel(api as any);
    model.setCurrentNotebook('nb.ipynb');
    await model.start();
    await settle();
    // Live as soon as the server answers, not when the first long poll returns.
    expect(model.live).toBe(true);
    expect(model.liveError).toBeNull();
    const requests = api.requests.length;
    api.emitRuns([summary(2)]);
    await settle();
    expect(model.live).toBe(true);
    expect(model.section('current').runs.map(r => r.number)).toEqual([2, 1]);
    expect(api.requests.length).toBe(requests); // merged from the event, no refetch
    model.setFilter({ status: 'error' });
    await settle();
    api.emitRuns([summary(3), summary(4, { status: 'error' })]);
    await settle();
    expect(model.section('current').runs.map(r => r.number)).toEqual([4]);
  });

  it('is offline with the reason while the server does not answer, live once it does', async () => {
    const api = new FakeApi();
    const events = api.events.bind(api);
    let down = true;
    api.events = (after: number | null, signal?: AbortSignal) =>
      down
        ? Promise.reject(new Error('server unreachable'))
        : events(after, signal);
    model = new RunsModel(api as any);
    await model.start();
    expect(model.live).toBe(false);
    expect(model.liveError).toBe('server unreachable');
    down = false;
    await new Promise(resolve => setTimeout(resolve, 1100)); // the first retry
    await settle();
    expect(model.live).toBe(true);
    expect(model.liveError).toBeNull();
  });

  it("keeps the other notebooks' page when the current notebook changes while it loads", async () => {
    const api = new FakeApi();
    api.runs_ = [summary(1), summary(2, { notebook: 'other.ipynb' })];
    const runs = api.runs.bind(api);
    let release: () => void = () => undefined;
    const gate = new Promise<void>(resolve => (release = resolve));
    api.runs = async (query: any) => {
      await gate; // the first pages are slow to come
      return runs(query);
    };
    model = new RunsModel(api as any);
    const started = model.start();
    await settle();
    expect(model.section('others').loading).toBe(true);
    model.setCurrentNotebook('nb.ipynb'); // a notebook is opened meanwhile
    release();
    await started;
    await settle();
    expect(model.section('others').loading).toBe(false);
    expect(model.section('others').runs.length).toBe(2);
    expect(model.section('current').runs.map(r => r.number)).toEqual([1]);
  });

  it('asks the server again for live runs when a text filter is on', async () => {
    const api = new FakeApi();
    api.runs_ = [summary(1, { name: 'alpha' })];
    model = new RunsModel(api as any);
    await model.start();
    model.setFilter({ text: 'beta' });
    await settle();
    expect(model.section('others').runs).toHaveLength(0);
    api.emitRuns([summary(2, { name: 'beta' })]);
    await settle();
    expect(model.section('others').runs.map(r => r.name)).toEqual(['beta']);
  });

  it('loads every page for a sort the server does not offer', async () => {
    const api = new FakeApi();
    api.runs_ = Array.from({ length: PAGE_SIZE * 2 + 1 }, (_, i) =>
      summary(i + 1, { duration_s: i === 3 ? 999 : 1 })
    );
    model = new RunsModel(api as any);
    await model.refresh();
    model.setSort(parseSortKey('duration:desc'));
    await settle(20);
    expect(model.section('others').next).toBeNull();
    const first = model.rows.find(r => r.type === 'run') as any;
    expect(first.run.number).toBe(4);
  });

  it('keeps at most two runs selected for compare', () => {
    model = new RunsModel(new FakeApi() as any);
    model.toggleSelected('a');
    model.toggleSelected('b');
    model.toggleSelected('c');
    expect(model.selection).toEqual(['b', 'c']);
    model.toggleSelected('b');
    expect(model.selection).toEqual(['c']);
  });
});
