import { Signal } from '@lumino/signaling';
import { act, render } from '@testing-library/react';
import * as React from 'react';
import { describe, expect, it } from 'vitest';

import { useSignal } from '../src/components/hooks';

/** A value that changes, and says so, the moment a view has first rendered it. */
class Source {
  value = 'loading';
  readonly changed = new Signal<this, void>(this);
}

function View(props: { source: Source }): JSX.Element {
  useSignal(props.source.changed);
  const shown = props.source.value;
  if (shown === 'loading') {
    // Between this render and the hook's connection, as a page arriving then would.
    props.source.value = 'loaded';
    props.source.changed.emit();
  }
  return <span>{shown}</span>;
}

describe('useSignal', () => {
  it('shows a change emitted between the first render and its connection', async () => {
    const source = new Source();
    const { container } = render(<View source={source} />);
    await act(async () => undefined);
    expect(container.textContent).toBe('loaded');
  });
});
