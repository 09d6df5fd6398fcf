/**
 * The restore dialog's Kernel variables option: what the run recorded, each
 * name's fate, the trust choice, strings from the store rendered as text.
 */

import { fireEvent, render } from '@testing-library/react';
import * as React from 'react';
import { describe, expect, it } from 'vitest';

import { IKernelChoice, KernelStateOption } from '../src/restore';
import { IKernelState } from '../src/types';
import { XSS } from './fixtures';

const state: IKernelState = {
  run: 'R1',
  author: `ada@${XSS}`,
  variables: {
    df: { status: 'stored', type: 'DataFrame', size: 2048, cell: 3 },
    [XSS]: { status: 'stored', type: XSS, size: 10 },
    conn: {
      status: 'unpicklable',
      type: 'Connection',
      reason: `cannot pickle ${XSS}`
    }
  }
};

describe('the Kernel variables option', () => {
  it('says what comes back and what does not, and reports the choice', () => {
    const choices: IKernelChoice[] = [];
    let choice: IKernelChoice = { checkout: false, trust: false };
    const view = render(
      <KernelStateOption
        state={state}
        choice={choice}
        onChange={c => choices.push(c)}
      />
    );
    expect(view.container.textContent).toContain('bring back 2 variables');
    expect(
      view.container.querySelector('.jp-dotnb-KernelStateTable')
    ).toBeNull(); // until ticked
    fireEvent.click(view.container.querySelector('input[type=checkbox]')!);
    expect(choices.at(-1)).toEqual({ checkout: true, trust: false });

    choice = { checkout: true, trust: false };
    view.rerender(
      <KernelStateOption
        state={state}
        choice={choice}
        onChange={c => choices.push(c)}
      />
    );
    const table = view.container.querySelector('.jp-dotnb-KernelStateTable')!;
    expect(table.textContent).toContain('DataFrame');
    expect(table.textContent).toContain(`not stored: cannot pickle ${XSS}`);
    expect(view.container.textContent).toContain(`recorded by ada@${XSS}`);
    expect(view.container.querySelector('img')).toBeNull();
    const trust = view.container.querySelectorAll('input[type=checkbox]')[1];
    fireEvent.click(trust);
    expect(choices.at(-1)).toEqual({ checkout: true, trust: true });
  });
});
