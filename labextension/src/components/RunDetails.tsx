/**
 * One run: code, lineage, params, metrics (with step-series charts), inputs
 * and outputs (with whether the file on disk still matches), environment, and
 * who/where/when.
 */

import { Button } from '@jupyterlab/ui-components';
import * as React from 'react';

import { Annotations } from './Annotations';

import { isChartable, seriesSpec, themeFromDocument } from '../chart';
import * as fmt from '../format';
import { analyzeLineage } from '../lineage';
import { IPanelServices } from '../services';
import {
  IFileEntry,
  IFileStatus,
  IFolderEntry,
  IManifestEntry,
  IMetricPoint,
  IRunFolder,
  IRunManifest,
  IRunSummary,
  isFolder
} from '../types';
import {
  CodeBlock,
  KeyValues,
  LinkButton,
  Loading,
  Message,
  Section,
  StatusChip,
  ViewHeader
} from './common';
import { useAsync, useSignal } from './hooks';

/** The file on disk now, compared with the recorded one ("On disk" column). */
const STATE_LABEL: Record<IFileStatus['state'], string> = {
  same: 'unchanged',
  modified: 'modified',
  missing: 'missing',
  'not-stored': 'not stored',
  unknown: 'cannot check'
};

/** The same, as a phrase in a file's line of facts. */
const STATE_DISK: Record<IFileStatus['state'], string> = {
  same: 'unchanged on disk',
  modified: 'modified on disk',
  missing: 'missing on disk',
  'not-stored': '',
  unknown: 'cannot check the disk'
};

const STATE_TITLE: Record<IFileStatus['state'], string> = {
  same: 'The file on disk is the one the run recorded.',
  modified: 'The file on disk differs from the one the run recorded.',
  missing: 'No file at this path now.',
  'not-stored': 'The run recorded no content for this file.',
  unknown:
    'The path cannot be checked (a folder is in the way, or it leads outside the project).'
};

/** How many files of a folder one request lists (and each "Show more" adds). */
const FOLDER_PAGE = 200;

function FileTable(props: {
  runId: string;
  role: 'input' | 'output';
  files: IManifestEntry[];
  status: IFileStatus[] | undefined;
  services: IPanelServices;
}): JSX.Element {
  if (!props.files.length) {
    return <div className="jp-dotnb-Empty">None</div>;
  }
  const rows = useStatusRows(props.status, props.role);
  const stateOf = (path: string) => rows.get(path);
  // A list, not a table: path on one line, facts on the next, so it reads
  // at any sidebar width.
  return (
    <ul className="jp-dotnb-Files" aria-label={`${props.role}s`}>
      {props.files.map(entry =>
        isFolder(entry) ? (
          <FolderRow
            key={entry.path}
            {...props}
            folder={entry}
            state={stateOf(entry.path)}
            rows={rows}
          />
        ) : (
          <FileRow
            key={entry.path}
            {...props}
            file={entry}
            state={stateOf(entry.path)}
          />
        )
      )}
    </ul>
  );
}

/** The status rows of one role by path (a run may list thousands of files). */
function useStatusRows(
  status: IFileStatus[] | undefined,
  role: 'input' | 'output'
): Map<string, IFileStatus> {
  return React.useMemo(
    () =>
      new Map(
        (status ?? []).filter(s => s.role === role).map(s => [s.path, s])
      ),
    [status, role]
  );
}

