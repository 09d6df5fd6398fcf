import { Button, HTMLSelect, InputGroup } from '@jupyterlab/ui-components';
import * as React from 'react';

import { authorOptions, parseSortKey, sortKey } from '../runListState';
import { IPanelServices } from '../services';
import { RunKind, RunStatus } from '../types';
import { Message } from './common';
import { useSignal } from './hooks';
import { RemoteBar } from './RemoteBar';
import { RunList } from './RunList';

/** What a new user sees before the first run: how to start. */
export function EmptyState(): JSX.Element {
  return (
    <div className="jp-dotnb-EmptyState">
      <h3>No runs yet</h3>
      <p>
        dotnb records each tracked cell as a run: its code, params, metrics,
        data files and environment.
      </p>
      <ol>
        <li>
          In a notebook, run <code>%load_ext dotnb</code>
        </li>
        <li>
          Start a cell with <code>%%track</code> (or run{' '}
          <code>%dotnb track all</code> to record every cell)
        </li>
        <li>Run it: the run appears here, live.</li>
      </ol>
      <p>
        Report metrics with <code>%%track --metrics acc</code> or{' '}
        <code>dotnb.metric(&quot;acc&quot;, 0.93)</code>; any run can be
        compared with another and restored, data files and notebook.
      </p>
    </div>
  );
}

/** The newest recorded run (not a checkpoint), the current notebook's first. */
function newestRun(model: IPanelServices['model']): string | null {
  for (const section of ['current', 'others'] as const) {
    let newest: { id: string; started_at: string } | null = null;
    for (const run of model.section(section).runs) {
      if (
        run.kind === 'run' &&
        (!newest || run.started_at > newest.started_at)
      ) {
        newest = run;
      }
    }
    if (newest) {
      return newest.id;
    }
  }
  return null;
}

export function ListView(props: {
  services: IPanelServices;
  activeId: string | null;
}): JSX.Element {
  const { services } = props;
  const { model } = services;
  useSignal(model.changed);
  const [text, setText] = React.useState(model.filter.text);

  // Typing filters after a short pause, not on every key.
  React.useEffect(() => {
    const timer = setTimeout(() => model.setFilter({ text }), 250);
    return () => clearTimeout(timer);
  }, [text, model]);

  const selection = model.selection;
  const lineageRun = selection.length === 1 ? selection[0] : newestRun(model);
  const sortValue = sortKey(model.sort);
  const metricNames = model.metricNames;
  const sortOptions: [string, string][] = [
    ['time:desc', 'Newest first'],
    ['time:asc', 'Oldest first'],
    ['duration:desc', 'Slowest first'],
    ['duration:asc', 'Fastest first']
  ];
  for (const name of metricNames) {
    sortOptions.push([`metric:desc:${name}`, `${name}: highest first`]);
    sortOptions.push([`metric:asc:${name}`, `${name}: lowest first`]);
  }
  if (!sortOptions.some(([key]) => key === sortValue)) {
    sortOptions.push([sortValue, sortValue]);
  }

  const all = model.section('others');
  const countText = all.loaded
    ? `${all.runs.length.toLocaleString()}${all.next ? '+' : ''} run${all.runs.length === 1 && !all.next ? '' : 's'}${model.filter.text || model.filter.status || model.filter.kind || model.filter.author ? ' match' : ''}`
    : '';

  const compare = () => {
    if (selection.length === 2) {
      services.navigate({ kind: 'compare', ids: [selection[0], selection[1]] });
    }
  };

  return (
    <div className="jp-dotnb-ListView">
      <div className="jp-dotnb-Filters">
        <InputGroup
          type="search"
          className="jp-dotnb-Search"
          rightIcon="ui-components:search"
          placeholder="Filter: name, params, code"
          aria-label="Filter runs by name, params or code"
          value={text}
          onChange={event => setText(event.target.value)}
        />
        <div className="jp-dotnb-FilterRow">
          <HTMLSelect
            aria-label="Status"
            value={model.filter.status}
            onChange={event =>
              model.setFilter({ status: event.target.value as RunStatus | '' })
            }
            options={[
              { value: '', label: 'Any status' },
              { value: 'ok', label: 'ok' },
              { value: 'error', label: 'error' },
              { value: 'interrupted', label: 'interrupted' }
            ]}
          />
          <HTMLSelect
            aria-label="Kind"
            value={model.filter.kind}
            onChange={event =>
              model.setFilter({ kind: event.target.value as RunKind | '' })
            }
            options={[
              { value: '', label: 'All kinds' },
              { value: 'run', label: 'Runs' },
              { value: 'checkpoint', label: 'Checkpoints' }
            ]}
          />
          <HTMLSelect
            aria-label="Author"
            className="jp-dotnb-AuthorFilter"
            title="Only runs recorded by this user (on this host)"
            value={model.filter.author}
            onChange={event => model.setFilter({ author: event.target.value })}
            options={authorOptions(model.authors, model.filter.author)}
          />
          <HTMLSelect
            aria-label="Sort"
            value={sortValue}
            onChange={event => model.setSort(parseSortKey(event.target.value))}
            options={sortOptions.map(([value, label]) => ({ value, label }))}
          />
        </div>
        <div className="jp-dotnb-FilterRow jp-dotnb-Actions">
          <Button
            small
            className="jp-mod-styled jp-mod-accept jp-dotnb-CompareButton"
            disabled={selection.length !== 2}
            onClick={compare}
            title={
              selection.length === 2
                ? 'Compare the two selected runs'
                : 'Tick two runs to compare them'
            }
          >
            Compare{selection.length ? ` (${selection.length}/2)` : ''}
          </Button>
          {selection.length > 0 && (
            <Button small minimal onClick={() => model.clearSelection()}>
              Clear
            </Button>
          )}
          <Button
            small
            minimal
            className="jp-dotnb-ChartButton"
            onClick={() => services.navigate({ kind: 'chart', metric: null })}
            title="Chart a metric across this notebook's runs"
          >
            Metric chart
          </Button>
          {services.openExperiments && (
            <Button
              small
              minimal
              className="jp-dotnb-ExperimentsButton"
              onClick={() => services.openExperiments?.()}
              title="Open the runs as a table of params and metrics in the main area"
            >
              Experiments
            </Button>
          )}
          {services.openLineage && (
            <Button
              small
              minimal
              className="jp-dotnb-DataLineageButton"
              disabled={selection.length > 1 || !lineageRun}
              onClick={() =>
                lineageRun && services.openLineage?.({ run: lineageRun })
              }
              title="The lineage graph of the selected run (or of the newest)"
            >
              Lineage
            </Button>
          )}
        </div>
        <RemoteBar remotes={services.remotes} />
        <div className="jp-dotnb-ListStatus" role="status">
          <span className="jp-dotnb-RunCount">{countText}</span>
          {model.loadingAll && <span>loading every run to sort…</span>}
          <span
            className={`jp-dotnb-Live ${model.live ? 'jp-mod-live' : ''}`}
            title={
              model.live
                ? 'New runs appear here as they are recorded'
                : (model.liveError ?? 'Connecting…')
            }
          >
            {model.live ? 'live' : 'offline'}
          </span>
        </div>
        {!model.live && model.liveError && (
          <Message kind="warning">
            Live updates paused: {model.liveError}
          </Message>
        )}
      </div>
      {model.storeEmpty ? (
        <EmptyState />
      ) : (
        <RunList
          model={model}
          rows={model.rows}
          activeId={props.activeId}
          onOpen={id => services.navigate({ kind: 'details', id })}
        />
      )}
    </div>
  );
}
