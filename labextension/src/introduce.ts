/** The Runs panel shown once to a new user, so it is found. */

import type { IStateDB } from '@jupyterlab/statedb';

const INTRODUCED_KEY = 'dotnb:runs-panel-introduced';

/**
 * Run `show` the first time this workspace starts with dotnb. JupyterLab's
 * state database keeps the mark with the workspace; without one (or when it
 * fails) the panel stays one click away rather than opening every time.
 */
export async function introduceOnce(
  state: Pick<IStateDB, 'fetch' | 'save'> | null,
  show: () => void
): Promise<boolean> {
  if (!state) {
    return false;
  }
  try {
    if ((await state.fetch(INTRODUCED_KEY)) !== undefined) {
      return false;
    }
    await state.save(INTRODUCED_KEY, new Date().toISOString());
  } catch {
    return false;
  }
  show();
  return true;
}