function FileRow(props: {
  runId: string;
  role: 'input' | 'output';
  file: IFileEntry;
  /** null: the check did not report this file (a folder's rows are capped). */
  state: Pick<IFileStatus, 'state' | 'current'> | undefined | null;
  services: IPanelServices;
}): JSX.Element {
  const { file, state } = props;
  const flags = [
    file.pre_write ? 'read before the cell overwrote it' : '',
    file.changed ? 'changed while the cell ran' : '',
    file.missing ? 'missing when recorded' : '',
    file.skipped ? `not stored: ${file.skipped}` : '',
    file.declared ? 'declared' : ''
  ].filter(Boolean);
  return (
    <li data-path={file.path}>
      <LinkButton
        className="jp-dotnb-Files-path"
        onClick={() => props.services.openPath(file.path)}
        title={`Open ${file.path}`}
      >
        {file.path}
      </LinkButton>
      <div className="jp-dotnb-Files-facts">
        <span>{fmt.bytes(file.size)}</span>
        {file.hash ? (
          <a
            className="jp-dotnb-Hash"
            href={props.services.api.fileUrl(
              props.runId,
              file.path,
              props.role
            )}
            title={`${file.hash}\nDownload the stored version`}
            download
          >
            {fmt.shortHash(file.hash)}
          </a>
        ) : (
          <span>no content stored</span>
        )}
        {state === null ? null : state ? (
          <span
            className={`jp-dotnb-FileState jp-dotnb-FileState-${state.state}`}
            title={`${STATE_TITLE[state.state]}${state.current ? `\nnow ${state.current}` : ''}`}
          >
            {STATE_DISK[state.state]}
          </span>
        ) : (
          <span className="jp-dotnb-FileState">checking…</span>
        )}
      </div>
      {flags.length > 0 && (
        <div className="jp-dotnb-Flags">{flags.join(' · ')}</div>
      )}
    </li>
  );
}

/**
 * A folder recorded as a tree: one line with its file count, expanded on
 * demand a page at a time (a run may have read 100,000 files in it).
 */
function FolderRow(props: {
  runId: string;
  role: 'input' | 'output';
  folder: IFolderEntry;
  state: IFileStatus | undefined;
  status: IFileStatus[] | undefined;
  rows: Map<string, IFileStatus>;
  services: IPanelServices;
}): JSX.Element {
  const { folder, state, services } = props;
  const [open, setOpen] = React.useState(false);
  const [pages, setPages] = React.useState<IRunFolder['files']>([]);
  const [total, setTotal] = React.useState<number | null>(null);
  const [busy, setBusy] = React.useState(false);
  const [error, setError] = React.useState<string | null>(null);
  const load = React.useCallback(
    async (offset: number) => {
      setBusy(true);
      setError(null);
      try {
        const page = await services.api.folder(
          props.runId,
          props.role,
          folder.path,
          offset,
          FOLDER_PAGE
        );
        setPages(old => [...old.slice(0, offset), ...page.files]);
        setTotal(page.total);
      } catch (err) {
        setError(err instanceof Error ? err.message : String(err));
      } finally {
        setBusy(false);
      }
    },
    [services, props.runId, props.role, folder.path]
  );
  const toggle = () => {
    const next = !open;
    setOpen(next);
    if (next && total === null && !busy) {
      void load(0);
    }
  };
  // Files of the folder have a status row only when they differ from the run,
  // and only so many: a file without one is the same when every differing one
  // has its row, else unreported.
  const listed = React.useMemo(() => {
    let n = 0;
    for (const path of props.rows.keys()) {
      if (path.startsWith(`${folder.path}/`)) {
        n++;
      }
    }
    return n;
  }, [props.rows, folder.path]);
  const stateOf = (path: string) => {
    const row = props.rows.get(path);
    if (row || !state) {
      return row;
    }
    return listed >= (state.differing ?? 0)
      ? { state: 'same' as const, current: null }
      : null;
  };
  const summary = state
    ? state.differing
      ? `${fmt.plural(state.differing, 'file')} ${state.differing === 1 ? 'differs' : 'differ'} on disk`
      : 'unchanged on disk'
    : 'checking…';
  const listId = `jp-dotnb-folder-${props.role}-${folder.tree.slice(0, 12)}`;
  return (
    <li data-path={folder.path} className="jp-dotnb-Folder">
      <button
        className="jp-dotnb-Folder-toggle"
        aria-expanded={open}
        aria-controls={listId}
        onClick={toggle}
        title={open ? 'Hide its files' : 'List its files'}
      >
        {open ? '▾' : '▸'} {folder.path}/
      </button>
      <div className="jp-dotnb-Files-facts">
        <span>{fmt.plural(folder.files, 'file')}</span>
        <span>{fmt.bytes(folder.size)}</span>
        <span className="jp-dotnb-Hash" title={`tree ${folder.tree}`}>
          {fmt.shortHash(folder.tree)}
        </span>
        <span
          className={`jp-dotnb-FileState jp-dotnb-FileState-${state?.state ?? 'checking'}`}
        >
          {summary}
        </span>
      </div>
      {open && (
        <ul
          className="jp-dotnb-Files"
          id={listId}
          aria-label={`files in ${folder.path}`}
        >
          {pages.map(file => (
            <FileRow
              key={file.path}
              runId={props.runId}
              role={props.role}
              file={file}
              state={stateOf(file.path)}
              services={services}
            />
          ))}
          {error && (
            <li>
              <Message kind="error">Could not list the folder: {error}</Message>
            </li>
          )}
          {busy && (
            <li>
              <Loading />
            </li>
          )}
          {!busy && total !== null && pages.length < total && (
            <li>
              <LinkButton onClick={() => void load(pages.length)}>
                Show {Math.min(FOLDER_PAGE, total - pages.length)} more of{' '}
                {total - pages.length}
              </LinkButton>
            </li>
          )}
        </ul>
      )}
    </li>
  );
}

