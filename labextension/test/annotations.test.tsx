/**
 * Tags and notes edited from a run's details: each change goes to
 * `POST runs/{run}/annotations` and the details show the run list's new state;
 * a refused change is shown as text and nothing else moves.
 */

import { act, fireEvent, render } from '@testing-library/react';
import * as React from 'react';
import { describe, expect, it } from 'vitest';

import { RunDetails } from '../src/components/RunDetails';
import { fakeServices, FakeApi, settle } from './fakes';
import { manifest, summary, XSS } from './fixtures';

async function details(tags: string[], note: string | null) {
  const api = new FakeApi();
  const m = manifest(3);
  api.manifests.set(m.id, m);
  api.runs_ = [summary(3, { tags, note })];
  const services = fakeServices(api);
  await services.model.refresh();
  const view = render(<RunDetails id={m.id} services={services} />);
  await act(() => settle());
  return { api, id: m.id, container: view.container };
}

function shownTags(container: HTMLElement): (string | null)[] {
  return [...container.querySelectorAll('.jp-dotnb-Details-tagName')].map(
    t => t.textContent
  );
}

describe('editing tags and the note in the run details', () => {
  it('adds tags typed in the field (spaces or commas between them)', async () => {
    const { api, id, container } = await details(['baseline'], null);
    const input = container.querySelector(
      'input[aria-label="Add tags"]'
    ) as HTMLInputElement;
    fireEvent.change(input, { target: { value: 'best, v2' } });
    fireEvent.keyDown(input, { key: 'Enter' });
    await act(() => settle());
    expect(api.annotations).toEqual([
      { ref: id, change: { tag: ['best', 'v2'] } }
    ]);
    expect(shownTags(container)).toEqual(['baseline', 'best', 'v2']);
    expect(input.value).toBe('');
  });

  it('removes a tag with its button', async () => {
    const { api, id, container } = await details(['baseline', 'best'], null);
    fireEvent.click(
      container.querySelector(
        'button[aria-label="Remove tag baseline"]'
      ) as HTMLElement
    );
    await act(() => settle());
    expect(api.annotations).toEqual([
      { ref: id, change: { untag: ['baseline'] } }
    ]);
    expect(shownTags(container)).toEqual(['best']);
  });

  it('edits the note, and cancelling keeps it', async () => {
    const { api, id, container } = await details([], 'first try');
    const edit = () =>
      fireEvent.click(
        container.querySelector('.jp-dotnb-Details-noteEdit') as HTMLElement
      );
    edit();
    const area = container.querySelector(
      'textarea[aria-label="Note"]'
    ) as HTMLTextAreaElement;
    expect(area.value).toBe('first try');
    fireEvent.change(area, { target: { value: 'changed my mind' } });
    fireEvent.click(
      [...container.querySelectorAll('button')].find(
        b => b.textContent === 'Cancel'
      ) as HTMLElement
    );
    expect(container.querySelector('.jp-dotnb-Details-note')?.textContent).toBe(
      'first try'
    );
    expect(api.annotations).toEqual([]);
    edit();
    fireEvent.change(
      container.querySelector('textarea[aria-label="Note"]') as HTMLElement,
      { target: { value: `${XSS}\nsecond line` } }
    );
    fireEvent.click(
      [...container.querySelectorAll('button')].find(
        b => b.textContent === 'Save note'
      ) as HTMLElement
    );
    await act(() => settle());
    expect(api.annotations).toEqual([
      { ref: id, change: { note: `${XSS}\nsecond line` } }
    ]);
    expect(container.querySelector('.jp-dotnb-Details-note')?.textContent).toBe(
      `${XSS}\nsecond line`
    );
    expect(container.querySelector('img, script, iframe')).toBeNull();
  });

  it('shows a refused change as text and keeps what was typed', async () => {
    const { container } = await details(['baseline'], null);
    const input = container.querySelector(
      'input[aria-label="Add tags"]'
    ) as HTMLInputElement;
    const long = `${XSS}${'x'.repeat(80)}`;
    fireEvent.change(input, { target: { value: long } });
    fireEvent.keyDown(input, { key: 'Enter' });
    await act(() => settle());
    const alert = container.querySelector('[role="alert"]');
    expect(alert?.textContent).toContain('at most 64 characters');
    expect(container.querySelector('img, script, iframe')).toBeNull();
    expect(input.value).toBe(long);
    expect(shownTags(container)).toEqual(['baseline']);
  });
});
