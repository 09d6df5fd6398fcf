import { act, render } from '@testing-library/react';
import * as React from 'react';
import { describe, expect, it } from 'vitest';

import { MetricChart } from '../src/components/MetricChart';
import { fakeServices, FakeApi, settle } from './fakes';

async function chartFor(latest: string | null, chosen: string | null = null) {
  const api = new FakeApi();
  api.metricNames_ = { names: ['acc', 'loss', 'zeta'], latest };
  const services = fakeServices(api);
  const view = render(<MetricChart metric={chosen} services={services} />);
  await act(() => settle());
  const select = view.container.querySelector(
    'select[aria-label="Metric"]'
  ) as HTMLSelectElement;
  return select.value;
}

describe('MetricChart', () => {
  it('opens on the metric the newest run logged, not the first by name', async () => {
    expect(await chartFor('zeta')).toBe('zeta');
  });

  it('keeps a metric the user chose, and falls back to the first by name', async () => {
    expect(await chartFor('zeta', 'loss')).toBe('loss');
    expect(await chartFor(null)).toBe('acc');
    expect(await chartFor('gone')).toBe('acc');
  });
});
