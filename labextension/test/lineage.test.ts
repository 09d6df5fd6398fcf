import { describe, expect, it } from 'vitest';

import { analyzeLineage } from '../src/lineage';
import { ILineageCell } from '../src/types';

const cell = (code: string, count: number): ILineageCell => ({
  execution_count: count,
  code_hash: `h-${code}`,
  tracked: false,
  code
});

describe('lineage', () => {
  it('finds cells in notebook order', () => {
    const report = analyzeLineage(
      [cell('a = 1', 1), cell('b = a', 2)],
      ['a = 1', 'b = a']
    );
    expect(report).toMatchObject({
      changed: 0,
      outOfOrder: false,
      repeated: 0,
      compared: true
    });
    expect(report.entries.map(e => e.position)).toEqual([0, 1]);
  });

  it('warns when a cell ran above the previous one', () => {
    const report = analyzeLineage(
      [cell('b = a', 1), cell('a = 1', 2)],
      ['a = 1', 'b = a']
    );
    expect(report.outOfOrder).toBe(true);
  });

  it('counts cells changed since and cells run twice', () => {
    const report = analyzeLineage(
      [cell('a = 1', 1), cell('a = 1', 2), cell('b = 2', 3)],
      ['a = 1\n', 'b = 3']
    );
    expect(report.changed).toBe(1);
    expect(report.repeated).toBe(1);
    expect(report.outOfOrder).toBe(false);
    expect(report.entries[2].position).toBeNull();
  });

  it('does not compare without the open notebook', () => {
    const report = analyzeLineage([cell('a = 1', 1)], null);
    expect(report.compared).toBe(false);
    expect(report.changed).toBe(0);
  });
});
