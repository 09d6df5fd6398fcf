import { act, fireEvent, render } from '@testing-library/react';
import * as React from 'react';
import { describe, expect, it } from 'vitest';

import { ListView } from '../src/components/ListView';
import { RunList } from '../src/components/RunList';
import { RunsModel } from '../src/model';
import { buildRows, EMPTY_SECTION, parseSortKey } from '../src/runListState';
import { fakeServices, FakeApi, settle } from './fakes';
import { summary } from './fixtures';

describe('the run list view', () => {
  it('renders a window of 10,000 runs, fast', () => {
    const runs = Array.from({ length: 10000 }, (_, i) => summary(10000 - i));
    const model = new RunsModel(new FakeApi() as any);
    const rows = buildRows(
      { path: null, state: EMPTY_SECTION },
      { ...EMPTY_SECTION, loaded: true, runs },
      parseSortKey('')
    );
    const started = performance.now();
    const { container } = render(
      <RunList
        model={model}
        rows={rows}
        activeId={null}
        onOpen={() => undefined}
        initialHeight={800}
      />
    );
    const elapsed = performance.now() - started;
    const rendered = container.querySelectorAll('.jp-dotnb-Row').length;
    expect(rendered).toBeGreaterThan(5);
    expect(rendered).toBeLessThan(40);
    expect(elapsed).toBeLessThan(1000);
    // Scrolling to the middle renders the rows there, and only those.
    const list = container.querySelector('.jp-dotnb-List') as HTMLElement;
    list.scrollTop = 28 + 52 * 5000;
    fireEvent.scroll(list);
    const numbers = Array.from(container.querySelectorAll('.jp-dotnb-Row')).map(
      r => Number(r.getAttribute('data-run-number'))
    );
    expect(numbers).toContain(5000);
    expect(numbers.length).toBeLessThan(40);
  });

  it('moves with the keyboard and opens a run with Enter', () => {
    const runs = [summary(3), summary(2), summary(1)];
    const model = new RunsModel(new FakeApi() as any);
    const rows = buildRows(
      { path: null, state: EMPTY_SECTION },
      { ...EMPTY_SECTION, loaded: true, runs },
      parseSortKey('')
    );
    const opened: string[] = [];
    const { container } = render(
      <RunList
        model={model}
        rows={rows}
        activeId={null}
        onOpen={id => opened.push(id)}
      />
    );
    const list = container.querySelector('[role="listbox"]') as HTMLElement;
    fireEvent.focus(list);
    fireEvent.keyDown(list, { key: 'ArrowDown' });
    fireEvent.keyDown(list, { key: 'Enter' });
    expect(opened).toEqual([runs[1].id]);
    fireEvent.keyDown(list, { key: ' ' });
    expect(model.selection).toEqual([runs[1].id]);
    expect(list.getAttribute('aria-activedescendant')).toBe(
      `dotnb-run-${runs[1].id}`
    );
  });

  it('shows how to start when the store has no run', async () => {
    const api = new FakeApi();
    const services = fakeServices(api);
    const { container } = render(
      <ListView services={services} activeId={null} />
    );
    await act(() => services.model.refresh());
    expect(container.textContent).toContain('%load_ext dotnb');
    expect(container.textContent).toContain('%%track');
  });

  it('enables compare with two runs selected', async () => {
    const api = new FakeApi();
    api.runs_ = [summary(1), summary(2)];
    const services = fakeServices(api);
    const { container } = render(
      <ListView services={services} activeId={null} />
    );
    await act(() => services.model.refresh());
    const button = container.querySelector(
      '.jp-dotnb-CompareButton'
    ) as HTMLButtonElement;
    expect(button.disabled).toBe(true);
    const checks = container.querySelectorAll<HTMLInputElement>(
      '.jp-dotnb-Row-check'
    );
    act(() => {
      fireEvent.click(checks[0]);
      fireEvent.click(checks[1]);
    });
    await act(() => settle());
    expect(button.disabled).toBe(false);
    fireEvent.click(button);
    expect(services.navigated).toEqual([
      { kind: 'compare', ids: [summary(2).id, summary(1).id] }
    ]);
  });
});
