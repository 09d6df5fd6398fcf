/**
 * Two runs side by side: params and metrics with deltas, the code diff, files
 * that changed, and environment changes. The differences come from the API
 * (`runs/{a}/diff/{b}`); this view only lays them out.
 */

import { Button } from '@jupyterlab/ui-components';
import * as React from 'react';

import * as fmt from '../format';
import { IPanelServices } from '../services';
import { IRunDiff, IRunManifest, JSONValue } from '../types';
import { LinkButton, Loading, Message, Section, ViewHeader } from './common';
import { DataTable, IColumn } from './DataTable';
import { useAsync } from './hooks';

interface ICompared {
  a: IRunManifest;
  b: IRunManifest;
  diff: IRunDiff;
}

/** The unified diff, one line per element, coloured by its first character. */
export function CodeDiff(props: { diff: string }): JSX.Element {
  if (!props.diff) {
    return <div className="jp-dotnb-Empty">Same code</div>;
  }
  const lines = props.diff.replace(/\n$/, '').split('\n');
  return (
    <pre
      className="jp-dotnb-Code jp-dotnb-Diff"
      tabIndex={0}
      aria-label="Code diff"
    >
      {lines.map((line, index) => {
        const kind =
          line.startsWith('+++') || line.startsWith('---')
            ? 'file'
            : line.startsWith('@@')
              ? 'hunk'
              : line.startsWith('+')
                ? 'add'
                : line.startsWith('-')
                  ? 'del'
                  : 'ctx';
        return (
          <div key={index} className={`jp-dotnb-Diff-${kind}`}>
            {line || ' '}
          </div>
        );
      })}
    </pre>
  );
}

function SideBySide(props: {
  a: Record<string, JSONValue>;
  b: Record<string, JSONValue>;
  deltas?: boolean;
  labels: [string, string];
}): JSX.Element {
  const keys = Array.from(
    new Set([...Object.keys(props.a), ...Object.keys(props.b)])
  ).sort();
  if (!keys.length) {
    return <div className="jp-dotnb-Empty">None</div>;
  }
  const shown = (v: JSONValue | undefined) =>
    v === undefined ? '—' : fmt.value(v);
  const columns: IColumn<string>[] = [
    { header: 'Name', value: key => key, title: key => key },
    { header: props.labels[0], value: key => shown(props.a[key]) },
    { header: props.labels[1], value: key => shown(props.b[key]) }
  ];
  if (props.deltas) {
    columns.push({
      header: 'Δ',
      className: 'jp-dotnb-Delta',
      fit: 'nowrap',
      value: key => {
        const [va, vb] = [props.a[key], props.b[key]];
        return va !== undefined && vb !== undefined ? fmt.delta(va, vb) : '';
      }
    });
  }
  return (
    <DataTable
      className="jp-dotnb-SideBySide"
      columns={columns}
      rows={keys}
      rowKey={key => key}
      rowClass={key =>
        JSON.stringify(props.a[key]) === JSON.stringify(props.b[key])
          ? undefined
          : 'jp-mod-changed'
      }
    />
  );
}

function changeLabel(a: JSONValue, b: JSONValue): string {
  if (a === null || a === undefined) {
    return 'added';
  }
  if (b === null || b === undefined) {
    return 'removed';
  }
  return 'changed';
}

function FileChanges(props: { diff: IRunDiff }): JSX.Element {
  const rows: [string, string, string | null, string | null][] = [];
  for (const role of ['inputs', 'outputs'] as const) {
    for (const [path, [a, b]] of Object.entries(props.diff[role])) {
      rows.push([path, `${role.slice(0, -1)} ${changeLabel(a, b)}`, a, b]);
    }
  }
  if (!rows.length) {
    return <div className="jp-dotnb-Empty">Same files, same content</div>;
  }
  const hash = (h: string | null) => fmt.shortHash(h) || '—';
  // Two columns fit the sidebar: the path with its content hashes under it,
  // and the change, which never wraps.
  return (
    <DataTable
      className="jp-dotnb-FileChanges"
      columns={[
        {
          header: 'Path',
          value: r => (
            <>
              {r[0]}
              <span className="jp-dotnb-HashChange">
                <span>{hash(r[2])}</span> → <span>{hash(r[3])}</span>
              </span>
            </>
          ),
          title: r => `${r[0]}\nA: ${r[2] ?? '—'}\nB: ${r[3] ?? '—'}`
        },
        { header: 'Change', value: r => r[1], fit: 'nowrap', width: '8.5em' }
      ]}
      rows={rows}
      rowKey={r => `${r[1]}-${r[0]}`}
      rowData={r => ({ path: r[0] })}
    />
  );
}

