import { act, fireEvent, render } from '@testing-library/react';
import * as React from 'react';
import { describe, expect, it } from 'vitest';

import { RunBadge } from '../src/components/Badge';
import { RunDetails } from '../src/components/RunDetails';
import { fileCount } from '../src/format';
import { fakeServices, FakeApi, settle } from './fakes';
import { manifest, XSS } from './fixtures';

function folderRun(files: number, path = 'images') {
  const api = new FakeApi();
  const m = manifest(3, {
    inputs: [
      { path: 'params.json', hash: 'b'.repeat(64), size: 12 },
      { path, tree: 'd'.repeat(64), files, size: files * 1024 }
    ]
  });
  api.manifests.set(m.id, m);
  api.folders.set(
    `${m.id}/input/${path}`,
    Array.from({ length: files }, (_, i) => ({
      path: `${path}/${String(i).padStart(6, '0')}.png`,
      hash: 'e'.repeat(64),
      size: 1024
    }))
  );
  return { api, m };
}

describe('a folder recorded as a tree', () => {
  it('counts its files, not its entry', () => {
    expect(
      fileCount([
        { path: 'a', hash: null, size: null },
        { path: 'b', tree: 'd'.repeat(64), files: 100000, size: 1 }
      ])
    ).toBe(100001);
  });

  it('is one line until opened, then lists its files a page at a time', async () => {
    const { api, m } = folderRun(450);
    const { container, getByText } = render(
      <RunDetails id={m.id} services={fakeServices(api)} />
    );
    await act(() => settle());
    // The section counts every file; the folder is one row, its files not fetched.
    expect(container.textContent).toContain('451');
    const toggle = container.querySelector(
      '.jp-dotnb-Folder-toggle'
    ) as HTMLButtonElement;
    expect(toggle.getAttribute('aria-expanded')).toBe('false');
    expect(container.querySelector('.jp-dotnb-Folder')?.textContent).toContain(
      '450 files'
    );
    expect(api.requests.filter(r => r.startsWith('folder'))).toEqual([]);
    await act(async () => {
      fireEvent.click(toggle);
      await settle();
    });
    expect(toggle.getAttribute('aria-expanded')).toBe('true');
    const listed = () =>
      container.querySelectorAll('.jp-dotnb-Folder li[data-path]').length;
    expect(listed()).toBe(200);
    // Its files are unchanged on disk: the folder's status row says so for all.
    expect(
      container.querySelectorAll(
        '.jp-dotnb-Folder li[data-path] .jp-dotnb-FileState-same'
      ).length
    ).toBe(200);
    await act(async () => {
      fireEvent.click(getByText(/Show 200 more of 250/));
      await settle();
    });
    expect(listed()).toBe(400);
    await act(async () => {
      fireEvent.click(getByText(/Show 50 more of 50/));
      await settle();
    });
    expect(listed()).toBe(450);
    expect(container.textContent).not.toMatch(/Show \d+ more/);
    expect(api.requests.filter(r => r.startsWith('folder'))).toEqual([
      `folder ${m.id} input images 0 200`,
      `folder ${m.id} input images 200 200`,
      `folder ${m.id} input images 400 200`
    ]);
  });

  it('marks only what the capped status rows report once some differ', async () => {
    const { api, m } = folderRun(5);
    const row = (path: string, state: 'modified' | 'missing') => ({
      path,
      role: 'input' as const,
      recorded: 'e'.repeat(64),
      current: null,
      state
    });
    // Three files differ, the check listed two of them.
    api.fileStatus = async () => ({
      run: m.id,
      files: [
        {
          path: 'images',
          role: 'input',
          recorded: 'd'.repeat(64),
          current: null,
          state: 'modified',
          files: 5,
          differing: 3
        },
        row('images/000001.png', 'modified'),
        row('images/000003.png', 'missing')
      ]
    });
    const { container } = render(
      <RunDetails id={m.id} services={fakeServices(api)} />
    );
    await act(() => settle());
    expect(container.querySelector('.jp-dotnb-Folder')?.textContent).toContain(
      '3 files differ on disk'
    );
    await act(async () => {
      fireEvent.click(container.querySelector('.jp-dotnb-Folder-toggle')!);
      await settle();
    });
    const stateOf = (name: string) =>
      container.querySelector(
        `li[data-path='images/${name}'] .jp-dotnb-FileState`
      )?.textContent ?? null;
    expect(stateOf('000001.png')).toBe('modified on disk');
    expect(stateOf('000003.png')).toBe('missing on disk');
    expect(stateOf('000000.png')).toBeNull(); // not reported: neither same nor checking
  });

  it('shows a hostile folder name as text', async () => {
    const { api, m } = folderRun(3, XSS);
    const { container } = render(
      <RunDetails id={m.id} services={fakeServices(api)} />
    );
    await act(() => settle());
    await act(async () => {
      fireEvent.click(container.querySelector('.jp-dotnb-Folder-toggle')!);
      await settle();
    });
    expect(container.querySelector('img')).toBeNull();
    expect(container.textContent).toContain(`${XSS}/`);
  });

  it('counts a badge by files when the kernel says how many', () => {
    const { container } = render(
      <RunBadge
        bundle={{
          id: 'R1',
          number: 1,
          notebook: 'nb.ipynb',
          name: null,
          status: 'ok',
          inputs: ['images/'],
          outputs: [],
          input_count: 80,
          output_count: 0,
          params: {},
          metrics: {},
          duration_s: 0.5,
          overridden: []
        }}
        onOpen={() => undefined}
      />
    );
    expect(container.textContent).toContain('80 inputs · 0 outputs');
  });
});
