/**
 * Formatting of run data for display. Pure functions returning plain strings:
 * callers put them into the DOM as text.
 */

import {
  IPullResult,
  IPushResult,
  IRunProblem,
  IRunSignature,
  JSONValue
} from './types';

/** "3 s ago", "5 min ago", "2 h ago", "4 d ago", else the date. */
export function timeAgo(iso: string, now: number = Date.now()): string {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) {
    return '';
  }
  const s = Math.max(0, Math.round((now - then) / 1000));
  if (s < 45) {
    return s < 5 ? 'just now' : `${s} s ago`;
  }
  const min = Math.round(s / 60);
  if (min < 60) {
    return `${min} min ago`;
  }
  const h = Math.round(min / 60);
  if (h < 24) {
    return `${h} h ago`;
  }
  const d = Math.round(h / 24);
  if (d < 30) {
    return `${d} d ago`;
  }
  return new Date(then).toISOString().slice(0, 10);
}

/** Local date and time, for tooltips and detail views. */
export function dateTime(iso: string): string {
  const then = Date.parse(iso);
  if (Number.isNaN(then)) {
    return iso;
  }
  return new Date(then).toLocaleString();
}

/** "812 ms", "4.2 s", "3 min 05 s", "1 h 02 min". */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) {
    return '';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  }
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) {
    return `${h} h ${String(m).padStart(2, '0')} min`;
  }
  return `${m} min ${String(s).padStart(2, '0')} s`;
}

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

/** Binary sizes with decimal-looking units, as file browsers show them. */
export function bytes(size: number | null | undefined): string {
  if (size === null || size === undefined || !isFinite(size)) {
    return '';
  }
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) {
    return `${value} B`;
  }
  return `${value < 10 ? value.toFixed(1) : Math.round(value)} ${UNITS[unit]}`;
}

/** First 8 hex digits of a content hash ("" for none), as git shows commits. */
export function shortHash(hash: string | null | undefined): string {
  return hash ? hash.slice(0, 8) : '';
}

/** Short run id: the tail of a ULID is its random part, the head its time. */
export function shortId(id: string): string {
  return id.slice(0, 10);
}

/** A metric or param value: 4 significant digits for non-integers. */
export function value(v: JSONValue | undefined): string {
  if (v === undefined) {
    return '';
  }
  if (v === null) {
    return 'None';
  }
  if (typeof v === 'number') {
    if (Number.isInteger(v)) {
      return String(v);
    }
    const abs = Math.abs(v);
    if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) {
      return v.toExponential(3);
    }
    return String(Number(v.toPrecision(4)));
  }
  if (typeof v === 'boolean') {
    return v ? 'True' : 'False';
  }
  if (typeof v === 'string') {
    return v;
  }
  return JSON.stringify(v);
}

/** Truncate to `max` characters with an ellipsis. */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : text.slice(0, Math.max(0, max - 1)) + '…';
}

/** "lr=0.1 · layers=[64,32]": the first `max` entries of a map. */
export function keyValues(
  map: Record<string, JSONValue> | null | undefined,
  max = 3,
  width = 24
): string {
  if (!map) {
    return '';
  }
  return Object.entries(map)
    .slice(0, max)
    .map(([k, v]) => `${k}=${clip(value(v), width)}`)
    .join(' · ');
}

/** Difference b − a of two metric values, signed; '' when not both numbers. */
export function delta(a: JSONValue, b: JSONValue): string {
  if (typeof a !== 'number' || typeof b !== 'number') {
    return '';
  }
  const d = b - a;
  if (d === 0) {
    return '±0';
  }
  const text = value(Number(d.toPrecision(4)));
  const rel =
    a !== 0
      ? ` (${d > 0 ? '+' : ''}${((d / Math.abs(a)) * 100).toFixed(1)}%)`
      : '';
  return (d > 0 ? '+' : '') + text + rel;
}

/** "#12" plus the name when there is one. */
export function runTitle(run: {
  number: number;
  name?: string | null;
}): string {
  return run.name ? `#${run.number} ${run.name}` : `#${run.number}`;
}

