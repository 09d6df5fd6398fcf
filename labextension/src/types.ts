/**
 * Shapes of what the dotnb REST API returns (see docs/rest-api.yml and
 * dotnb/server/handlers.py), and the run vocabulary (kinds, statuses).
 *
 * Every string in these shapes comes from a user's run (names, params, paths,
 * error messages): views render them as text, never as HTML.
 */

export type RunStatus = 'ok' | 'error' | 'interrupted';
export type RunKind = 'run' | 'checkpoint';
export type JSONValue =
  string | number | boolean | null | JSONValue[] | { [key: string]: JSONValue };

/** One row of `GET runs` (dotnb/store/repo.py::run_summary). */
export interface IRunSummary {
  id: string;
  number: number;
  notebook: string | null;
  name: string | null;
  kind: RunKind;
  status: RunStatus;
  started_at: string;
  duration_s: number | null;
  params: Record<string, JSONValue>;
  metrics: Record<string, number | string | null>;
  inputs: number;
  outputs: number;
  user: string | null;
  host: string | null;
  reproduces: string | null;
  checkpoint_of: string | null;
  /** The remote this run was pulled from; null (or absent, older servers) when recorded here. */
  remote?: string | null;
  /** Tags (in listings: `GET runs`, `GET table`; absent in live events). */
  tags?: string[];
  /** The run's note (null: none); in listings, as `tags`. */
  note?: string | null;
  /** Its SSH signature's status (`GET runs`, `GET events`; absent from older servers). */
  signature?: IRunSignature;
  /**
   * `GET table` only: how many of its input (output) files are new or hold
   * other bytes than in the run before it in the same notebook.
   */
  inputs_changed?: number;
  outputs_changed?: number;
}

/** A run's SSH signature, checked by the server against the allowed-signers file. */
export interface IRunSignature {
  status: 'good' | 'bad' | 'unsigned' | 'unknown_key';
  /** Principals (good) or the key's SHA256 fingerprint (unknown_key). */
  signer?: string;
  /** Why a signature is bad. */
  reason?: string;
}

export interface IRunsPage {
  runs: IRunSummary[];
  next: string | null;
}

export interface IFileEntry {
  path: string;
  hash: string | null;
  size: number | null;
  pre_write?: boolean;
  changed?: boolean;
  missing?: boolean;
  skipped?: string;
  declared?: boolean;
}

/**
 * A folder where the run read or wrote many files, recorded as one tree:
 * `GET runs/{run}/folder` lists its files a page at a time.
 */
export interface IFolderEntry {
  path: string;
  tree: string;
  files: number;
  size: number;
}

/** An input or output of a manifest: a file, or a folder recorded as a tree. */
export type IManifestEntry = IFileEntry | IFolderEntry;

export function isFolder(entry: IManifestEntry): entry is IFolderEntry {
  return typeof (entry as IFolderEntry).tree === 'string';
}

/** `GET runs/{run}/folder`: a page of a folder's files. */
export interface IRunFolder {
  run: string;
  role: 'input' | 'output';
  path: string;
  tree: string;
  offset: number;
  total: number;
  files: { path: string; hash: string; size: number }[];
}

export interface ILineageCell {
  execution_count: number | null;
  code_hash: string;
  tracked: boolean;
  run?: string | null;
  status?: 'ok' | 'error';
  code?: string | null;
  code_missing?: boolean;
  code_corrupt?: boolean;
}

export interface IMetricPoint {
  step?: number | null;
  value: number | string;
  time?: number;
}

/** `GET runs/{run}`: the manifest with each lineage cell's code. */
export interface IRunManifest {
  format: number;
  id: string;
  /** Not part of the manifest: the server adds its signature's status. */
  signature?: IRunSignature;
  kind: RunKind;
  number: number;
  name?: string | null;
  notebook: string | null;
  notebook_source?: 'disk' | 'frontend' | 'headless' | null;
  notebook_snapshot?:
    { hash: string; size: number } | { unavailable: string } | null;
  code: string;
  lineage: ILineageCell[];
  params: Record<string, JSONValue>;
  param_overrides?: string[];
  metrics: Record<string, number | string | null>;
  metric_series: Record<string, IMetricPoint[]>;
  inputs: IManifestEntry[];
  outputs: IManifestEntry[];
  absent?: string[];
  external_inputs?: {
    path: string;
    size?: number | null;
    mtime_ns?: number | null;
  }[];
  environment: {
    python?: string;
    implementation?: string;
    platform?: string;
    machine?: string;
    host?: string;
    user?: string;
    cpu_count?: number | null;
    memory_bytes?: number | null;
    executable?: string;
    distributions?: string;
    git?: {
      commit?: string | null;
      branch?: string | null;
      dirty?: boolean | null;
    } | null;
    [key: string]: JSONValue | undefined;
  };
  status: RunStatus;
  error?: { type: string; message: string } | null;
  started_at: string;
  duration_s: number;
  stdout_bytes?: number | null;
  parent?: string | null;
  checkpoint_of?: string | null;
  reproduces?: string | null;
  warnings?: string[];
}

