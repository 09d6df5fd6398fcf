/**
 * Execution lineage compared with the notebook as it is open now: which
 * lineage cells are still in the notebook unchanged, and whether they ran in
 * the notebook's top-to-bottom order. Presentation only: the lineage itself
 * comes from the run's manifest.
 */

import { ILineageCell } from './types';

export interface ILineageEntry {
  cell: ILineageCell;
  /** Index of the matching cell in the open notebook; null when none matches. */
  position: number | null;
}

export interface ILineageReport {
  entries: ILineageEntry[];
  /** Lineage cells whose code is no longer in the open notebook. */
  changed: number;
  /** Some cell ran after a cell that sits below it in the notebook. */
  outOfOrder: boolean;
  /** Cells re-executed in the kernel (the same code more than once). */
  repeated: number;
  /** Whether the comparison with the notebook could be made at all. */
  compared: boolean;
}

function normalise(code: string): string {
  return code.replace(/\r\n/g, '\n').replace(/\s+$/, '');
}

/**
 * @param lineage the run's lineage, in execution order.
 * @param notebookCells the open notebook's code cells, top to bottom; null
 *   when the notebook is not open here.
 */
export function analyzeLineage(
  lineage: ILineageCell[],
  notebookCells: string[] | null
): ILineageReport {
  const seen = new Map<string, number>();
  let repeated = 0;
  for (const cell of lineage) {
    const n = (seen.get(cell.code_hash) ?? 0) + 1;
    seen.set(cell.code_hash, n);
    if (n > 1) {
      repeated += 1;
    }
  }
  if (notebookCells === null) {
    return {
      entries: lineage.map(cell => ({ cell, position: null })),
      changed: 0,
      outOfOrder: false,
      repeated,
      compared: false
    };
  }
  const positions = new Map<string, number[]>();
  notebookCells.forEach((code, index) => {
    const key = normalise(code);
    const list = positions.get(key) ?? [];
    list.push(index);
    positions.set(key, list);
  });
  let changed = 0;
  let outOfOrder = false;
  let last = -1;
  const entries = lineage.map(cell => {
    if (cell.code === null || cell.code === undefined) {
      return { cell, position: null };
    }
    const candidates = positions.get(normalise(cell.code));
    if (!candidates) {
      changed += 1;
      return { cell, position: null };
    }
    // Prefer the first identical cell at or below the previous one.
    const position = candidates.find(p => p >= last) ?? candidates[0];
    if (position < last) {
      outOfOrder = true;
    }
    last = position;
    return { cell, position };
  });
  return { entries, changed, outOfOrder, repeated, compared: true };
}
