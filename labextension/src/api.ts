/**
 * The dotnb REST API (`{base_url}/dotnb/api/`), through JupyterLab's
 * ServerConnection so requests carry the token and the XSRF header.
 */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  IEventsReply,
  IKernelState,
  ILineage,
  ISweepClusters,
  ISweepRequest,
  ISweepState,
  LineageDirection,
  IMetricValue,
  IPullOptions,
  IPullResult,
  IPushOptions,
  IPushResult,
  IRemoteList,
  IRestoreOptions,
  IRunAnnotations,
  IRunTablePage,
  IRestoreResult,
  IRunDiff,
  IRunFileStatus,
  IRunFolder,
  IRunManifest,
  IRunsPage,
  RunKind,
  RunStatus
} from './types';

/** An error the API answered with (its JSON `message`), or a network failure. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface IRunsQuery {
  notebook?: string | null;
  kind?: RunKind | '';
  status?: RunStatus | '';
  q?: string;
  /** `user` or `user@host`. */
  author?: string;
  limit?: number;
  before?: string | null;
}

/** `GET table`: the Experiments table's sort, filters and page. */
export interface ITableQuery {
  notebook?: string | null;
  /** `COLUMN OP VALUE` conditions, all of which must hold. */
  filters?: string[];
  tags?: string[];
  q?: string;
  /** A builtin column, `metric:NAME` or `param:NAME`. */
  sort?: string;
  order?: 'asc' | 'desc';
  /** Keep each notebook's (or name's) runs together, groups in order. */
  group?: TableGroup | null;
  offset?: number;
  limit?: number;
  columns?: boolean;
}

/** What a lineage graph is asked about: a run, or the file at a path. */
export interface ILineageTarget {
  run?: string;
  path?: string;
}

/** What the Experiments table can group runs by. */
export type TableGroup = 'notebook' | 'name' | 'sweep';

/** Query arguments; null, undefined and '' are left out, a list repeats the name. */
type Query = Record<string, string | number | null | undefined | string[]>;

export class DotnbApi {
  constructor(
    readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  /** Absolute URL of an API route with its query (empty values left out). */
  url(route: string, query: Query = {}): string {
    const base = URLExt.join(this.settings.baseUrl, 'dotnb', 'api', route);
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      // A list repeats the argument (`filter=…&filter=…`).
      for (const item of Array.isArray(value) ? value : [value]) {
        if (item !== null && item !== undefined && item !== '') {
          params.append(key, String(item));
        }
      }
    }
    const text = params.toString();
    return text ? `${base}?${text}` : base;
  }

  async request<T>(
    route: string,
    init: RequestInit & { query?: Query } = {}
  ): Promise<T> {
    const { query, ...rest } = init;
    let response: Response;
    try {
      response = await ServerConnection.makeRequest(
        this.url(route, query),
        rest,
        this.settings
      );
    } catch (error) {
      if ((error as Error)?.name === 'AbortError') {
        throw error;
      }
      throw new ApiError(
        0,
        `cannot reach the Jupyter server: ${(error as Error).message ?? error}`
      );
    }
    const text = await response.text();
    let body: any = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    if (!response.ok) {
      const message =
        body && typeof body.message === 'string'
          ? body.message
          : `${response.status} ${response.statusText}`;
      if (response.status === 404 && body === null) {
        throw new ApiError(
          404,
          'the dotnb server extension is not enabled on this Jupyter server (`jupyter server extension list`)'
        );
      }
      throw new ApiError(response.status, message);
    }
    return body as T;
  }

  runs(query: IRunsQuery, signal?: AbortSignal): Promise<IRunsPage> {
    return this.request<IRunsPage>('runs', {
      signal,
      query: {
        notebook: query.notebook,
        kind: query.kind,
        status: query.status,
        q: query.q,
        author: query.author,
        limit: query.limit,
        before: query.before
      }
    });
  }

  run(ref: string): Promise<IRunManifest> {
    return this.request<IRunManifest>(`runs/${encodeURIComponent(ref)}`);
  }

  diff(first: string, second: string): Promise<IRunDiff> {
    return this.request<IRunDiff>(
      `runs/${encodeURIComponent(first)}/diff/${encodeURIComponent(second)}`
    );
  }

  fileStatus(ref: string): Promise<IRunFileStatus> {
    return this.request<IRunFileStatus>(
      `runs/${encodeURIComponent(ref)}/status`
    );
  }

  /** A page of the files of a folder the run recorded as a tree. */
  folder(
    ref: string,
    role: 'input' | 'output',
    path: string,
    offset = 0,
    limit = 200
  ): Promise<IRunFolder> {
    return this.request<IRunFolder>(`runs/${encodeURIComponent(ref)}/folder`, {
      query: { path, role, offset, limit }
    });
  }

  /** URL that downloads a run's stored input or output. */
  fileUrl(ref: string, path: string, role: 'input' | 'output'): string {
    return this.url(`runs/${encodeURIComponent(ref)}/files`, {
      path,
      role,
      download: 1
    });
  }

