import { Signal } from '@lumino/signaling';

import { RunsModel } from '../src/model';
import { RemotesModel } from '../src/remotes';
import { IPanelServices } from '../src/services';
import {
  IEventsReply,
  IPullOptions,
  IPullResult,
  IPushOptions,
  IPushResult,
  IRemote,
  IRunDiff,
  IRunFileStatus,
  IRunFolder,
  IRunManifest,
  IRunsPage,
  IManifestEntry,
  IRunSummary,
  isFolder
} from '../src/types';

/** An in-memory stand-in for DotnbApi, with the same paging rules as the server. */
export class FakeApi {
  runs_: IRunSummary[] = [];
  manifests = new Map<string, IRunManifest>();
  diffs = new Map<string, IRunDiff>();
  requests: string[] = [];
  cursor = 0;
  pendingEvents: ((reply: IEventsReply) => void)[] = [];

  async runs(query: any): Promise<IRunsPage> {
    this.requests.push(`runs ${JSON.stringify(query)}`);
    let rows = [...this.runs_].sort((a, b) => (a.id < b.id ? 1 : -1));
    if (query.notebook) {
      rows = rows.filter(r => r.notebook === query.notebook);
    }
    if (query.status) {
      rows = rows.filter(r => r.status === query.status);
    }
    if (query.q) {
      rows = rows.filter(r => (r.name ?? '').includes(query.q));
    }
    if (query.author) {
      rows = rows.filter(
        r => r.user === query.author || `${r.user}@${r.host}` === query.author
      );
    }
    if (query.before) {
      rows = rows.filter(r => r.id < query.before);
    }
    const limit = query.limit ?? 50;
    const page = rows.slice(0, limit);
    return {
      runs: page,
      next: rows.length > limit ? page[page.length - 1].id : null
    };
  }

  async run(id: string): Promise<IRunManifest> {
    const found = this.manifests.get(id);
    if (!found) {
      throw new Error(`no run ${id}`);
    }
    return found;
  }

  async diff(a: string, b: string): Promise<IRunDiff> {
    const found = this.diffs.get(`${a}/${b}`);
    if (!found) {
      throw new Error(`no diff ${a}/${b}`);
    }
    return found;
  }

  async fileStatus(id: string): Promise<IRunFileStatus> {
    const m = await this.run(id);
    const recorded = (f: IManifestEntry) => (isFolder(f) ? f.tree : f.hash);
    return {
      run: id,
      files: [
        ...m.inputs.map(f => ({
          path: f.path,
          role: 'input' as const,
          recorded: recorded(f),
          current: isFolder(f) ? null : f.hash,
          state: 'same' as const,
          ...(isFolder(f) ? { files: f.files, differing: 0 } : {})
        })),
        ...m.outputs.map(f => ({
          path: f.path,
          role: 'output' as const,
          recorded: recorded(f),
          current: null,
          state: 'missing' as const
        }))
      ]
    };
  }

  /** Files of folders recorded as trees, by `${run}/${role}/${path}`. */
  folders = new Map<string, IRunFolder['files']>();

  async folder(
    id: string,
    role: 'input' | 'output',
    path: string,
    offset = 0,
    limit = 200
  ): Promise<IRunFolder> {
    this.requests.push(`folder ${id} ${role} ${path} ${offset} ${limit}`);
    const files = this.folders.get(`${id}/${role}/${path}`);
    if (!files) {
      throw new Error(`no folder ${path}`);
    }
    return {
      run: id,
      role,
      path,
      tree: 'f'.repeat(64),
      offset,
      total: files.length,
      files: files.slice(offset, offset + limit)
    };
  }

  fileUrl(id: string, path: string, role: string): string {
    return `/dotnb/api/runs/${id}/files?path=${encodeURIComponent(path)}&role=${role}`;
  }

  metricNames_ = { names: ['acc'], latest: 'acc' as string | null };
  async metricNames(): Promise<{ names: string[]; latest: string | null }> {
    return this.metricNames_;
  }

