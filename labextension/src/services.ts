/**
 * What the panel's views need from JupyterLab, as one interface: the plugin
 * provides the real thing, unit tests a fake. Keeps the views free of the
 * application object.
 */

import type { DotnbApi } from './api';
import type { RunsModel } from './model';
import type { RemotesModel } from './remotes';

/** What the sidebar shows. */
export type View =
  | { kind: 'list' }
  | { kind: 'details'; id: string }
  | { kind: 'compare'; ids: [string, string] }
  | { kind: 'chart'; metric: string | null };

export interface IPanelServices {
  model: RunsModel;
  /** Team remotes: push and pull. */
  remotes: RemotesModel;
  api: DotnbApi;
  /** Syntax-highlight Python into `host` (text nodes and classed spans). */
  highlight(code: string, host: HTMLElement): Promise<void>;
  /**
   * Render a Vega-Lite spec into `host` with JupyterLab's renderer; `onSelect`
   * gets the `id` field of a clicked datum. Returns a function that disposes it.
   */
  renderChart(
    spec: Record<string, unknown>,
    host: HTMLElement,
    onSelect?: (id: string) => void
  ): () => void;
  /** Code cells of the notebook at `path` if it is open here, else null. */
  notebookCells(path: string | null): string[] | null;
  /** Open the restore dialog for a run. */
  restore(id: string): void;
  /** Open the Experiments view in the main area (absent in tests). */
  openExperiments?(): void;
  /** Ask for a sweep over a run's params and start it (absent in tests). */
  sweep?(id: string): void;
  /** Open the lineage view of a run or a file in the main area (absent in tests). */
  openLineage?(target: { run?: string; path?: string }): void;
  /** Open a file (root-relative path) in JupyterLab. */
  openPath(path: string): void;
  navigate(view: View): void;
  back(): void;
}
