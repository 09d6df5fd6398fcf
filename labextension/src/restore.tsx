/**
 * The restore flow: a dialog with the API's dry-run plan (which files change,
 * their sizes; data, notebook or both) → restore → reload the affected open
 * documents from disk → say where the checkpoint is, with an Undo that
 * restores that checkpoint.  The Kernel variables option is carried out by the
 * server within the same request (the notebook's running kernel checks them
 * out after the files); the dialog only shows what the kernel said.
 */

import { Dialog, showDialog } from '@jupyterlab/apputils';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { DotnbApi } from './api';
import { Loading, Message } from './components/common';
import { DataTable } from './components/DataTable';
import * as fmt from './format';
import {
  IKernelCheckoutRequest,
  IKernelCheckoutResult,
  IKernelState,
  IPlanItem,
  IRestoreOptions,
  IRestorePlan,
  IRestoreResult,
  IRunSummary
} from './types';

const ACTION_LABEL: Record<IPlanItem['action'], string> = {
  unchanged: 'already as in the run',
  create: 'create',
  overwrite: 'overwrite',
  remove: 'remove'
};

/** Open documents (among `paths`) with unsaved changes. */
function dirtyPaths(docManager: IDocumentManager, paths: string[]): string[] {
  return paths.filter(path => {
    const widget = docManager.findWidget(path);
    const context = widget ? docManager.contextForWidget(widget) : undefined;
    return !!context?.model.dirty;
  });
}

export function PlanTable(props: {
  plan: IRestorePlan;
  showUnchanged?: boolean;
}): JSX.Element {
  const { plan } = props;
  const items = plan.items.filter(
    i => props.showUnchanged || i.action !== 'unchanged'
  );
  const unchanged =
    plan.items.length - plan.items.filter(i => i.action !== 'unchanged').length;
  return (
    <>
      {items.length ? (
        <DataTable
          className="jp-dotnb-PlanTable"
          columns={[
            { header: 'Path', value: i => i.path, title: i => i.path },
            { header: 'Kind', value: i => i.role, fit: 'nowrap', width: '5em' },
            {
              header: 'Action',
              value: i => ACTION_LABEL[i.action],
              fit: 'nowrap',
              width: '6.5em'
            },
            {
              header: 'Size',
              value: i => (i.target ? fmt.bytes(i.size) : ''),
              fit: 'nowrap',
              width: '4.5em'
            }
          ]}
          rows={items}
          rowKey={i => i.path}
          rowData={i => ({ path: i.path, action: i.action })}
        />
      ) : (
        <div className="jp-dotnb-Empty">
          Nothing to change: the files already match this run.
        </div>
      )}
      {unchanged > 0 && !props.showUnchanged && (
        <div className="jp-dotnb-Note">
          {fmt.plural(unchanged, 'file')} already as in the run.
        </div>
      )}
      {plan.skipped.length > 0 && (
        <Message kind="warning">
          Not restored (no stored content):{' '}
          {plan.skipped.map(s => `${s.path} (${s.reason})`).join('; ')}
        </Message>
      )}
    </>
  );
}

/** What the dialog's Kernel variables option asks for. */
export interface IKernelChoice {
  checkout: boolean;
  trust: boolean;
}

/**
 * The Kernel variables option: what the run recorded of its kernel's
 * variables, to bring back into the notebook's kernel (`%dotnb checkout`).
 */
