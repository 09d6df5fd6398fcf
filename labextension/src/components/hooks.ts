import { ISignal } from '@lumino/signaling';
import * as React from 'react';

/**
 * Re-render whenever `signal` is emitted.
 *
 * The slot is connected after the first render (in an effect): an emission in
 * between would be missed and the view would keep showing what it rendered
 * (a list stuck at "Loading…" when its page arrived in that moment). So the
 * component renders once more right after connecting.
 */
export function useSignal(signal: ISignal<unknown, unknown>): number {
  const [version, setVersion] = React.useState(0);
  React.useEffect(() => {
    const slot = () => setVersion(v => v + 1);
    signal.connect(slot);
    slot();
    return () => {
      signal.disconnect(slot);
    };
  }, [signal]);
  return version;
}

export interface IAsync<T> {
  value: T | undefined;
  error: string | null;
  loading: boolean;
}

/** Run `load` when `deps` change; stale results are dropped. */
export function useAsync<T>(
  load: () => Promise<T>,
  deps: React.DependencyList
): IAsync<T> {
  const [state, setState] = React.useState<IAsync<T>>({
    value: undefined,
    error: null,
    loading: true
  });
  React.useEffect(() => {
    let live = true;
    setState(s => ({ ...s, loading: true, error: null }));
    load().then(
      value => live && setState({ value, error: null, loading: false }),
      error =>
        live &&
        setState({
          value: undefined,
          error: error instanceof Error ? error.message : String(error),
          loading: false
        })
    );
    return () => {
      live = false;
    };
  }, deps);
  return state;
}