/** "1 input", "2 outputs". */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** How many files manifest entries stand for (a folder counts its files). */
export function fileCount(entries: readonly object[]): number {
  return entries.reduce<number>((n, e) => {
    const folder = e as { tree?: unknown; files?: unknown };
    return (
      n +
      (typeof folder.tree === 'string' && typeof folder.files === 'number'
        ? folder.files
        : 1)
    );
  }, 0);
}

/** Base name of a POSIX path. */
export function baseName(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? path : path.slice(i + 1);
}

/** Who recorded a run: "ada@gpu-box", "ada" without a host, "" when unknown. */
export function author(run: {
  user?: string | null;
  host?: string | null;
}): string {
  if (!run.user) {
    return '';
  }
  return run.host ? `${run.user}@${run.host}` : run.user;
}

/** A push's or pull's outcome: one sentence, plus the runs it left alone. */
export interface ITransferSummary {
  text: string;
  problems: string[];
}

/** "(12 objects, 4.1 MB)", or "" when nothing moved. */
function moved(objects: number, size: number): string {
  return objects > 0 ? ` (${plural(objects, 'object')}, ${bytes(size)})` : '';
}

/** At most `max` problems as "01J9Z3K4Q8: reason", then "and N more". */
function problems(list: IRunProblem[], max = 3): string[] {
  const lines = list.slice(0, max).map(p => `${shortId(p.id)}: ${p.reason}`);
  if (list.length > max) {
    lines.push(`and ${list.length - max} more`);
  }
  return lines;
}

/** "Pushed 3 runs (12 objects, 4.1 MB) to origin; 5 were already there." */
export function pushSummary(result: IPushResult): ITransferSummary {
  let text: string;
  if (result.runs_pushed > 0) {
    text = `Pushed ${plural(result.runs_pushed, 'run')}${moved(result.objects_uploaded, result.bytes_uploaded)} to ${result.remote}`;
    if (result.runs_already > 0) {
      text += `; ${result.runs_already} ${result.runs_already === 1 ? 'was' : 'were'} already there`;
    }
  } else if (result.runs_already > 0) {
    text = `Nothing to push: ${result.remote} already has ${result.runs_already === 1 ? 'this run' : `these ${result.runs_already} runs`}`;
  } else {
    text = `Nothing to push to ${result.remote}`;
  }
  const conflicts = result.conflicts ?? [];
  if (conflicts.length) {
    text += `. ${plural(conflicts.length, 'run')} not pushed: ${result.remote} holds a different version`;
  }
  return { text: `${text}.`, problems: problems(conflicts) };
}

/** "Pulled 3 runs (12 objects, 4.1 MB) from origin." */
export function pullSummary(result: IPullResult): ITransferSummary {
  const rejected = result.runs_rejected ?? [];
  let text =
    result.runs_new > 0
      ? `Pulled ${plural(result.runs_new, 'run')}${moved(result.objects_downloaded, result.bytes_downloaded)} from ${result.remote}`
      : `No new runs on ${result.remote}`;
  if (rejected.length) {
    text += `. ${plural(rejected.length, 'run')} rejected`;
  }
  return { text: `${text}.`, problems: problems(rejected) };
}

/** A run signature's mark and its tooltip; null for an unsigned run (no mark). */
export function signatureMark(
  signature: IRunSignature | undefined
): { text: string; title: string; kind: IRunSignature['status'] } | null {
  switch (signature?.status) {
    case 'good':
      return {
        text: '✓ signed',
        title: `Signed by ${signature.signer ?? 'an allowed key'}; the signature verifies`,
        kind: 'good'
      };
    case 'bad':
      return {
        text: '✗ bad signature',
        title: `The signature does not verify: ${signature.reason ?? 'unknown reason'}`,
        kind: 'bad'
      };
    case 'unknown_key':
      return {
        text: '? unknown key',
        title: `Signed by a key the allowed-signers file does not hold (${signature.signer ?? 'no fingerprint'})`,
        kind: 'unknown_key'
      };
    default:
      return null;
  }
}
