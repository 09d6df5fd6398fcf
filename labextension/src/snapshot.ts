/**
 * Live notebook snapshots: when a tracked cell finishes, send the notebook as
 * it is in JupyterLab (unsaved edits included) to its run, so restoring brings
 * back what the user actually had. The API keeps the first snapshot of a run
 * and answers 409 to any other, which is expected and ignored.
 */

import { ICodeCellModel } from '@jupyterlab/cells';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';

import { ApiError, DotnbApi } from './api';
import { RUN_MIME_TYPE } from './constants';
import { IRunBundle } from './types';

/** Run ids in a cell's outputs (the bundles tracked cells display). */
export function runIdsInOutputs(outputs: ICodeCellModel['outputs']): string[] {
  const ids: string[] = [];
  for (let i = 0; i < outputs.length; i++) {
    const bundle = outputs.get(i).data[RUN_MIME_TYPE] as unknown as
      IRunBundle | undefined;
    if (bundle && typeof bundle.id === 'string') {
      ids.push(bundle.id);
    }
  }
  return ids;
}

export function trackSnapshots(
  api: DotnbApi,
  tracker: INotebookTracker
): () => void {
  const sent = new Set<string>();
  const onExecuted = (
    _: unknown,
    args: { notebook: unknown; cell: { model: { type: string } } }
  ) => {
    const cellModel = args.cell.model;
    if (cellModel.type !== 'code') {
      return;
    }
    const ids = runIdsInOutputs((cellModel as ICodeCellModel).outputs).filter(
      id => !sent.has(id)
    );
    if (!ids.length) {
      return;
    }
    const panel = tracker.find(p => p.content === args.notebook);
    if (!panel || !panel.context.model) {
      return;
    }
    const notebook = panel.context.model.toJSON();
    for (const id of ids) {
      sent.add(id);
      api.attachNotebook(id, notebook).catch(error => {
        if (!(error instanceof ApiError && error.status === 409)) {
          console.warn(
            `dotnb: could not attach the notebook to run ${id}:`,
            error
          );
        }
      });
    }
  };
  NotebookActions.executed.connect(onExecuted);
  return () => {
    NotebookActions.executed.disconnect(onExecuted);
  };
}