  /** `GET lineage`: where a file's bytes (`path`) or a run came from, and what used them. */
  lineage(
    target: ILineageTarget,
    direction: LineageDirection = 'both',
    depth: number | null = null,
    signal?: AbortSignal
  ): Promise<ILineage> {
    return this.request('lineage', {
      query: { run: target.run, path: target.path, direction, depth },
      signal
    });
  }

  /** `GET runs/{run}/kernel-state`: the kernel variables a run recorded (null: none). */
  async kernelState(ref: string): Promise<IKernelState | null> {
    try {
      return await this.request<IKernelState>(
        `runs/${encodeURIComponent(ref)}/kernel-state`
      );
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        return null;
      }
      throw error;
    }
  }

  /** `POST sweeps`: start a parameter sweep on the server's cluster. */
  startSweep(request: ISweepRequest): Promise<ISweepState> {
    return this.request('sweeps', {
      method: 'POST',
      body: JSON.stringify(request)
    });
  }

  /** `GET sweeps/params`: what a sweep of a notebook or run can vary. */
  sweepParams(source: string): Promise<{
    source: string;
    notebook: string;
    params: Record<string, string | null>;
    clusters?: ISweepClusters;
  }> {
    return this.request('sweeps/params', { query: { source } });
  }

  /** `GET sweeps/{sweep}`: how a sweep goes. */
  sweep(id: string, signal?: AbortSignal): Promise<ISweepState> {
    return this.request(`sweeps/${encodeURIComponent(id)}`, { signal });
  }

  /** `POST sweeps/{sweep}/cancel`: cancel the points not yet finished. */
  cancelSweep(id: string): Promise<ISweepState> {
    return this.request(`sweeps/${encodeURIComponent(id)}/cancel`, {
      method: 'POST',
      body: '{}'
    });
  }

  /** The metrics recorded (by name) and the one the newest run recorded. */
  metricNames(
    notebook: string | null
  ): Promise<{ names: string[]; latest?: string | null }> {
    return this.request('metrics', { query: { notebook } });
  }

  metricValues(
    name: string,
    notebook: string | null,
    limit = 1000
  ): Promise<{ name: string; values: IMetricValue[] }> {
    return this.request('metrics', { query: { name, notebook, limit } });
  }

  restore(ref: string, options: IRestoreOptions): Promise<IRestoreResult> {
    return this.request<IRestoreResult>(
      `runs/${encodeURIComponent(ref)}/restore`,
      {
        method: 'POST',
        body: JSON.stringify(options)
      }
    );
  }

  /** Attach the live notebook model to a run (the API accepts one per run). */
  attachNotebook(ref: string, notebook: unknown): Promise<unknown> {
    return this.request(`runs/${encodeURIComponent(ref)}/notebook`, {
      method: 'POST',
      body: JSON.stringify({ notebook })
    });
  }

  /** The team remotes configured for the store (none: no push or pull). */
  remotes(): Promise<IRemoteList> {
    return this.request<IRemoteList>('remotes');
  }

  /** Send runs to a remote; can take a while (the server does it in a thread). */
  push(options: IPushOptions = {}): Promise<IPushResult> {
    return this.request<IPushResult>('push', {
      method: 'POST',
      body: JSON.stringify(options)
    });
  }

  /** Fetch a remote's new runs into the store. */
  pull(options: IPullOptions = {}): Promise<IPullResult> {
    return this.request<IPullResult>('pull', {
      method: 'POST',
      body: JSON.stringify(options)
    });
  }

  /** One page of the Experiments table, sorted and filtered by the server. */
  table(query: ITableQuery, signal?: AbortSignal): Promise<IRunTablePage> {
    return this.request<IRunTablePage>('table', {
      signal,
      query: {
        notebook: query.notebook,
        filter: query.filters,
        tag: query.tags,
        q: query.q,
        sort: query.sort,
        order: query.order,
        group: query.group,
        offset: query.offset,
        limit: query.limit,
        columns: query.columns ? 'true' : null
      }
    });
  }

  annotations(ref: string): Promise<IRunAnnotations> {
    return this.request<IRunAnnotations>(
      `runs/${encodeURIComponent(ref)}/annotations`
    );
  }

  /** One change: `{tag: [...]}`, `{untag: [...]}` or `{note: text}`. */
  annotate(
    ref: string,
    change: { tag: string[] } | { untag: string[] } | { note: string }
  ): Promise<IRunAnnotations> {
    return this.request<IRunAnnotations>(
      `runs/${encodeURIComponent(ref)}/annotations`,
      { method: 'POST', body: JSON.stringify(change) }
    );
  }

  /** Without `after`: the current cursor at once. With it: a long poll. */
  events(after: number | null, signal?: AbortSignal): Promise<IEventsReply> {
    return this.request<IEventsReply>('events', {
      signal,
      query: { after: after === null ? null : after }
    });
  }
}
