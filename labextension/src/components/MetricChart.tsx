/**
 * A metric across the notebook's runs, drawn by JupyterLab's Vega-Lite
 * renderer. Hovering a point shows its run; clicking selects it. The table
 * under the chart lists the same points for keyboard and screen-reader users.
 */

import { Button, HTMLSelect } from '@jupyterlab/ui-components';
import * as React from 'react';

import { ChartMark, metricAcrossRunsSpec, themeFromDocument } from '../chart';
import * as fmt from '../format';
import { IPanelServices } from '../services';
import { IMetricValue, IRunSummary } from '../types';
import { Loading, Message, ViewHeader } from './common';
import { useAsync, useSignal } from './hooks';

export function MetricChart(props: {
  metric: string | null;
  services: IPanelServices;
}): JSX.Element {
  const { services } = props;
  const { model } = services;
  useSignal(model.changed);
  const [allNotebooks, setAllNotebooks] = React.useState(
    !model.currentNotebook
  );
  const notebook = allNotebooks ? null : model.currentNotebook;
  const names = useAsync(() => services.api.metricNames(notebook), [notebook]);
  const available = names.value?.names ?? [];
  // Without a choice, the metric the user logged last (not the first by name).
  const latest = names.value?.latest;
  const metric =
    props.metric && (available.includes(props.metric) || names.loading)
      ? props.metric
      : latest && available.includes(latest)
        ? latest
        : (available[0] ?? null);
  const [mark, setMark] = React.useState<ChartMark>('line');
  const [selected, setSelected] = React.useState<string | null>(null);
  // New runs of this metric redraw the chart.
  const [version, setVersion] = React.useState(0);
  React.useEffect(() => {
    const slot = (_: unknown, runs: IRunSummary[]) => {
      if (metric && runs.some(r => metric in (r.metrics ?? {}))) {
        setVersion(v => v + 1);
      }
    };
    model.runsUpdated.connect(slot);
    return () => {
      model.runsUpdated.disconnect(slot);
    };
  }, [model, metric]);
  const values = useAsync<IMetricValue[]>(
    async () =>
      metric ? (await services.api.metricValues(metric, notebook)).values : [],
    [metric, notebook, version]
  );
  const host = React.useRef<HTMLDivElement>(null);
  const points = values.value ?? [];

  // A layout effect: its cleanup runs while the host is still in the DOM.
  React.useLayoutEffect(() => {
    if (!host.current || !metric || !points.length) {
      return;
    }
    const spec = metricAcrossRunsSpec(points, metric, {
      mark,
      selected,
      theme: themeFromDocument()
    });
    return services.renderChart(spec, host.current, id => setSelected(id));
  }, [points, metric, mark, selected, services]);

  const pick = (name: string) => {
    setSelected(null);
    services.navigate({ kind: 'chart', metric: name });
  };
  const selectedPoint = points.find(p => p.id === selected);

  return (
    <div className="jp-dotnb-View jp-dotnb-ChartView">
      <ViewHeader title="Metric chart" onBack={() => services.back()} />
      <div className="jp-dotnb-ViewBody">
        <div className="jp-dotnb-FilterRow">
          <HTMLSelect
            aria-label="Metric"
            title={metric ?? undefined}
            value={metric ?? ''}
            onChange={event => pick(event.target.value)}
            options={
              available.length
                ? available.map(name => ({ value: name, label: name }))
                : [
                    {
                      value: '',
                      label: names.loading ? 'Loading…' : 'No metrics'
                    }
                  ]
            }
          />
          <HTMLSelect
            aria-label="Chart type"
            className="jp-dotnb-MarkSelect"
            value={mark}
            onChange={event => setMark(event.target.value as ChartMark)}
            options={[
              { value: 'line', label: 'Line' },
              { value: 'point', label: 'Scatter' }
            ]}
          />
        </div>
        {model.currentNotebook && (
          <label className="jp-dotnb-Check">
            <input
              type="checkbox"
              checked={allNotebooks}
              onChange={event => setAllNotebooks(event.target.checked)}
            />{' '}
            All notebooks (not only {fmt.baseName(model.currentNotebook)})
          </label>
        )}
        {names.error && <Message kind="error">{names.error}</Message>}
        {values.error && <Message kind="error">{values.error}</Message>}
        {!names.loading && !available.length && (
          <div className="jp-dotnb-Empty">
            No numeric metrics recorded yet. Report one with{' '}
            <code>%%track --metrics acc</code> or{' '}
            <code>dotnb.metric(&quot;acc&quot;, value)</code>.
          </div>
        )}
        {metric && values.loading && !points.length && <Loading />}
        {metric && points.length > 0 && (
          <div
            ref={host}
            className="jp-dotnb-Chart"
            role="img"
            aria-label={`${metric} across ${points.length} runs`}
          />
        )}
        {selectedPoint && (
          <div className="jp-dotnb-Selected" role="status">
            <span>
              Selected {fmt.runTitle(selectedPoint)}: {metric} ={' '}
              {fmt.value(selectedPoint.value)}
            </span>
            <Button
              small
              className="jp-mod-styled jp-mod-accept"
              onClick={() =>
                services.navigate({ kind: 'details', id: selectedPoint.id })
              }
            >
              Open run
            </Button>
          </div>
        )}
        {points.length > 0 && (
          <details className="jp-dotnb-Section">
            <summary className="jp-dotnb-Section-title">
              <span>Values</span>
              <span className="jp-dotnb-Section-count">{points.length}</span>
            </summary>
            <table className="jp-dotnb-Table">
              <thead>
                <tr>
                  <th scope="col">Run</th>
                  <th scope="col">{metric}</th>
                  <th scope="col">When</th>
                </tr>
              </thead>
              <tbody>
                {[...points].reverse().map(point => (
                  <tr
                    key={point.id}
                    className={point.id === selected ? 'jp-mod-selected' : ''}
                  >
                    <th scope="row">
                      <button
                        type="button"
                        className="jp-dotnb-LinkButton"
                        onClick={() => setSelected(point.id)}
                      >
                        {fmt.runTitle(point)}
                      </button>
                    </th>
                    <td>{fmt.value(point.value)}</td>
                    <td title={fmt.dateTime(point.started_at)}>
                      {fmt.timeAgo(point.started_at)}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </details>
        )}
      </div>
    </div>
  );
}
