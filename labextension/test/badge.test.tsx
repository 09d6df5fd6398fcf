import { render } from '@testing-library/react';
import * as React from 'react';
import { describe, expect, it } from 'vitest';

import { RunBadge } from '../src/components/Badge';

describe('RunBadge', () => {
  it('gives screen readers its parts with separators', () => {
    const { container } = render(
      <RunBadge
        bundle={{
          id: 'R11',
          number: 11,
          notebook: 'nb.ipynb',
          name: 'baseline',
          status: 'error',
          inputs: ['data/train.csv'],
          outputs: ['model.pkl'],
          params: { lr: 0.1 },
          metrics: { acc: 0.984 },
          duration_s: 0.812,
          overridden: []
        }}
        onOpen={() => undefined}
      />
    );
    const button = container.querySelector('button')!;
    expect(button.getAttribute('aria-label')).toBe(
      'run #11 · baseline · error · 1 input · 1 output · acc=0.984 · lr=0.1 · 812 ms'
    );
    // What the eye reads is the same text, part by part.
    const parts = [...button.querySelectorAll('span')].map(s => s.textContent);
    expect(parts).toContain('1 input · 1 output');
  });
});