function EnvironmentChanges(props: { diff: IRunDiff }): JSX.Element {
  const entries = Object.entries(props.diff.environment);
  if (!entries.length) {
    return <div className="jp-dotnb-Empty">Same environment</div>;
  }
  const shown = (v: JSONValue) =>
    v === null || v === undefined ? '—' : fmt.value(v);
  return (
    <DataTable
      columns={[
        {
          header: 'What',
          value: e => (e[0].startsWith('pkg:') ? e[0].slice(4) : e[0]),
          title: e => e[0]
        },
        { header: 'A', value: e => shown(e[1][0]) },
        { header: 'B', value: e => shown(e[1][1]) }
      ]}
      rows={entries}
      rowKey={e => e[0]}
    />
  );
}

export function Compare(props: {
  ids: [string, string];
  services: IPanelServices;
}): JSX.Element {
  const { services } = props;
  const { model } = services;
  // The older run is A, so deltas read "B − A" forward in time.
  const [first, second] = [...props.ids].sort() as [string, string];
  const [swapped, setSwapped] = React.useState(false);
  const [idA, idB] = swapped ? [second, first] : [first, second];
  const data = useAsync<ICompared>(async () => {
    const [a, b, diff] = await Promise.all([
      model.manifest(idA),
      model.manifest(idB),
      services.api.diff(idA, idB)
    ]);
    return { a, b, diff };
  }, [idA, idB]);

  const header = <ViewHeader title="Compare" onBack={() => services.back()} />;
  if (data.error) {
    return (
      <div className="jp-dotnb-View">
        {header}
        <Message kind="error">{data.error}</Message>
      </div>
    );
  }
  if (!data.value || data.value.a.id !== idA || data.value.b.id !== idB) {
    return (
      <div className="jp-dotnb-View">
        {header}
        <Loading />
      </div>
    );
  }
  const { a, b, diff } = data.value;
  const labels: [string, string] = [`A #${a.number}`, `B #${b.number}`];
  const runLine = (label: string, run: IRunManifest) => (
    <div className="jp-dotnb-CompareRun">
      <span className="jp-dotnb-CompareRun-label">{label}</span>
      <LinkButton
        onClick={() => services.navigate({ kind: 'details', id: run.id })}
      >
        {fmt.runTitle(run)}
      </LinkButton>
      <span className="jp-dotnb-Note" title={fmt.dateTime(run.started_at)}>
        {fmt.timeAgo(run.started_at)}
        {run.notebook ? ` · ${fmt.baseName(run.notebook)}` : ''}
      </span>
    </div>
  );
  const changedParams = Object.keys(diff.params).length;
  const changedMetrics = Object.keys(diff.metrics).length;
  const changedFiles =
    Object.keys(diff.inputs).length + Object.keys(diff.outputs).length;
  return (
    <div className="jp-dotnb-View jp-dotnb-Compare">
      {header}
      <div className="jp-dotnb-ViewBody">
        {runLine('A', a)}
        {runLine('B', b)}
        <div className="jp-dotnb-DetailActions">
          <Button small minimal onClick={() => setSwapped(s => !s)}>
            Swap A and B
          </Button>
        </div>
        <Section
          title="Params"
          count={changedParams ? `${changedParams} changed` : 'same'}
        >
          <SideBySide a={a.params ?? {}} b={b.params ?? {}} labels={labels} />
        </Section>
        <Section
          title="Metrics"
          count={changedMetrics ? `${changedMetrics} changed` : 'same'}
        >
          <SideBySide
            a={(a.metrics ?? {}) as Record<string, JSONValue>}
            b={(b.metrics ?? {}) as Record<string, JSONValue>}
            labels={labels}
            deltas
          />
        </Section>
        <Section title="Code" count={diff.code ? 'changed' : 'same'}>
          <CodeDiff diff={diff.code} />
        </Section>
        <Section
          title="Files"
          count={changedFiles ? `${changedFiles} changed` : 'same'}
        >
          <FileChanges diff={diff} />
        </Section>
        <Section
          title="Environment"
          count={
            Object.keys(diff.environment).length
              ? `${Object.keys(diff.environment).length} changed`
              : 'same'
          }
          open={
            Object.keys(diff.environment).length > 0 &&
            Object.keys(diff.environment).length < 20
          }
        >
          <EnvironmentChanges diff={diff} />
        </Section>
      </div>
    </div>
  );
}