export function KernelStateOption(props: {
  state: IKernelState;
  choice: IKernelChoice;
  onChange: (choice: IKernelChoice) => void;
}): JSX.Element {
  const { state, choice } = props;
  const names = Object.keys(state.variables).sort();
  const stored = names.filter(n => state.variables[n].status === 'stored');
  return (
    <div className="jp-dotnb-KernelState">
      <label className="jp-dotnb-Check">
        <input
          type="checkbox"
          checked={choice.checkout}
          onChange={e =>
            props.onChange({ ...choice, checkout: e.target.checked })
          }
        />{' '}
        Kernel variables: bring back {fmt.plural(stored.length, 'variable')}{' '}
        into the notebook&apos;s kernel (only those that differ are loaded; the
        current ones are kept for Undo)
      </label>
      {choice.checkout && (
        <>
          <DataTable
            className="jp-dotnb-KernelStateTable"
            columns={[
              { header: 'Name', value: n => n, title: n => n },
              {
                header: 'Type',
                value: n => state.variables[n].type ?? '',
                fit: 'nowrap'
              },
              {
                header: 'Size',
                value: n =>
                  state.variables[n].size === undefined
                    ? ''
                    : fmt.bytes(state.variables[n].size),
                fit: 'nowrap',
                width: '5em'
              },
              {
                header: 'Comes back',
                value: n =>
                  state.variables[n].status === 'stored'
                    ? 'loaded'
                    : `not stored: ${state.variables[n].reason ?? state.variables[n].status}`,
                title: n => state.variables[n].reason ?? ''
              }
            ]}
            rows={names}
            rowKey={n => n}
          />
          <label className="jp-dotnb-Check">
            <input
              type="checkbox"
              checked={choice.trust}
              onChange={e =>
                props.onChange({ ...choice, trust: e.target.checked })
              }
            />{' '}
            Load them even though they were recorded by{' '}
            {state.author ?? 'someone else'} if that is not you here (loading a
            value runs code from it)
          </label>
        </>
      )}
    </div>
  );
}

function PlanBody(props: {
  api: DotnbApi;
  runId: string;
  hasNotebook: boolean;
  docManager: IDocumentManager;
  onChange: (options: IRestoreOptions, plan: IRestorePlan | null) => void;
  onKernelChange: (choice: IKernelChoice | null) => void;
}): JSX.Element {
  const [kernelState, setKernelState] = React.useState<IKernelState | null>(
    null
  );
  const [kernel, setKernel] = React.useState<IKernelChoice>({
    checkout: false,
    trust: false
  });
  React.useEffect(() => {
    let live = true;
    props.api.kernelState(props.runId).then(
      state => live && setKernelState(state),
      () => undefined // no state, or an older server: no option
    );
    return () => {
      live = false;
    };
  }, [props.api, props.runId]);
  React.useEffect(
    () =>
      props.onKernelChange(kernelState && props.hasNotebook ? kernel : null),
    [kernel, kernelState]
  );
  const [data, setData] = React.useState(true);
  const [notebook, setNotebook] = React.useState(props.hasNotebook);
  const [plan, setPlan] = React.useState<IRestorePlan | null>(null);
  const [error, setError] = React.useState<string | null>(null);
  const { api, runId, onChange } = props;

  React.useEffect(() => {
    let live = true;
    setPlan(null);
    setError(null);
    const options = { data, notebook, dry_run: true };
    onChange({ ...options, dry_run: false }, null);
    if (!data && !notebook) {
      setError('Choose data files, the notebook, or both.');
      return;
    }
    api.restore(runId, options).then(
      result => {
        if (live) {
          setPlan(result.plan);
          onChange({ ...options, dry_run: false }, result.plan);
        }
      },
      err => live && setError(err instanceof Error ? err.message : String(err))
    );
    return () => {
      live = false;
    };
  }, [api, runId, data, notebook, onChange]);

  const changing = plan ? plan.items.filter(i => i.action !== 'unchanged') : [];
  const dirty = dirtyPaths(
    props.docManager,
    changing.map(i => i.path)
  );
  return (
    <div className="jp-dotnb-RestorePlan">
      <div className="jp-dotnb-FilterRow">
        <label className="jp-dotnb-Check">
          <input
            type="checkbox"
            checked={data}
            onChange={e => setData(e.target.checked)}
          />{' '}
          Data files
        </label>
        <label className="jp-dotnb-Check">
          <input
            type="checkbox"
            checked={notebook}
            disabled={!props.hasNotebook}
            onChange={e => setNotebook(e.target.checked)}
          />{' '}
          Notebook
        </label>
      </div>
      {kernelState && props.hasNotebook && (
        <KernelStateOption
          state={kernelState}
          choice={kernel}
          onChange={setKernel}
        />
      )}
      {error && <Message kind="error">{error}</Message>}
      {!error && !plan && <Loading text="Computing the plan…" />}
      {plan && <PlanTable plan={plan} />}
      {plan && changing.length > 0 && (
        <div className="jp-dotnb-Note">
          {fmt.bytes(plan.bytes_to_write)} to write. The current content of
          every file it changes is saved first as a checkpoint, so this restore
          can be undone.
        </div>
      )}
      {dirty.length > 0 && (
        <Message kind="warning">
          Unsaved changes in {dirty.join(', ')} are saved (and so checkpointed)
          before restoring.
        </Message>
      )}
    </div>
  );
}

