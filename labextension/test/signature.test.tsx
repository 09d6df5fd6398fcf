/**
 * Signed runs in the sidebar: a row's mark and the details' Signature line for
 * each status, with the signer and reason (strings from the store) as text.
 */

import { act, render } from '@testing-library/react';
import * as React from 'react';
import { describe, expect, it } from 'vitest';

import { RunDetails } from '../src/components/RunDetails';
import { RunRow } from '../src/components/RunRow';
import { signatureMark } from '../src/format';
import { IRunSignature } from '../src/types';
import { fakeServices, FakeApi, settle } from './fakes';
import { manifest, summary, XSS } from './fixtures';

function row(signature?: IRunSignature): HTMLElement {
  return render(
    <RunRow
      run={summary(3, { signature })}
      showNotebook={false}
      selected={false}
      focused={false}
      active={false}
      onOpen={() => undefined}
      onToggle={() => undefined}
    />
  ).container;
}

describe('signature marks', () => {
  it('marks good, bad and unknown-key runs, and leaves unsigned ones bare', () => {
    expect(signatureMark({ status: 'unsigned' })).toBeNull();
    expect(signatureMark(undefined)).toBeNull();
    const good = row({ status: 'good', signer: 'ana@lab' });
    const chip = good.querySelector('.jp-dotnb-Signature.jp-mod-good')!;
    expect(chip.textContent).toBe('✓ signed');
    expect(chip.getAttribute('title')).toContain('Signed by ana@lab');
    const bad = row({ status: 'bad', reason: `damaged ${XSS}` });
    expect(bad.querySelector('.jp-mod-bad')?.textContent).toBe(
      '✗ bad signature'
    );
    expect(bad.querySelector('.jp-mod-bad')?.getAttribute('title')).toContain(
      XSS
    );
    expect(bad.querySelector('img')).toBeNull();
    expect(
      row({ status: 'unknown_key', signer: 'SHA256:abc' }).querySelector(
        '.jp-mod-unknown_key'
      )
    ).not.toBeNull();
    expect(
      row({ status: 'unsigned' }).querySelector('.jp-dotnb-Signature')
    ).toBeNull();
  });

  it('says in the details who signed, or why the signature fails', async () => {
    const api = new FakeApi();
    const good = manifest(4, { signature: { status: 'good', signer: XSS } });
    const bad = manifest(5, {
      signature: { status: 'bad', reason: 'signs another manifest' }
    });
    api.manifests.set(good.id, good);
    api.manifests.set(bad.id, bad);
    const services = fakeServices(api);
    const first = render(
      <RunDetails id={good.id} services={services} />
    ).container;
    await act(() => settle());
    expect(first.querySelector('.jp-dotnb-Signature')?.textContent).toBe(
      `good, by ${XSS}`
    );
    expect(first.querySelector('img')).toBeNull();
    const second = render(
      <RunDetails id={bad.id} services={services} />
    ).container;
    await act(() => settle());
    expect(
      second.querySelector('.jp-dotnb-Signature.jp-mod-bad')?.textContent
    ).toBe('bad: signs another manifest');
  });
});
