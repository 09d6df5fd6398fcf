import { describe, expect, it } from 'vitest';

import { introduceOnce } from '../src/introduce';

/** An in-memory stand-in for JupyterLab's state database. */
function stateDb(fail = false) {
  const saved = new Map<string, unknown>();
  return {
    saved,
    fetch: async (id: string) => {
      if (fail) {
        throw new Error('state database unavailable');
      }
      return saved.get(id) as any;
    },
    save: async (id: string, value: any) => {
      saved.set(id, value);
    }
  };
}

describe('introduceOnce', () => {
  it('opens the panel the first time a workspace starts, and never again', async () => {
    const state = stateDb();
    let shown = 0;
    expect(await introduceOnce(state, () => shown++)).toBe(true);
    expect(await introduceOnce(state, () => shown++)).toBe(false);
    expect(shown).toBe(1);
    expect([...state.saved.keys()]).toEqual(['dotnb:runs-panel-introduced']);
  });

  it('stays quiet without a state database or when it fails', async () => {
    let shown = 0;
    expect(await introduceOnce(null, () => shown++)).toBe(false);
    expect(await introduceOnce(stateDb(true), () => shown++)).toBe(false);
    expect(shown).toBe(0);
  });
});