class PlanWidget
  extends ReactWidget
  implements Dialog.IBodyWidget<IRestoreOptions>
{
  constructor(
    private readonly _props: {
      api: DotnbApi;
      runId: string;
      hasNotebook: boolean;
      docManager: IDocumentManager;
    }
  ) {
    super();
    this.addClass('jp-dotnb-RestoreDialog');
  }

  options: IRestoreOptions = { data: true, notebook: true, dry_run: false };
  plan: IRestorePlan | null = null;
  /** The Kernel variables option; null when the run recorded no kernel state. */
  kernel: IKernelChoice | null = null;

  getValue(): IRestoreOptions {
    return this.options;
  }

  protected render(): JSX.Element {
    return (
      <PlanBody
        {...this._props}
        onChange={this._onChange}
        onKernelChange={choice => {
          this.kernel = choice;
        }}
      />
    );
  }

  private _onChange = (options: IRestoreOptions, plan: IRestorePlan | null) => {
    this.options = options;
    this.plan = plan;
  };
}

export interface IRestoreDeps {
  api: DotnbApi;
  docManager: IDocumentManager;
  /** Called after files changed on disk (e.g. to refresh views). */
  onRestored?: (result: IRestoreResult) => void;
}

/** Reload every open document whose file the restore wrote. */
async function revertWritten(
  docManager: IDocumentManager,
  written: string[]
): Promise<string[]> {
  const reverted: string[] = [];
  for (const path of written) {
    const widget = docManager.findWidget(path);
    const context = widget ? docManager.contextForWidget(widget) : undefined;
    if (context) {
      try {
        await context.revert();
        reverted.push(path);
      } catch (error) {
        console.warn(`dotnb: could not reload ${path}:`, error);
      }
    }
  }
  return reverted;
}

async function saveDirty(
  docManager: IDocumentManager,
  paths: string[]
): Promise<void> {
  for (const path of dirtyPaths(docManager, paths)) {
    const widget = docManager.findWidget(path);
    const context = widget ? docManager.contextForWidget(widget) : undefined;
    await context?.save();
  }
}

/** What the notebook's kernel said to the checkout (plain text, never HTML). */
export function KernelResult(props: {
  kernel: IKernelCheckoutResult;
}): JSX.Element {
  const { kernel } = props;
  return (
    <div
      className="jp-dotnb-KernelResult"
      data-checked-out={kernel.checked_out ? 'true' : 'false'}
    >
      <p>Kernel variables:</p>
      {kernel.report && <pre>{kernel.report}</pre>}
      {!kernel.checked_out && kernel.reason && (
        <Message kind="warning">
          Not {kernel.action === 'undo' ? 'undone' : 'checked out'}:{' '}
          {kernel.reason}
        </Message>
      )}
    </div>
  );
}

export function ResultBody(props: {
  result: IRestoreResult;
  reverted: string[];
  what: string;
}): JSX.Element {
  const { result } = props;
  return (
    <div className="jp-dotnb-RestoreResult">
      {result.kernel && <KernelResult kernel={result.kernel} />}
      <p>
        {props.what}: {fmt.plural(result.written.length, 'file')} written
        {props.reverted.length
          ? `, ${props.reverted.join(', ')} reloaded from disk`
          : ''}
        .
      </p>
      {result.written.length > 0 && (
        <ul className="jp-dotnb-Written">
          {result.written.map(path => (
            <li key={path}>{path}</li>
          ))}
        </ul>
      )}
      {result.checkpoint ? (
        <p>
          What was there before is saved as checkpoint{' '}
          <strong className="jp-dotnb-CheckpointNumber">
            #{result.checkpoint_number}
          </strong>{' '}
          (in the run list, kind “checkpoint”;{' '}
          <code className="jp-dotnb-CheckpointId">
            dotnb restore {result.checkpoint}
          </code>{' '}
          from a terminal).
        </p>
      ) : (
        <p>Nothing needed changing, so no checkpoint was made.</p>
      )}
    </div>
  );
}

