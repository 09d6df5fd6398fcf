/**
 * The Experiments grid's rows: a fixed pool of row elements whose text and
 * position are set in place as the grid scrolls, without React. A fast scroll
 * brings a new set of runs into view on every frame; reconciling them through
 * React cost more than a frame's budget (element trees built and diffed,
 * garbage for the collector), where setting a few hundred text nodes costs a
 * millisecond or two. React still renders the grid, its header and toolbar.
 *
 * Everything from a run is set as text (`Text.data`, `textContent`,
 * attributes), never as HTML.
 */

import type { TranslationBundle } from '@jupyterlab/translation';

import {
  cellText,
  delta,
  formatDelta,
  IExperimentColumn
} from '../experiments';
import { IRunSummary } from '../types';

export const ROW_HEIGHT = 26;
export const SELECT_WIDTH = 52;

/** What the rows show: the grid's state when they are drawn. */
export interface IRowsView {
  /** Rows `first`…`last` (inclusive) are drawn; none when `last < first`. */
  first: number;
  last: number;
  /** The columns, and those held: `columns[from, to)`, after `offset` pixels left out. */
  columns: IExperimentColumn[];
  from: number;
  to: number;
  offset: number;
  /** Row width in pixels (every column). */
  width: number;
  active: number;
  baseline: IRunSummary | null;
  /** The grouping column's key (null: not grouped). */
  grouped: string | null;
  rowAt(index: number): IRunSummary | undefined;
  isSelected(id: string): boolean;
  startsGroup(index: number): boolean;
}

interface ICell {
  el: HTMLDivElement;
  text: Text;
  delta: HTMLSpanElement | null;
  // What the cell shows now: it is written only when this changes.
  key: string;
  colindex: number;
  shown: string;
  change: string;
  margin: number;
  // The run, baseline and hiding the text and change were worked out for:
  // worked out again only when one of them changes, not on every frame.
  run: IRunSummary | undefined | null;
  base: IRunSummary | null;
  hidden: boolean;
}

interface ISlot {
  el: HTMLDivElement;
  checkbox: HTMLInputElement;
  select: HTMLDivElement;
  mark: HTMLSpanElement | null;
  cells: ICell[];
  // What the row shows now (index -1: to be drawn afresh): written only on change.
  index: number;
  /** The last render() that drew this row. */
  frame: number;
  run: IRunSummary | undefined | null;
  classes: string;
  width: number;
  selected: boolean | null;
  baseline: boolean;
}

/**
 * A row's classes by its state, one string per combination made once: every
 * row in view is drawn on every frame, and building its class string each
 * time left garbage for the collector. Bits: active 1, selected 2, baseline
 * 4, loading 8, starts a group 16.
 */
const ROW_CLASSES = Array.from({ length: 32 }, (_, bits) =>
  [
    'jp-dotnb-XRow',
    bits & 1 ? 'jp-mod-active' : '',
    bits & 2 ? 'jp-mod-selected' : '',
    bits & 4 ? 'jp-mod-baseline' : '',
    bits & 8 ? 'jp-mod-loading' : '',
    bits & 16 ? 'jp-mod-groupStart' : ''
  ]
    .filter(Boolean)
    .join(' ')
);

export class RowPool {
  constructor(
    readonly body: HTMLElement,
    readonly trans: TranslationBundle,
    readonly handlers: {
      onToggle: (run: IRunSummary) => void;
      onActivate: (index: number) => void;
    }
  ) {
    body.addEventListener('click', this._onClick);
    body.addEventListener('change', this._onChange);
    // Translated once: `trans.__` on every row scrolled in (its placeholders
    // replaced by regular expressions) made a quarter of a fast scroll's garbage.
    this._selectLabel = trans.__('Select run #%1', '%1');
    this._loadingLabel = trans.__('Loading…');
  }

  /** The row an event happened in: its slot knows the row's index and run. */
  private _slotOf(target: EventTarget | null): ISlot | undefined {
    const row = (target as Element | null)?.closest?.('[role="row"]');
    return this._slots.find(s => s.el === row);
  }