  async metricValues(): Promise<{ name: string; values: [] }> {
    return { name: 'acc', values: [] };
  }

  events(after: number | null, signal?: AbortSignal): Promise<IEventsReply> {
    if (after === null) {
      return Promise.resolve({ cursor: this.cursor, runs: [] });
    }
    return new Promise((resolve, reject) => {
      this.pendingEvents.push(resolve);
      signal?.addEventListener('abort', () =>
        reject(new DOMException('aborted', 'AbortError'))
      );
    });
  }

  /** Tags and notes changed through `annotate`, in order. */
  annotations: { ref: string; change: any }[] = [];

  async annotate(ref: string, change: any): Promise<any> {
    this.annotations.push({ ref, change });
    const tags: string[] = change.tag ?? change.untag ?? [];
    const bad = tags.find(t => t.length > 64);
    if (bad !== undefined) {
      throw new Error(`a tag is at most 64 characters: ${bad.slice(0, 20)}…`);
    }
    this.runs_ = this.runs_.map(r => {
      if (r.id !== ref) {
        return r;
      }
      let now = [...((r as any).tags ?? [])] as string[];
      if (change.tag) {
        now = [...new Set([...now, ...change.tag])].sort();
      }
      if (change.untag) {
        now = now.filter(t => !change.untag.includes(t));
      }
      const note = 'note' in change ? change.note || null : (r as any).note;
      return { ...r, tags: now, note };
    });
    return {};
  }

  remotes_: IRemote[] = [];
  /** What push and pull answer; an Error is thrown instead. */
  pushReply: IPushResult | Error | null = null;
  pullReply: IPullResult | Error | null = null;
  /** Runs a pull adds to the "server". */
  pulledRuns: IRunSummary[] = [];
  transfers: { kind: string; options: IPushOptions | IPullOptions }[] = [];
  /** Set to hold push and pull until released (to see the busy state). */
  gate: Promise<void> | null = null;

  async remotes(): Promise<{ remotes: IRemote[] }> {
    this.requests.push('remotes');
    return { remotes: this.remotes_ };
  }

  async push(options: IPushOptions): Promise<IPushResult> {
    this.transfers.push({ kind: 'push', options });
    await this.gate;
    return this._answer(this.pushReply);
  }

  async pull(options: IPullOptions): Promise<IPullResult> {
    this.transfers.push({ kind: 'pull', options });
    await this.gate;
    this.runs_ = [...this.runs_, ...this.pulledRuns];
    return this._answer(this.pullReply);
  }

  private _answer<T>(reply: T | Error | null): T {
    if (reply instanceof Error) {
      throw reply;
    }
    if (reply === null) {
      throw new Error('no reply set');
    }
    return reply;
  }

  /** Answer the pending long poll with runs added on the "server". */
  emitRuns(runs: IRunSummary[]): void {
    this.runs_ = [
      ...this.runs_.filter(r => !runs.some(n => n.id === r.id)),
      ...runs
    ];
    this.cursor += runs.length;
    const waiting = this.pendingEvents;
    this.pendingEvents = [];
    for (const resolve of waiting) {
      resolve({ cursor: this.cursor, runs });
    }
  }
}

export function fakeServices(
  api: FakeApi,
  model?: RunsModel
): IPanelServices & {
  navigated: unknown[];
} {
  const navigated: unknown[] = [];
  const runs = model ?? new RunsModel(api as any);
  return {
    model: runs,
    remotes: new RemotesModel(api as any, runs),
    api: api as any,
    highlight: async (code, host) => {
      host.appendChild(document.createTextNode(code));
    },
    renderChart: () => () => undefined,
    notebookCells: () => null,
    restore: () => undefined,
    openPath: () => undefined,
    navigate: view => navigated.push(view),
    back: () => undefined,
    navigated
  };
}

/** Resolve pending promises and React updates. */
export async function settle(times = 5): Promise<void> {
  for (let i = 0; i < times; i++) {
    await new Promise(resolve => setTimeout(resolve, 0));
  }
}

export { Signal };