/** Restore `run` (or undo with a checkpoint) with the plan dialog first. */
export async function restoreWithDialog(
  deps: IRestoreDeps,
  run: Pick<IRunSummary, 'id' | 'number' | 'name' | 'notebook' | 'kind'>
): Promise<void> {
  const body = new PlanWidget({
    api: deps.api,
    runId: run.id,
    hasNotebook: !!run.notebook || run.kind === 'checkpoint',
    docManager: deps.docManager
  });
  const title =
    run.kind === 'checkpoint'
      ? `Restore checkpoint #${run.number}`
      : `Restore run ${fmt.clip(fmt.runTitle(run), 60)}`;
  const answer = await showDialog({
    title,
    body,
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Restore' })],
    defaultButton: 1
  });
  if (!answer.button.accept) {
    return;
  }
  const options = answer.value ?? body.options;
  const plan = body.plan;
  const kernel = kernelRequest(body.kernel, run.notebook);
  await runRestore(
    deps,
    run.id,
    kernel ? { ...options, kernel } : options,
    plan,
    title.replace(/^Restore/, 'Restored')
  );
}

/**
 * The restore's `kernel` option for the dialog's Kernel variables choice: the
 * server has the notebook's running kernel check the variables out, after the
 * files.  Null when not asked (or the run has no notebook).
 */
export function kernelRequest(
  choice: IKernelChoice | null,
  notebook: string | null | undefined
): IKernelCheckoutRequest | null {
  return choice?.checkout && notebook
    ? { checkout: true, trust: choice.trust, notebook }
    : null;
}

/**
 * Restore (the files, and with `options.kernel` the variables, all through the
 * REST API), reload what it wrote, and show the result with an Undo.
 */
export async function runRestore(
  deps: IRestoreDeps,
  runId: string,
  options: IRestoreOptions,
  plan: IRestorePlan | null,
  what: string
): Promise<void> {
  let result: IRestoreResult;
  let reverted: string[];
  try {
    if (plan) {
      // Unsaved edits would be lost on reload: save them, so the checkpoint has them.
      await saveDirty(
        deps.docManager,
        plan.items.filter(i => i.action !== 'unchanged').map(i => i.path)
      );
    }
    result = await deps.api.restore(runId, { ...options, dry_run: false });
    reverted = await revertWritten(deps.docManager, result.written);
  } catch (error) {
    await showDialog({
      title: 'Restore failed',
      body: (
        <Message kind="error">
          {error instanceof Error ? error.message : String(error)}
        </Message>
      ),
      buttons: [Dialog.okButton({ label: 'Close' })]
    });
    return;
  }
  deps.onRestored?.(result);
  const checkpoint = result.checkpoint;
  // Only a checkout that happened has something for Undo to put back.
  const undoKernel =
    result.kernel?.action === 'checkout' && result.kernel.checked_out
      ? result.kernel.notebook
      : null;
  const canUndo = !!checkpoint || !!undoKernel;
  const answer = await showDialog({
    title: what,
    body: <ResultBody result={result} reverted={reverted} what={what} />,
    buttons: canUndo
      ? [
          Dialog.warnButton({
            label: 'Undo',
            className: 'jp-dotnb-UndoButton'
          }),
          Dialog.okButton({ label: 'Close' })
        ]
      : [Dialog.okButton({ label: 'Close' })],
    defaultButton: canUndo ? 1 : 0
  });
  if (canUndo && answer.button.label === 'Undo') {
    // Undo restores everything the checkpoint saved (data and notebook), and puts
    // back the variables the checkout replaced (with no file checkpoint, only those).
    await runRestore(
      deps,
      checkpoint ?? runId,
      {
        data: !!checkpoint,
        notebook: !!checkpoint,
        dry_run: false,
        ...(undoKernel ? { kernel: { undo: true, notebook: undoKernel } } : {})
      },
      null,
      'Restore undone'
    );
  }
}