  private _onClick = (event: Event) => {
    const slot = this._slotOf(event.target);
    if (slot) {
      this.handlers.onActivate(slot.index);
    }
  };

  private _onChange = (event: Event) => {
    const slot = this._slotOf(event.target);
    if (slot?.run && event.target === slot.checkbox) {
      this.handlers.onToggle(slot.run);
    }
  };

  /**
   * Draw rows `view.first`…`view.last`. A row keeps its element while it stays
   * in view (slot `index % size`), so only rows scrolled in are written; rows
   * out of the range are taken out of the document.
   */
  render(view: IRowsView): void {
    const count = Math.max(0, view.last - view.first + 1);
    // Enough slots for every row drawn: a slot is never wanted by two rows.
    const size = Math.max(this._slots.length, count);
    while (this._slots.length < size) {
      this._slots.push(this._slot());
    }
    if (size !== this._size) {
      // New slot numbering: every row is drawn afresh.
      this._size = size;
      this._slots.forEach(s => (s.index = -1));
    }
    const frame = ++this._frame;
    for (let i = view.first; i <= view.last; i++) {
      const slot = this._slots[i % size];
      slot.frame = frame;
      this._draw(slot, i, view);
      if (slot.el.parentNode !== this.body) {
        this.body.appendChild(slot.el);
      }
    }
    for (const slot of this._slots) {
      if (slot.frame !== frame && slot.el.parentNode) {
        slot.el.remove();
        slot.index = -1;
        // Nor does it hold on to runs the model may have dropped.
        slot.run = null;
        slot.cells.forEach(c => (c.run = null));
      }
    }
  }

  dispose(): void {
    this.body.removeEventListener('click', this._onClick);
    this.body.removeEventListener('change', this._onChange);
    this._slots.forEach(s => s.el.remove());
    this._slots = [];
  }

  private _slot(): ISlot {
    const el = document.createElement('div');
    el.setAttribute('role', 'row');
    const select = document.createElement('div');
    select.setAttribute('role', 'gridcell');
    select.setAttribute('aria-colindex', '1');
    select.className = 'jp-dotnb-XCell jp-dotnb-XSelect';
    select.style.width = `${SELECT_WIDTH}px`;
    const checkbox = document.createElement('input');
    checkbox.type = 'checkbox';
    checkbox.tabIndex = -1;
    select.appendChild(checkbox);
    el.appendChild(select);
    return {
      el,
      checkbox,
      select,
      mark: null,
      cells: [],
      index: -1,
      frame: 0,
      run: null,
      classes: '',
      width: -1,
      selected: null,
      baseline: false
    };
  }

  private _draw(slot: ISlot, index: number, view: IRowsView): void {
    const run = view.rowAt(index);
    const { el, checkbox } = slot;
    if (slot.index !== index) {
      el.style.transform = `translateY(${index * ROW_HEIGHT}px)`;
      el.setAttribute('aria-rowindex', String(index + 2));
    }
    if (slot.width !== view.width) {
      el.style.width = `${view.width}px`;
      slot.width = view.width;
    }
    const selected = !!run && view.isSelected(run.id);
    const isBaseline = !!run && view.baseline?.id === run.id;
    const startsGroup = view.grouped !== null && view.startsGroup(index);
    // A row whose page is loading keeps the shape of a loaded one (empty
    // cells), and is filled in place when the run arrives.
    const classes =
      ROW_CLASSES[
        (index === view.active ? 1 : 0) |
          (selected ? 2 : 0) |
          (isBaseline ? 4 : 0) |
          (run ? 0 : 8) |
          (startsGroup ? 16 : 0)
      ];
    if (classes !== slot.classes) {
      el.className = classes;
      slot.classes = classes;
    }
    if (slot.run !== run || slot.index !== index) {
      if (run) {
        el.id = `jp-dotnb-xrow-${run.id}`;
        el.dataset.runId = run.id;
        el.removeAttribute('aria-busy');
      } else {
        el.removeAttribute('id');
        delete el.dataset.runId;
        el.setAttribute('aria-busy', 'true');
      }
      const label = run
        ? this._selectLabel.replace('%1', String(run.number))
        : this._loadingLabel;
      checkbox.setAttribute('aria-label', label);
      checkbox.title = label;
      checkbox.disabled = !run;
    }
    if (slot.selected !== selected || checkbox.checked !== selected) {
      el.setAttribute('aria-selected', String(selected));
      checkbox.checked = selected;
      slot.selected = selected;
    }
    if (isBaseline !== slot.baseline) {
      if (isBaseline) {
        if (!slot.mark) {
          slot.mark = document.createElement('span');
          slot.mark.className = 'jp-dotnb-XBaselineMark';
          slot.mark.title = this.trans.__('baseline');
          slot.mark.textContent = this.trans.__('base');
        }
        slot.select.appendChild(slot.mark);
      } else {
        slot.mark?.remove();
      }
      slot.baseline = isBaseline;
    }
    this._drawCells(slot, run, view, startsGroup);
    slot.index = index;
    slot.run = run;
  }