/** `GET runs/{a}/diff/{b}`: maps from name or path to [first, second]. */
export interface IRunDiff {
  runs: [string, string];
  code: string;
  params: Record<string, [JSONValue, JSONValue]>;
  metrics: Record<string, [JSONValue, JSONValue]>;
  inputs: Record<string, [string | null, string | null]>;
  outputs: Record<string, [string | null, string | null]>;
  environment: Record<string, [JSONValue, JSONValue]>;
}

/** One value of `GET metrics?name=`: a summary metric across runs, oldest first. */
export interface IMetricValue {
  id: string;
  number: number;
  notebook: string | null;
  started_at: string;
  name: string | null;
  status: RunStatus;
  value: number;
}

export type PlanAction = 'unchanged' | 'create' | 'overwrite' | 'remove';

export interface IPlanItem {
  path: string;
  role: 'data' | 'notebook';
  current: string | null;
  target: string | null;
  size: number | null;
  action: PlanAction;
}

export interface IRestorePlan {
  run: string;
  items: IPlanItem[];
  skipped: { path: string; reason: string }[];
  bytes_to_write: number;
}

export interface IRestoreResult {
  plan: IRestorePlan;
  dry_run: boolean;
  checkpoint: string | null;
  /** The checkpoint's own `#N`; null when no checkpoint was made. */
  checkpoint_number: number | null;
  written: string[];
  /** What the notebook's kernel did, when the request had `kernel`. */
  kernel?: IKernelCheckoutResult;
}

/** The restore's `kernel` option: the server has the notebook's kernel check out. */
export interface IKernelCheckoutRequest {
  /** `%dotnb checkout RUN` in the notebook's kernel. */
  checkout?: boolean;
  /** `%dotnb checkout --undo` instead. */
  undo?: boolean;
  trust?: boolean;
  /** The notebook whose kernel to use (default: the run's). */
  notebook?: string;
}

export interface IKernelCheckoutResult {
  action: 'checkout' | 'undo';
  notebook: string;
  kernel_id: string | null;
  checked_out: boolean;
  status: 'ok' | 'refused' | 'error' | 'timeout' | 'no_kernel' | 'dry_run';
  /** What the kernel printed (plain text). */
  report: string;
  /** Why the variables were not checked out; null when they were. */
  reason: string | null;
}

export interface IRestoreOptions {
  data: boolean;
  notebook: boolean;
  dry_run: boolean;
  kernel?: IKernelCheckoutRequest;
}

/** State of one recorded file compared with the file on disk now. */
export type FileState =
  'same' | 'modified' | 'missing' | 'not-stored' | 'unknown';

export interface IFileStatus {
  path: string;
  role: 'input' | 'output' | 'notebook';
  recorded: string | null;
  current: string | null;
  state: FileState;
  /** A folder recorded as a tree: its file count (rows follow for those that differ). */
  files?: number;
  differing?: number;
}

/** `GET runs/{run}/status`. */
export interface IRunFileStatus {
  run: string;
  files: IFileStatus[];
}

export interface IEventsReply {
  cursor: number;
  runs: IRunSummary[];
}

/** The bundle a tracked cell displays with RUN_MIME_TYPE. */
export interface IRunBundle {
  id: string;
  number: number;
  notebook: string | null;
  name: string | null;
  status: RunStatus;
  /** Paths; a folder recorded as a tree ends with "/". */
  inputs: string[];
  outputs: string[];
  /** How many files (a folder counts its files); absent from older dotnb. */
  input_count?: number;
  output_count?: number;
  params: Record<string, JSONValue> | null;
  metrics: Record<string, number | string | null> | null;
  duration_s: number | null;
  overridden: string[];
}

/** One entry of `GET remotes` (`dotnb remote list --json`). */
export interface IRemote {
  name: string;
  url: string;
  default: boolean;
  endpoint_url: string | null;
  region: string | null;
  profile: string | null;
}

export interface IRemoteList {
  remotes: IRemote[];
}

/** A run a push or pull left alone, and why. */
export interface IRunProblem {
  id: string;
  reason: string;
}

/** `POST push` (`dotnb push --json`). */
export interface IPushResult {
  remote: string;
  url: string;
  runs_pushed: number;
  runs_already: number;
  objects_uploaded: number;
  bytes_uploaded: number;
  conflicts: IRunProblem[];
}