function SeriesChart(props: {
  name: string;
  points: IMetricPoint[];
  services: IPanelServices;
}): JSX.Element {
  const host = React.useRef<HTMLDivElement>(null);
  const { name, points, services } = props;
  // A layout effect: its cleanup runs while the host is still in the DOM.
  React.useLayoutEffect(() => {
    if (!host.current) {
      return;
    }
    return services.renderChart(
      seriesSpec(points, name, themeFromDocument()),
      host.current
    );
  }, [name, points, services]);
  return (
    <div className="jp-dotnb-SeriesChart">
      <div className="jp-dotnb-SeriesChart-title">{name} by step</div>
      <div ref={host} className="jp-dotnb-Chart jp-dotnb-Chart-small" />
    </div>
  );
}

function Lineage(props: {
  manifest: IRunManifest;
  services: IPanelServices;
}): JSX.Element {
  const { manifest, services } = props;
  const cells = services.notebookCells(manifest.notebook);
  const report = analyzeLineage(manifest.lineage, cells);
  const warnings: string[] = [];
  if (report.outOfOrder) {
    warnings.push('Cells ran out of notebook order before this run.');
  }
  if (report.changed) {
    warnings.push(
      `${fmt.plural(report.changed, 'cell')} of this lineage changed or were deleted since the run.`
    );
  }
  if (report.repeated) {
    warnings.push(`${fmt.plural(report.repeated, 'cell')} ran more than once.`);
  }
  return (
    <>
      {warnings.map(text => (
        <Message key={text} kind="warning">
          {text}
        </Message>
      ))}
      {!report.compared && manifest.notebook && (
        <div className="jp-dotnb-Note">
          Open {manifest.notebook} to compare the lineage with its cells now.
        </div>
      )}
      <ol className="jp-dotnb-Lineage">
        {report.entries.map((entry, index) => {
          const cell = entry.cell;
          const where = !report.compared
            ? ''
            : entry.position === null
              ? 'changed since'
              : `cell ${entry.position + 1}`;
          const isThis = cell.run === manifest.id;
          return (
            <li
              key={index}
              className={
                entry.position === null && report.compared
                  ? 'jp-dotnb-Lineage-changed'
                  : ''
              }
            >
              <details>
                <summary>
                  <span className="jp-dotnb-Lineage-count">
                    [{cell.execution_count ?? ' '}]
                  </span>{' '}
                  {isThis
                    ? 'this run'
                    : cell.tracked
                      ? `tracked${cell.run ? ' run' : ''}`
                      : 'untracked'}
                  {cell.status === 'error' ? ' · error' : ''}
                  {where ? ` · ${where}` : ''}
                  {cell.run && !isThis && (
                    <>
                      {' · '}
                      <LinkButton
                        onClick={() =>
                          services.navigate({
                            kind: 'details',
                            id: cell.run as string
                          })
                        }
                      >
                        open run
                      </LinkButton>
                    </>
                  )}
                </summary>
                {cell.code === null || cell.code === undefined ? (
                  <Message kind="warning">
                    {cell.code_corrupt
                      ? 'Code object corrupted'
                      : 'Code object missing'}
                  </Message>
                ) : (
                  <CodeBlock code={cell.code} highlight={services.highlight} />
                )}
              </details>
            </li>
          );
        })}
      </ol>
    </>
  );
}

