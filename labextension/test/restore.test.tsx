/**
 * The restore flow's Kernel variables option is carried out by the REST call
 * alone: the request carries `kernel`, the result dialog shows what the kernel
 * said (as text), and Undo asks the server to undo the checkout.
 */

import { render } from '@testing-library/react';
import * as React from 'react';
import { afterEach, describe, expect, it } from 'vitest';

import type { DotnbApi } from '../src/api';
import { KernelResult, kernelRequest, runRestore } from '../src/restore';
import {
  IKernelCheckoutResult,
  IRestoreOptions,
  IRestoreResult
} from '../src/types';
import { XSS } from './fixtures';

function kernelAnswer(
  over: Partial<IKernelCheckoutResult> = {}
): IKernelCheckoutResult {
  return {
    action: 'checkout',
    notebook: 'nb.ipynb',
    kernel_id: 'k1',
    checked_out: true,
    status: 'ok',
    report: 'dotnb: kernel variables checked out from R1: 1 loaded',
    reason: null,
    ...over
  };
}

/** A DotnbApi whose restore records each request and answers `answers` in turn. */
function fakeApi(answers: IRestoreResult[]): {
  api: DotnbApi;
  calls: { ref: string; options: IRestoreOptions }[];
} {
  const calls: { ref: string; options: IRestoreOptions }[] = [];
  const api = {
    restore: async (ref: string, options: IRestoreOptions) => {
      calls.push({ ref, options });
      const next = answers.shift();
      if (!next) {
        throw new Error('unexpected restore');
      }
      return next;
    }
  } as unknown as DotnbApi;
  return { api, calls };
}

function restored(over: Partial<IRestoreResult> = {}): IRestoreResult {
  return {
    plan: { run: 'R1', items: [], skipped: [], bytes_to_write: 0 },
    dry_run: false,
    checkpoint: null,
    checkpoint_number: null,
    written: [],
    ...over
  };
}

const docManager = {
  findWidget: () => undefined,
  contextForWidget: () => undefined
} as any;

/** The open dialog, once it shows `text`. */
async function dialogWith(text: string): Promise<HTMLElement> {
  for (let i = 0; i < 200; i++) {
    const dialogs = Array.from(
      document.body.querySelectorAll<HTMLElement>('.jp-Dialog')
    );
    const found = dialogs.find(d => d.textContent?.includes(text));
    if (found) {
      return found;
    }
    await new Promise(resolve => setTimeout(resolve, 10));
  }
  throw new Error(`no dialog saying ${text}: ${document.body.textContent}`);
}

function click(dialog: HTMLElement, label: string): void {
  const button = Array.from(
    dialog.querySelectorAll<HTMLButtonElement>('button')
  ).find(b => b.textContent?.trim() === label);
  if (!button) {
    throw new Error(`no ${label} button`);
  }
  button.click();
}

afterEach(() => {
  document.body.replaceChildren();
});

describe('the kernel option of a restore', () => {
  it('is asked of the server only when ticked and the run has a notebook', () => {
    expect(kernelRequest({ checkout: true, trust: true }, 'nb.ipynb')).toEqual({
      checkout: true,
      trust: true,
      notebook: 'nb.ipynb'
    });
    expect(kernelRequest({ checkout: false, trust: true }, 'nb.ipynb')).toBe(
      null
    );
    expect(kernelRequest({ checkout: true, trust: false }, null)).toBe(null);
    expect(kernelRequest(null, 'nb.ipynb')).toBe(null);
  });

  it('shows what the kernel said as text, and why not when it did not', () => {
    const said = render(
      <KernelResult kernel={kernelAnswer({ report: `loaded: ${XSS}` })} />
    );
    expect(said.container.querySelector('pre')?.textContent).toBe(
      `loaded: ${XSS}`
    );
    expect(said.container.querySelector('img')).toBeNull();
    const none = render(
      <KernelResult
        kernel={kernelAnswer({
          checked_out: false,
          status: 'no_kernel',
          kernel_id: null,
          report: '',
          reason: `no running kernel for ${XSS}.ipynb`
        })}
      />
    );
    expect(none.container.querySelector('pre')).toBeNull();
    expect(none.container.textContent).toContain(
      `Not checked out: no running kernel for ${XSS}.ipynb`
    );
    expect(none.container.querySelector('img')).toBeNull();
  });

  it('is carried out by the restore request, and Undo asks the server to undo it', async () => {
    const { api, calls } = fakeApi([
      restored({ kernel: kernelAnswer({ report: `x = ${XSS}` }) }),
      restored({
        kernel: kernelAnswer({
          action: 'undo',
          report: 'dotnb: checkout undone; back to the checkpoint'
        })
      })
    ]);
    const done = runRestore(
      { api, docManager },
      'R1',
      {
        data: true,
        notebook: false,
        dry_run: false,
        kernel: { checkout: true, trust: false, notebook: 'nb.ipynb' }
      },
      null,
      'Restored run'
    );
    const result = await dialogWith('Kernel variables');
    expect(calls[0]).toEqual({
      ref: 'R1',
      options: {
        data: true,
        notebook: false,
        dry_run: false,
        kernel: { checkout: true, trust: false, notebook: 'nb.ipynb' }
      }
    });
    expect(
      result.querySelector('.jp-dotnb-KernelResult pre')?.textContent
    ).toBe(`x = ${XSS}`);
    expect(result.querySelector('img')).toBeNull();
    // No file changed (no checkpoint), but the variables did: Undo is offered.
    click(result, 'Undo');
    const undone = await dialogWith('checkout undone');
    expect(calls[1]).toEqual({
      ref: 'R1',
      options: {
        data: false,
        notebook: false,
        dry_run: false,
        kernel: { undo: true, notebook: 'nb.ipynb' }
      }
    });
    // An undo is not undone itself.
    expect(
      Array.from(undone.querySelectorAll('button')).map(b =>
        b.textContent?.trim()
      )
    ).toEqual(['Close']);
    click(undone, 'Close');
    await done;
    expect(calls).toHaveLength(2);
  });

  it('offers no kernel undo when no kernel checked the variables out', async () => {
    const { api, calls } = fakeApi([
      restored({
        checkpoint: 'C1',
        checkpoint_number: 3,
        written: ['data.csv'],
        kernel: kernelAnswer({
          checked_out: false,
          status: 'no_kernel',
          kernel_id: null,
          report: '',
          reason: 'no running kernel for nb.ipynb'
        })
      }),
      restored()
    ]);
    const done = runRestore(
      { api, docManager },
      'R1',
      {
        data: true,
        notebook: true,
        dry_run: false,
        kernel: { checkout: true, trust: false, notebook: 'nb.ipynb' }
      },
      null,
      'Restored run'
    );
    const result = await dialogWith('no running kernel for nb.ipynb');
    click(result, 'Undo');
    await dialogWith('Restore undone');
    // The files' checkpoint only: nothing to undo in a kernel.
    expect(calls[1]).toEqual({
      ref: 'C1',
      options: { data: true, notebook: true, dry_run: false }
    });
    click(await dialogWith('Restore undone'), 'Close');
    await done;
  });
});