  private _drawCells(
    slot: ISlot,
    run: IRunSummary | undefined,
    view: IRowsView,
    startsGroup: boolean
  ): void {
    const count = view.to - view.from;
    while (slot.cells.length < count) {
      const el = document.createElement('div');
      el.setAttribute('role', 'gridcell');
      const text = document.createTextNode('');
      el.appendChild(text);
      slot.el.appendChild(el);
      slot.cells.push({
        el,
        text,
        delta: null,
        key: '',
        colindex: 0,
        shown: '',
        change: '',
        margin: 0,
        run: null,
        base: null,
        hidden: false
      });
    }
    while (slot.cells.length > count) {
      slot.cells.pop()!.el.remove();
    }
    for (let i = 0; i < count; i++) {
      const column = view.columns[view.from + i];
      const cell = slot.cells[i];
      const newColumn = cell.key !== column.key;
      if (newColumn) {
        cell.el.className = `jp-dotnb-XCell ${column.numeric ? 'jp-mod-numeric' : ''} jp-dotnb-XCol-${column.kind}`;
        cell.el.style.width = `${column.width}px`;
        cell.key = column.key;
      }
      if (cell.colindex !== view.from + i + 2) {
        cell.colindex = view.from + i + 2;
        cell.el.setAttribute('aria-colindex', String(cell.colindex));
      }
      const margin = i === 0 ? view.offset : 0;
      if (margin !== cell.margin) {
        cell.el.style.marginLeft = margin ? `${margin}px` : '';
        cell.margin = margin;
      }
      // Within a group, the grouping column is shown on its first row only.
      const hidden = column.key === view.grouped && !startsGroup;
      const sameRun = !newColumn && cell.run === run;
      // A run is formatted when it comes into a cell, not again while it stays.
      if (!sameRun || hidden !== cell.hidden) {
        const text = run && !hidden ? cellText(run, column) : '';
        if (text !== cell.shown) {
          cell.text.data = text;
          cell.el.title = text;
          cell.shown = text;
        }
        cell.hidden = hidden;
      }
      if (sameRun && cell.base === view.baseline) {
        continue; // the same delta too
      }
      cell.run = run;
      cell.base = view.baseline;
      const change = run ? delta(run, view.baseline, column) : null;
      const changeText =
        change !== null && change !== 0 ? formatDelta(change) : '';
      if (changeText !== cell.change) {
        if (changeText) {
          if (!cell.delta) {
            cell.delta = document.createElement('span');
          }
          cell.delta.className = `jp-dotnb-XDelta ${change! > 0 ? 'jp-mod-up' : 'jp-mod-down'}`;
          cell.delta.textContent = changeText;
          cell.el.appendChild(cell.delta);
        } else {
          cell.delta?.remove();
        }
        cell.change = changeText;
      }
    }
  }

  private _selectLabel: string;
  private _loadingLabel: string;
  private _slots: ISlot[] = [];
  private _size = 0;
  private _frame = 0;
}