function Environment(props: { manifest: IRunManifest }): JSX.Element {
  const env = props.manifest.environment ?? {};
  const git = env.git;
  const rows: [string, React.ReactNode][] = [];
  const add = (key: string, value: unknown) => {
    if (value !== undefined && value !== null && value !== '') {
      rows.push([key, String(value)]);
    }
  };
  add('Python', [env.implementation, env.python].filter(Boolean).join(' '));
  add('Platform', env.platform);
  add('Machine', env.machine);
  add('CPUs', env.cpu_count);
  add('Memory', env.memory_bytes ? fmt.bytes(env.memory_bytes) : null);
  add('Interpreter', env.executable);
  if (git) {
    add(
      'Git',
      [
        git.commit ? git.commit.slice(0, 10) : '',
        git.branch ? `(${git.branch})` : '',
        git.dirty
          ? 'with uncommitted changes'
          : git.dirty === false
            ? 'clean'
            : ''
      ]
        .filter(Boolean)
        .join(' ')
    );
  }
  add(
    'Packages',
    env.distributions ? `recorded (${fmt.shortHash(env.distributions)})` : null
  );
  return <KeyValues rows={rows} empty="Not recorded" />;
}

function RunLinks(props: {
  manifest: IRunManifest;
  remote: string | null;
  services: IPanelServices;
}): JSX.Element {
  const { manifest, services } = props;
  const link = (id: string | null | undefined) =>
    id ? (
      <LinkButton onClick={() => services.navigate({ kind: 'details', id })}>
        {fmt.shortId(id)}
      </LinkButton>
    ) : null;
  const rows: [string, React.ReactNode][] = [
    ['Id', <code key="id">{manifest.id}</code>]
  ];
  const who = fmt.author(manifest.environment ?? {});
  if (who) {
    rows.push(['Recorded by', who]);
  }
  if (props.remote) {
    rows.push(['Pulled from', props.remote]);
  }
  if (manifest.signature) {
    const mark = fmt.signatureMark(manifest.signature);
    rows.push([
      'Signature',
      mark ? (
        <span
          key="signature"
          className={`jp-dotnb-Signature jp-mod-${mark.kind}`}
          title={mark.title}
        >
          {mark.kind === 'good'
            ? `good, by ${manifest.signature.signer ?? 'an allowed key'}`
            : mark.kind === 'bad'
              ? `bad: ${manifest.signature.reason ?? 'does not verify'}`
              : `by a key not in the allowed signers (${manifest.signature.signer ?? ''})`}
        </span>
      ) : (
        'unsigned'
      )
    ]);
  }
  if (manifest.parent) {
    rows.push(['Previous run in kernel', link(manifest.parent)]);
  }
  if (manifest.checkpoint_of) {
    rows.push(['Checkpoint before restoring', link(manifest.checkpoint_of)]);
  }
  if (manifest.reproduces) {
    rows.push(['Reproduces', link(manifest.reproduces)]);
  }
  const snapshot = manifest.notebook_snapshot;
  rows.push([
    'Notebook snapshot',
    snapshot && 'hash' in snapshot
      ? `${fmt.bytes(snapshot.size)}, from ${
          manifest.notebook_source === 'frontend'
            ? 'JupyterLab (unsaved edits included)'
            : manifest.notebook_source === 'headless'
              ? 'a headless run'
              : 'the file on disk'
        }`
      : snapshot && 'unavailable' in snapshot
        ? `unavailable: ${snapshot.unavailable}`
        : 'none'
  ]);
  return <KeyValues rows={rows} />;
}

