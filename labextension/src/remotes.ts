/**
 * Team remotes in the sidebar: which remotes the store has (the Push and Pull
 * buttons show only when there is one), the remote they use, and the state of
 * a push or pull (busy, then a message with its outcome or error).
 */

import { ISignal, Signal } from '@lumino/signaling';

import { ApiError, DotnbApi } from './api';
import { pullSummary, pushSummary } from './format';
import { IRemote } from './types';

export type Transfer = 'push' | 'pull';

/** The outcome of the last push or pull, for the message under the buttons. */
export interface ITransferNote {
  kind: 'info' | 'warning' | 'error';
  text: string;
  /** Runs the transfer left alone, one line each. */
  details: string[];
}

/** What the remotes model needs from the run list: reload it after a pull. */
export interface IRefreshable {
  refresh(): Promise<void>;
}

function message(error: unknown): string {
  if (error instanceof ApiError || error instanceof Error) {
    return error.message;
  }
  return String(error);
}

export class RemotesModel {
  constructor(
    readonly api: DotnbApi,
    private readonly _runs: IRefreshable | null = null
  ) {}

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get remotes(): IRemote[] {
    return this._remotes;
  }

  /** Whether push and pull are offered: the store has at least one remote. */
  get available(): boolean {
    return this._remotes.length > 0;
  }

  /** The remote the buttons use: the chosen one, else the default. */
  get selected(): IRemote | null {
    return (
      this._remotes.find(r => r.name === this._chosen) ??
      this._remotes.find(r => r.default) ??
      this._remotes[0] ??
      null
    );
  }

  /** The transfer under way, if any. */
  get busy(): Transfer | null {
    return this._busy;
  }

  get note(): ITransferNote | null {
    return this._note;
  }

  select(name: string): void {
    this._chosen = name;
    this._emit();
  }

  dismiss(): void {
    this._note = null;
    this._emit();
  }

  /**
   * Reload the remotes (they are added with the CLI, so this runs whenever the
   * list is shown). A server that cannot list them offers no push or pull.
   */
  async load(): Promise<void> {
    try {
      const reply = await this.api.remotes();
      this._remotes = Array.isArray(reply?.remotes) ? reply.remotes : [];
    } catch {
      this._remotes = [];
    }
    this._emit();
  }

  /** Send every run (or `runs`) to the selected remote. */
  push(runs?: string[]): Promise<void> {
    return this._run('push', async remote => {
      const result = await this.api.push(runs ? { remote, runs } : { remote });
      return pushSummary(result);
    });
  }

  /** Fetch the selected remote's new runs, then reload the list. */
  pull(): Promise<void> {
    return this._run('pull', async remote => {
      const result = await this.api.pull({ remote });
      return pullSummary(result);
    });
  }

  dispose(): void {
    this._disposed = true;
    Signal.clearData(this);
  }

  private async _run(
    kind: Transfer,
    send: (remote: string | undefined) => Promise<{
      text: string;
      problems: string[];
    }>
  ): Promise<void> {
    if (this._busy) {
      return;
    }
    this._busy = kind;
    this._note = null;
    this._emit();
    try {
      const summary = await send(this.selected?.name);
      this._note = {
        kind: summary.problems.length ? 'warning' : 'info',
        text: summary.text,
        details: summary.problems
      };
    } catch (error) {
      const verb = kind === 'push' ? 'Push' : 'Pull';
      this._note = {
        kind: 'error',
        text: `${verb} failed: ${message(error)}`,
        details: []
      };
      // A remote removed or renamed with the CLI meanwhile: show the current ones.
      if (error instanceof ApiError && error.status === 404) {
        void this.load();
      }
    } finally {
      this._busy = null;
      this._emit();
    }
    // Pulled runs may have arrived (even before a failure): show them.
    if (kind === 'pull' && this._runs) {
      await this._runs.refresh();
    }
  }

  private _emit(): void {
    if (!this._disposed) {
      this._changed.emit();
    }
  }

  private _busy: Transfer | null = null;
  private _changed = new Signal<this, void>(this);
  private _chosen: string | null = null;
  private _disposed = false;
  private _note: ITransferNote | null = null;
  private _remotes: IRemote[] = [];
}
