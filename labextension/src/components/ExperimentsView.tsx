/**
 * The Experiments view (main area): a toolbar (scope, search, filters, columns,
 * tags, export), the runs table, the active run's note, and — from the
 * selection — charts (param vs metric, parallel coordinates) and an N-run
 * comparison. Strings go through the translator; everything from a run is
 * rendered as text.
 */

import type { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { themeFromDocument } from '../chart';
import {
  compareRows,
  formatNumber,
  IExperimentColumn,
  numericColumns,
  toCsv
} from '../experiments';
import {
  BRUSH,
  brushFilters,
  parallelBrushFilters,
  parallelRanges,
  parallelSpec,
  scatterSpec
} from '../experimentsChart';
import type { TableGroup } from '../api';
import { CHART_ROWS, type ExperimentsModel } from '../experimentsModel';
import { IRunSummary, JSONValue } from '../types';
import { ExperimentsGrid } from './ExperimentsGrid';

export interface IExperimentsServices {
  renderChart(
    spec: Record<string, unknown>,
    host: HTMLElement,
    onSelect?: (id: string) => void,
    onBrush?: { signal: string; handler: (value: unknown) => void }
  ): () => void;
  /** Show a run in the Runs panel. */
  openRun(id: string): void;
  /** The code and file diff of two runs, in the Runs panel. */
  compareTwo(a: string, b: string): void;
  /** The notebook open in the main area, if any (the scope's "this notebook"). */
  currentNotebook(): string | null;
  /** Save a text file for the user (the CSV export). */
  download(name: string, text: string, type: string): void;
}

function useModel(model: ExperimentsModel): number {
  const [version, setVersion] = React.useState(0);
  React.useEffect(() => {
    const bump = () => setVersion(v => v + 1);
    model.changed.connect(bump);
    bump(); // a change emitted before this effect connected is not missed
    return () => {
      model.changed.disconnect(bump);
    };
  }, [model]);
  return version;
}

function Chart(props: {
  spec: Record<string, unknown>;
  /**
   * What the spec is drawn from (runs, columns): the chart is drawn again only
   * when it changes. A spec is a new object on every render, and drawing it
   * again would drop a brush before its value settles.
   */
  specKey: string;
  services: IExperimentsServices;
  label: string;
  /** A brush on the chart: the value of its selection signal. */
  onBrush?: (value: unknown) => void;
}): JSX.Element {
  const host = React.useRef<HTMLDivElement>(null);
  const { specKey, services } = props;
  const spec = React.useRef(props.spec);
  spec.current = props.spec;
  const brush = React.useRef(props.onBrush);
  brush.current = props.onBrush;
  const brushed = props.onBrush !== undefined;
  React.useEffect(() => {
    if (!host.current) {
      return;
    }
    return services.renderChart(
      spec.current,
      host.current,
      id => services.openRun(id),
      brushed
        ? { signal: BRUSH, handler: value => brush.current?.(value) }
        : undefined
    );
  }, [specKey, services, brushed]);
  return (
    <div
      className="jp-dotnb-XChart"
      ref={host}
      role="img"
      aria-label={props.label}
    />
  );
}

function valueText(value: JSONValue | undefined): string {
  if (value === undefined || value === null) {
    return '';
  }
  if (typeof value === 'number') {
    return formatNumber(value);
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function CompareRuns(props: {
  runs: IRunSummary[];
  services: IExperimentsServices;
  trans: TranslationBundle;
}): JSX.Element {
  const { runs, trans } = props;
  const rows = compareRows(runs);
  return (
    <div className="jp-dotnb-XCompare">
      <table className="jp-dotnb-Table" aria-label={trans.__('Runs compared')}>
        <thead>
          <tr>
            <th scope="col">{trans.__('param / metric')}</th>
            {runs.map(run => (
              <th key={run.id} scope="col" title={run.id}>
                {`#${run.number}${run.name ? ` ${run.name}` : ''}`}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map(row => (
            <tr
              key={`${row.kind}:${row.name}`}
              className={row.differs ? 'jp-mod-differs' : undefined}
            >
              <th scope="row">
                <span className="jp-dotnb-XKind">
                  {row.kind === 'param' ? 'p' : 'm'}
                </span>
                {row.name}
              </th>
              {row.values.map((value, i) => (
                <td key={runs[i].id}>{valueText(value)}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      <div className="jp-dotnb-XPairs">
        <span>{trans.__('Code and file diff:')}</span>
        {runs.slice(1).map(run => (
          <button
            key={run.id}
            type="button"
            className="jp-dotnb-LinkButton"
            onClick={() => props.services.compareTwo(runs[0].id, run.id)}
          >
            {`#${runs[0].number} → #${run.number}`}
          </button>
        ))}
      </div>
    </div>
  );
}

function NoteEditor(props: {
  run: IRunSummary;
  model: ExperimentsModel;
  trans: TranslationBundle;
  onError: (message: string | null) => void;
}): JSX.Element {
  const { run, trans } = props;
  const [text, setText] = React.useState(run.note ?? '');
  React.useEffect(() => setText(run.note ?? ''), [run.id, run.note]);
  const id = `jp-dotnb-xnote-${run.id}`;
  return (
    <div className="jp-dotnb-XNote">
      <label htmlFor={id}>
        {trans.__('Note on run #%1', run.number)}
        {run.name ? ` (${run.name})` : ''}
      </label>
      <textarea
        id={id}
        value={text}
        rows={2}
        maxLength={10000}
        onChange={event => setText(event.target.value)}
      />
      <button
        type="button"
        className="jp-mod-styled jp-mod-accept"
        disabled={text === (run.note ?? '')}
        onClick={() =>
          props.model.setNote(run.id, text).then(
            () => props.onError(null),
            error => props.onError(String(error?.message ?? error))
          )
        }
      >
        {trans.__('Save note')}
      </button>
    </div>
  );
}

export function ExperimentsView(props: {
  model: ExperimentsModel;
  services: IExperimentsServices;
  trans: TranslationBundle;
}): JSX.Element {
  const { model, services, trans } = props;
  const version = useModel(model);
  const [filterText, setFilterText] = React.useState('');
  const [search, setSearch] = React.useState(model.query);
  const [tagText, setTagText] = React.useState('');
  const brushed = React.useRef<string[]>([]); // the filters the last brush added
  // The filters the parallel coordinates' brushes added, by column: a brush on
  // an axis replaces that axis's, and leaves the other axes' in place.
  const axisBrushed = React.useRef(new Map<string, string[]>());
  const [message, setMessage] = React.useState<string | null>(null);
  const [active, setActive] = React.useState<IRunSummary | null>(null);
  const [panel, setPanel] = React.useState<
    'none' | 'scatter' | 'parallel' | 'compare'
  >('none');
  const [xKey, setXKey] = React.useState<string>('');
  const [yKey, setYKey] = React.useState<string>('');

  const selection = model.selection;
  const current = services.currentNotebook();
  const chartRuns =
    selection.length >= 2 ? selection : model.loadedRows(CHART_ROWS);
  // A chart of the first rows has them all, whichever rows the grid shows.
  const firstRowsCharted =
    (panel === 'scatter' || panel === 'parallel') && selection.length < 2;
  React.useEffect(() => {
    if (firstRowsCharted) {
      model.ensureChartRows();
    }
  }, [firstRowsCharted, model, version]);
  const numeric = numericColumns(model.columns, chartRuns);
  const metrics = numeric.filter(c => c.kind === 'metric');
  const xColumn = numeric.find(c => c.key === xKey) ?? numeric[0];
  const yColumn =
    metrics.find(c => c.key === yKey) ?? metrics[metrics.length - 1];
  const parallelColumns = model.visible.filter(c =>
    numeric.some(n => n.key === c.key)
  );

  // Made again only when the columns change: the view renders again on every
  // page of rows that arrives while the grid scrolls.
  const { columns: columnList, visible } = model;
  const columnChooser = React.useMemo(
    () => (
      <details className="jp-dotnb-XColumns">
        <summary>{trans.__('Columns')}</summary>
        <fieldset>
          <legend>{trans.__('Columns shown')}</legend>
          {columnList.map(column => (
            <label key={column.key}>
              <input
                type="checkbox"
                checked={visible.some(c => c.key === column.key)}
                onChange={() => model.toggleColumn(column.key)}
              />
              {column.kind === 'builtin'
                ? column.name
                : `${column.kind}: ${column.name}`}
            </label>
          ))}
          <button type="button" onClick={() => model.chooseColumns(null)}>
            {trans.__('Default columns')}
          </button>
        </fieldset>
        <fieldset>
          <legend>{trans.__('Order')}</legend>
          <ol className="jp-dotnb-XColumnOrder">
            {visible.map((column, i) => (
              <li key={column.key}>
                <span>
                  {column.kind === 'builtin'
                    ? column.name
                    : `${column.kind}: ${column.name}`}
                </span>
                <button
                  type="button"
                  disabled={i === 0}
                  aria-label={trans.__('Move %1 earlier', column.name)}
                  title={trans.__('Move %1 earlier', column.name)}
                  onClick={() => model.moveColumn(column.key, -1)}
                >
                  ↑
                </button>
                <button
                  type="button"
                  disabled={i === visible.length - 1}
                  aria-label={trans.__('Move %1 later', column.name)}
                  title={trans.__('Move %1 later', column.name)}
                  onClick={() => model.moveColumn(column.key, 1)}
                >
                  ↓
                </button>
              </li>
            ))}
          </ol>
        </fieldset>
      </details>
    ),
    [columnList, visible, model, trans]
  );

  const addFilter = () => {
    if (filterText.trim()) {
      void model.addFilter(filterText);
      setFilterText('');
    }
  };
  const tagNames = tagText.split(/[\s,]+/).filter(Boolean);
  const changeTags = (remove: boolean) => {
    model.tagSelected(tagNames, remove).then(
      () => {
        setMessage(null);
        setTagText('');
      },
      error => setMessage(String(error?.message ?? error))
    );
  };
  const exportCsv = () => {
    model.allRows().then(
      rows =>
        services.download(
          'experiments.csv',
          toCsv(model.visible, rows),
          'text/csv'
        ),
      error => setMessage(String(error?.message ?? error))
    );
  };

  const theme = React.useMemo(() => themeFromDocument(), []);
  const runIds = chartRuns.map(r => r.id);
  let chart: JSX.Element | null = null;
  if (panel === 'scatter' && xColumn && yColumn) {
    chart = (
      <div className="jp-dotnb-XPanel">
        <div className="jp-dotnb-XToolbar">
          <label>
            {trans.__('x')}{' '}
            <select
              value={xColumn.key}
              onChange={event => setXKey(event.target.value)}
            >
              {numeric.map(c => (
                <option key={c.key} value={c.key}>
                  {`${c.kind}: ${c.name}`}
                </option>
              ))}
            </select>
          </label>
          <label>
            {trans.__('y')}{' '}
            <select
              value={yColumn.key}
              onChange={event => setYKey(event.target.value)}
            >
              {metrics.map(c => (
                <option key={c.key} value={c.key}>
                  {c.name}
                </option>
              ))}
            </select>
          </label>
        </div>
        <Chart
          spec={scatterSpec(chartRuns, xColumn, yColumn, theme)}
          specKey={JSON.stringify([runIds, xColumn.key, yColumn.key])}
          services={services}
          label={trans.__('%1 against %2', yColumn.name, xColumn.name)}
          onBrush={value => {
            const next = brushFilters(xColumn, yColumn, value);
            if (next.length) {
              // The previous brush's filters give way; a cleared brush keeps them.
              void model.replaceFilters(brushed.current, next);
              brushed.current = next;
            }
          }}
        />
      </div>
    );
  } else if (panel === 'parallel' && parallelColumns.length >= 2) {
    chart = (
      <div className="jp-dotnb-XPanel">
        <div className="jp-dotnb-XHint">
          {trans.__(
            'Drag a box over one or more axes to filter the table to their ranges.'
          )}
        </div>
        <Chart
          spec={parallelSpec(chartRuns, parallelColumns, theme)}
          specKey={JSON.stringify([runIds, parallelColumns.map(c => c.key)])}
          services={services}
          label={trans.__(
            'Parallel coordinates of the visible params and metrics'
          )}
          onBrush={value => {
            const axes = parallelBrushFilters(
              parallelColumns,
              parallelRanges(chartRuns, parallelColumns),
              value
            );
            if (axes.length) {
              const earlier = axes.flatMap(
                a => axisBrushed.current.get(a.key) ?? []
              );
              void model.replaceFilters(
                earlier,
                axes.flatMap(a => a.filters)
              );
              axes.forEach(a => axisBrushed.current.set(a.key, a.filters));
            }
          }}
        />
      </div>
    );
  } else if (panel === 'compare' && selection.length >= 2) {
    chart = (
      <div className="jp-dotnb-XPanel">
        <CompareRuns runs={selection} services={services} trans={trans} />
      </div>
    );
  } else if (panel !== 'none') {
    chart = (
      <div className="jp-dotnb-XPanel" role="status">
        {panel === 'compare'
          ? trans.__('Select two or more runs to compare them.')
          : trans.__('Not enough numeric params or metrics to chart.')}
      </div>
    );
  }

  const sortColumn: IExperimentColumn | undefined = model.columns.find(
    c => c.key === model.sort.key
  );
  const status =
    model.total === null
      ? trans.__('Loading…')
      : trans._n('%1 run', '%1 runs', model.total) +
        (sortColumn ? ` · ${trans.__('sorted by %1', sortColumn.name)}` : '') +
        (model.lastLoadMs !== null
          ? ` · ${trans.__('%1 ms', Math.round(model.lastLoadMs))}`
          : '');

  return (
    <div className="jp-dotnb-MainView jp-dotnb-Experiments">
      <div
        className="jp-dotnb-XToolbar"
        role="toolbar"
        aria-label={trans.__('Table')}
      >
        <select
          aria-label={trans.__('Which runs')}
          value={model.notebook ?? ''}
          onChange={event => void model.setNotebook(event.target.value || null)}
        >
          <option value="">{trans.__('All notebooks')}</option>
          {[current, model.notebook]
            .filter((n, i, all): n is string => !!n && all.indexOf(n) === i)
            .map(n => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
        </select>
        <input
          type="search"
          aria-label={trans.__('Search runs')}
          placeholder={trans.__('Search name, params, code, note')}
          value={search}
          onChange={event => setSearch(event.target.value)}
          onKeyDown={event => {
            if (event.key === 'Enter') {
              void model.setQuery(search);
            }
          }}
        />
        <input
          type="text"
          className="jp-dotnb-XFilterInput"
          aria-label={trans.__('Add a filter, e.g. acc > 0.9')}
          placeholder={trans.__('Filter: acc > 0.9, tag = baseline')}
          value={filterText}
          onChange={event => setFilterText(event.target.value)}
          onKeyDown={event => {
            if (event.key === 'Enter') {
              addFilter();
            }
          }}
        />
        <button type="button" onClick={addFilter}>
          {trans.__('Add filter')}
        </button>
        <label className="jp-dotnb-XGroup">
          {trans.__('Group by')}{' '}
          <select
            value={model.group ?? ''}
            onChange={event =>
              void model.setGroup(
                (event.target.value || null) as TableGroup | null
              )
            }
          >
            <option value="">{trans.__('nothing')}</option>
            <option value="notebook">{trans.__('notebook')}</option>
            <option value="name">{trans.__('name')}</option>
            <option value="sweep">{trans.__('sweep')}</option>
          </select>
        </label>
        {columnChooser}
        <button type="button" onClick={exportCsv}>
          {trans.__('Export CSV')}
        </button>
      </div>
      {model.filters.length > 0 && (
        <ul className="jp-dotnb-XFilters" aria-label={trans.__('Filters')}>
          {model.filters.map(filter => (
            <li key={filter} className="jp-dotnb-XFilterChip">
              <span>{filter}</span>
              <button
                type="button"
                aria-label={trans.__('Remove filter %1', filter)}
                onClick={() => void model.removeFilter(filter)}
              >
                ×
              </button>
            </li>
          ))}
        </ul>
      )}
      <div
        className="jp-dotnb-XToolbar"
        role="toolbar"
        aria-label={trans.__('Selection')}
      >
        <span className="jp-dotnb-XSelectionCount">
          {trans._n('%1 selected', '%1 selected', selection.length)}
        </span>
        <input
          type="text"
          aria-label={trans.__('Tags for the selected runs')}
          placeholder={trans.__('tag names')}
          value={tagText}
          onChange={event => setTagText(event.target.value)}
        />
        <button
          type="button"
          disabled={!selection.length || !tagNames.length}
          onClick={() => changeTags(false)}
        >
          {trans.__('Tag selected')}
        </button>
        <button
          type="button"
          disabled={!selection.length || !tagNames.length}
          onClick={() => changeTags(true)}
        >
          {trans.__('Untag selected')}
        </button>
        <button
          type="button"
          disabled={!active}
          onClick={() => active && model.pin(active)}
          title={trans.__(
            'Show every row’s differences from this run (key: P)'
          )}
        >
          {model.baseline && active && model.baseline.id === active.id
            ? trans.__('Unpin baseline')
            : trans.__('Pin as baseline')}
        </button>
        {(
          [
            ['compare', trans.__('Compare')],
            ['scatter', trans.__('Scatter')],
            ['parallel', trans.__('Parallel coordinates')]
          ] as const
        ).map(([key, label]) => (
          <button
            key={key}
            type="button"
            aria-pressed={panel === key}
            onClick={() => setPanel(panel === key ? 'none' : key)}
          >
            {label}
          </button>
        ))}
        {selection.length > 0 && (
          <button type="button" onClick={() => model.clearSelection()}>
            {trans.__('Clear selection')}
          </button>
        )}
      </div>
      <div className="jp-dotnb-XStatus" role="status">
        {status}
        {model.baseline &&
          ` · ${trans.__('baseline #%1', model.baseline.number)}`}
      </div>
      {(message ?? model.error) && (
        <div className="jp-dotnb-Message jp-dotnb-Message-error" role="alert">
          {message ?? model.error}
        </div>
      )}
      <ExperimentsGrid
        model={model}
        trans={trans}
        onOpen={run => services.openRun(run.id)}
        onActiveChange={setActive}
      />
      {active && (
        <NoteEditor
          run={active}
          model={model}
          trans={trans}
          onError={setMessage}
        />
      )}
      {chart}
    </div>
  );
}