/** `POST pull` (`dotnb pull --json`). */
export interface IPullResult {
  remote: string;
  url: string;
  runs_new: number;
  runs_rejected: IRunProblem[];
  objects_downloaded: number;
  bytes_downloaded: number;
}

export interface IPushOptions {
  /** A remote's name; the default remote when absent. */
  remote?: string;
  /** Run references; every run when absent. */
  runs?: string[];
}

export interface IPullOptions {
  remote?: string;
  /** Fetch data files now rather than when first needed. */
  with_data?: boolean;
}

/** One change of a run's tags or note (`history` of `GET runs/{run}/annotations`). */
export interface IAnnotationEvent {
  id: string;
  op: 'tag' | 'untag' | 'note';
  tags?: string[];
  note?: string;
  author: string;
  at: string;
}

/** `GET`/`POST runs/{run}/annotations`. */
export interface IRunAnnotations {
  id: string;
  tags: string[];
  note: string | null;
  note_author: string | null;
  note_at: string | null;
  history: IAnnotationEvent[];
}

/** `GET table`: one page of the Experiments table. */
export interface IRunTablePage {
  total: number;
  offset: number;
  runs: IRunSummary[];
  columns?: { params: string[]; metrics: string[] };
}

/** Which way `GET lineage` follows the data. */
export type LineageDirection = 'upstream' | 'downstream' | 'both';

/** Where a content node's bytes are now, per path they had. */
export type DiskState = 'same' | 'changed' | 'missing';

/** One node of `GET lineage`: a run, a file's bytes, or a leaf outside the store. */
export interface ILineageNode {
  /** `run:<id>`, `content:<hash>`, `external:<path>` or `unstored:<path>`. */
  id: string;
  type: 'run' | 'content' | 'external' | 'unstored';
  /** Neighbours beyond `depth` were not followed. */
  truncated: boolean;
  run?: string;
  notebook?: string | null;
  number?: number | null;
  name?: string | null;
  kind?: string | null;
  status?: string | null;
  started_at?: string | null;
  author?: string | null;
  remote?: string | null;
  hash?: string;
  paths?: string[];
  path?: string;
  /** No run wrote these bytes. */
  source?: boolean;
  disk?: Record<string, DiskState>;
  /** The bytes are at none of their paths now, and some path holds other bytes. */
  stale?: boolean;
}

/** `GET lineage`: edges point the way data flows (content → run → content). */
export interface ILineage {
  root: string;
  direction: LineageDirection;
  depth: number | null;
  nodes: ILineageNode[];
  edges: { from: string; to: string; relation: 'used' | 'wasGeneratedBy' }[];
}

/** `POST sweeps`: what to sweep (`source`: a run reference or a notebook path). */
export interface ISweepRequest {
  source: string;
  /** `NAME=V1,V2,…`, `NAME=A:B:N` or `NAME=A:B:log:N`. */
  params: string[];
  random?: number | null;
  seed?: number | null;
  max_failures?: number | null;
  metric?: string | null;
  minimize?: boolean;
  /** `local`: this machine's workers even when a scheduler is configured. */
  cluster?: 'local' | 'scheduler' | null;
}

/** Where the server can run a sweep (`GET sweeps/params`). */
export interface ISweepClusters {
  local: { workers: number };
  /** The configured scheduler's address (the default), or null. */
  scheduler: string | null;
}

/** One point of a sweep, once it has finished. */
export interface ISweepResult {
  index: number;
  params: Record<string, JSONValue>;
  status: RunStatus;
  runs: string[];
  metrics: Record<string, JSONValue>;
  error: string | null;
  duration_s?: number;
  worker?: string | null;
}

/** `GET sweeps/{sweep}`. */
export interface ISweepState {
  sweep: string;
  tag: string;
  state: 'running' | 'done' | 'failed' | 'recorded';
  failure: string | null;
  running: number;
  points: number;
  ok?: number;
  error?: number;
  interrupted?: number;
  stopped?: string | null;
  dashboard?: string | null;
  metric?: string | null;
  goal?: 'max' | 'min';
  /** The point ranking first by `metric`, with its value. */
  best?: {
    index: number;
    params: Record<string, JSONValue>;
    value: JSONValue;
  } | null;
  results: ISweepResult[];
}

/** `GET runs/{run}/kernel-state`: the kernel variables a run recorded. */
export interface IKernelState {
  run: string;
  /** user@host of the kernel that recorded them. */
  author: string | null;
  variables: Record<
    string,
    {
      status: 'stored' | 'unpicklable' | 'too_large';
      type?: string;
      size?: number;
      cell?: number | null;
      reason?: string;
    }
  >;
}