export function RunDetails(props: {
  id: string;
  services: IPanelServices;
}): JSX.Element {
  const { id, services } = props;
  const { model } = services;
  // Reload when the live feed reports this run changed (e.g. its notebook
  // snapshot arrived), or a checkpoint appeared (a restore changed files on disk).
  const [version, setVersion] = React.useState(0);
  React.useEffect(() => {
    const slot = (_: unknown, runs: IRunSummary[]) => {
      if (runs.some(r => r.id === id || r.kind === 'checkpoint')) {
        setVersion(v => v + 1);
      }
    };
    model.runsUpdated.connect(slot);
    return () => {
      model.runsUpdated.disconnect(slot);
    };
  }, [model, id]);
  useSignal(model.changed);
  const run = useAsync(() => model.manifest(id), [id, version]);
  const status = useAsync(() => services.api.fileStatus(id), [id, version]);

  const back = () => services.back();
  if (run.error) {
    return (
      <div className="jp-dotnb-View">
        <ViewHeader title="Run" onBack={back} />
        <Message kind="error">{run.error}</Message>
      </div>
    );
  }
  const manifest = run.value;
  if (!manifest || manifest.id.toUpperCase().indexOf(id.toUpperCase()) !== 0) {
    return (
      <div className="jp-dotnb-View">
        <ViewHeader title="Run" onBack={back} />
        <Loading />
      </div>
    );
  }
  const selected = model.selection.includes(manifest.id);
  const metricEntries = Object.entries(manifest.metrics ?? {});
  const series = Object.entries(manifest.metric_series ?? {}).filter(
    ([, points]) => isChartable(points)
  );
  const notebookStatus = status.value?.files.find(f => f.role === 'notebook');
  const who = fmt.author(manifest.environment ?? {});
  // Where a run came from, its tags and note are index data (summaries), not
  // part of its manifest.
  const summary = model.summary(manifest.id);
  const remote = summary?.remote ?? null;
  const tags = summary?.tags ?? [];
  const note = summary?.note ?? null;
  return (
    <div className="jp-dotnb-View jp-dotnb-Details" data-run-id={manifest.id}>
      <ViewHeader
        title={
          <>
            <span className="jp-dotnb-Row-number">#{manifest.number}</span>{' '}
            <span className="jp-dotnb-Details-name">{manifest.name ?? ''}</span>
          </>
        }
        onBack={back}
      />
      <div className="jp-dotnb-ViewBody">
        <div className="jp-dotnb-Summary">
          <StatusChip status={manifest.status} kind={manifest.kind} />
          <span title={fmt.dateTime(manifest.started_at)}>
            {fmt.timeAgo(manifest.started_at)}
          </span>
          <span>{fmt.duration(manifest.duration_s)}</span>
          {who && (
            <span className="jp-dotnb-Details-author" title="Recorded by">
              {who}
            </span>
          )}
          {remote && (
            <span
              className="jp-dotnb-Chip jp-dotnb-Chip-remote jp-dotnb-Details-remote"
              title={`Pulled from the remote ${remote}; its data files are fetched from there when first needed`}
            >
              from {remote}
            </span>
          )}
        </div>
        <Annotations
          key={manifest.id}
          tags={tags}
          note={note}
          annotate={async change => {
            await services.api.annotate(manifest.id, change);
            await model.refresh(); // the summary holds the tags and note shown
          }}
        />
        {manifest.notebook && (
          <div className="jp-dotnb-Summary">
            <LinkButton
              onClick={() => services.openPath(manifest.notebook as string)}
              title={`Open ${manifest.notebook}`}
            >
              {manifest.notebook}
            </LinkButton>
            {notebookStatus && notebookStatus.state !== 'same' && (
              <span
                className="jp-dotnb-Note"
                title={STATE_TITLE[notebookStatus.state]}
              >
                {notebookStatus.state === 'modified'
                  ? 'changed since this run'
                  : `notebook ${STATE_LABEL[notebookStatus.state]}`}
              </span>
            )}
          </div>
        )}
        <div className="jp-dotnb-DetailActions">
          <Button
            small
            className="jp-mod-styled jp-mod-accept jp-dotnb-RestoreButton"
            onClick={() => services.restore(manifest.id)}
            title="Bring the data files and the notebook back to this run's state"
          >
            Restore…
          </Button>
          {services.sweep && manifest.kind === 'run' && (
            <Button
              small
              minimal
              className="jp-dotnb-SweepButton"
              onClick={() => services.sweep?.(manifest.id)}
              title="Run this run's notebook once per point of a parameter space, on the server's cluster"
            >
              Sweep…
            </Button>
          )}
          {services.openLineage && (
            <Button
              small
              minimal
              className="jp-dotnb-DataLineageButton"
              onClick={() => services.openLineage?.({ run: manifest.id })}
              title="Where this run's inputs came from and what used its outputs, as a graph"
            >
              Lineage
            </Button>
          )}
          <Button
            small
            minimal
            onClick={() => model.toggleSelected(manifest.id)}
            title="Select this run for compare"
          >
            {selected ? 'Selected for compare' : 'Select for compare'}
          </Button>
          {model.selection.length === 1 && !selected && (
            <Button
              small
              minimal
              onClick={() =>
                services.navigate({
                  kind: 'compare',
                  ids: [model.selection[0], manifest.id]
                })
              }
            >
              Compare with selected
            </Button>
          )}
        </div>
        {manifest.error && (
          <Message kind="error">
            {manifest.error.type}: {manifest.error.message}
          </Message>
        )}
        {(manifest.warnings ?? []).map((warning, index) => (
          <Message key={index} kind="warning">
            {warning}
          </Message>
        ))}
        {manifest.kind === 'run' && (
          <Section title="Code">
            <CodeBlock code={manifest.code} highlight={services.highlight} />
          </Section>
        )}
        {manifest.kind === 'run' && (
          <Section title="Lineage" count={manifest.lineage.length} open={false}>
            <Lineage manifest={manifest} services={services} />
          </Section>
        )}
        {manifest.kind === 'run' && (
          <Section
            title="Params"
            count={Object.keys(manifest.params ?? {}).length}
          >
            <KeyValues
              rows={Object.entries(manifest.params ?? {}).map(
                ([key, value]) => [
                  key,
                  <span key={key}>
                    {fmt.value(value)}
                    {(manifest.param_overrides ?? []).includes(key) && (
                      <span className="jp-dotnb-Flags"> (--param)</span>
                    )}
                  </span>
                ]
              )}
            />
          </Section>
        )}
        {manifest.kind === 'run' && (
          <Section title="Metrics" count={metricEntries.length}>
            <KeyValues
              rows={metricEntries.map(([key, value]) => [
                key,
                <span key={key} className="jp-dotnb-MetricValue">
                  <span>{fmt.value(value)}</span>
                  {typeof value === 'number' && (
                    <LinkButton
                      onClick={() =>
                        services.navigate({ kind: 'chart', metric: key })
                      }
                      title={`Chart ${key} across runs`}
                    >
                      chart
                    </LinkButton>
                  )}
                </span>
              ])}
            />
            {series.map(([name, points]) => (
              <SeriesChart
                key={name}
                name={name}
                points={points}
                services={services}
              />
            ))}
          </Section>
        )}
        <Section title="Inputs" count={fmt.fileCount(manifest.inputs)}>
          <FileTable
            runId={manifest.id}
            role="input"
            files={manifest.inputs}
            status={status.value?.files}
            services={services}
          />
          {(manifest.external_inputs ?? []).length > 0 && (
            <div className="jp-dotnb-External">
              <div className="jp-dotnb-Note">
                Read outside the project (not stored):
              </div>
              <ul>
                {(manifest.external_inputs ?? []).map(ext => (
                  <li key={ext.path}>
                    {ext.path}{' '}
                    {ext.size !== null && ext.size !== undefined
                      ? `(${fmt.bytes(ext.size)})`
                      : ''}
                  </li>
                ))}
              </ul>
            </div>
          )}
        </Section>
        <Section
          title={manifest.kind === 'checkpoint' ? 'Files saved' : 'Outputs'}
          count={fmt.fileCount(manifest.outputs)}
        >
          <FileTable
            runId={manifest.id}
            role="output"
            files={manifest.outputs}
            status={status.value?.files}
            services={services}
          />
          {(manifest.absent ?? []).length > 0 && (
            <div className="jp-dotnb-Note">
              Did not exist before the restore:{' '}
              {(manifest.absent ?? []).join(', ')}
            </div>
          )}
        </Section>
        {status.error && (
          <Message kind="warning">File check failed: {status.error}</Message>
        )}
        {manifest.kind === 'run' && (
          <Section title="Environment" open={false}>
            <Environment manifest={manifest} />
          </Section>
        )}
        <Section title="Run" open={false}>
          <RunLinks manifest={manifest} remote={remote} services={services} />
          <div className="jp-dotnb-Note" title={manifest.started_at}>
            Started {fmt.dateTime(manifest.started_at)}
          </div>
        </Section>
      </div>
    </div>
  );
}
