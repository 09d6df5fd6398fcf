/**
 * Parameter sweeps in JupyterLab: the form that asks for each param's values
 * (the Sweep… dialog of a run), and the view that follows a running sweep
 * (progress, best point, each point's result, a chart of the ranking metric
 * against a swept param, Cancel). Everything from the server is rendered as
 * text.
 */

import type { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { themeFromDocument } from '../chart';
import {
  fieldText,
  sweepChartSpec,
  sweepCounts,
  sweepSpecs,
  sweptParams
} from '../sweep';
import { ISweepClusters, ISweepRequest, ISweepState } from '../types';

/**
 * What the form starts from: a run, the names its notebook's parameters cell
 * assigns (with the source text of their values there), its metrics.
 */
export interface ISweepSource {
  run: string;
  title: string;
  params: Record<string, string | null>;
  metrics: string[];
  /** Where the server can run it (absent from older servers). */
  clusters?: ISweepClusters;
}

/** The form's state, read by the dialog when the user presses Start. */
export interface ISweepForm {
  request: ISweepRequest;
  /** Why Start cannot go ahead, or null. */
  problem: string | null;
}

function wholeNumber(text: string): number | null | undefined {
  if (!text.trim()) {
    return null;
  }
  const n = Number(text);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

export function formRequest(
  source: ISweepSource,
  fields: Record<string, string>,
  options: {
    random: string;
    seed: string;
    maxFailures: string;
    metric: string;
    minimize: boolean;
    cluster?: 'local' | 'scheduler';
  },
  trans: TranslationBundle
): ISweepForm {
  const params = sweepSpecs(source.params, fields);
  const random = wholeNumber(options.random);
  const seed = wholeNumber(options.seed);
  const maxFailures = wholeNumber(options.maxFailures);
  let problem: string | null = null;
  if (!params.length) {
    problem = trans.__(
      'Give at least one param other values (e.g. 0.01,0.1,1 or 1e-4:1e-1:log:5).'
    );
  } else if (random === undefined || seed === undefined) {
    problem = trans.__('Random points and seed are whole numbers.');
  } else if (maxFailures === undefined) {
    problem = trans.__('Stop after failures is a whole number.');
  }
  return {
    request: {
      source: source.run,
      params,
      random: random ?? null,
      seed: seed ?? null,
      max_failures: maxFailures ?? null,
      metric: options.metric || null,
      minimize: options.minimize,
      ...(options.cluster ? { cluster: options.cluster } : {})
    },
    problem
  };
}

/** A labelled text field for a whole number (checked by formRequest). */
function WholeNumberField(props: {
  label: string;
  value: string;
  placeholder?: string;
  onChange: (text: string) => void;
}): JSX.Element {
  return (
    <label>
      {props.label}{' '}
      <input
        className="jp-mod-styled"
        type="text"
        inputMode="numeric"
        placeholder={props.placeholder}
        value={props.value}
        onChange={e => props.onChange(e.target.value)}
      />
    </label>
  );
}

export function SweepFormBody(props: {
  source: ISweepSource;
  trans: TranslationBundle;
  onChange: (form: ISweepForm) => void;
}): JSX.Element {
  const { source, trans } = props;
  const names = Object.keys(source.params).sort();
  const [fields, setFields] = React.useState<Record<string, string>>(() =>
    Object.fromEntries(names.map(n => [n, source.params[n] ?? '']))
  );
  const [random, setRandom] = React.useState('');
  const [seed, setSeed] = React.useState('');
  const [maxFailures, setMaxFailures] = React.useState('');
  const [metric, setMetric] = React.useState(source.metrics[0] ?? '');
  const [minimize, setMinimize] = React.useState(false);
  const scheduler = source.clusters?.scheduler ?? null;
  const [cluster, setCluster] = React.useState<'local' | 'scheduler'>(
    scheduler ? 'scheduler' : 'local'
  );
  const form = formRequest(
    source,
    fields,
    {
      random,
      seed,
      maxFailures,
      metric,
      minimize,
      cluster: source.clusters ? cluster : undefined
    },
    trans
  );
  React.useEffect(() => props.onChange(form), [JSON.stringify(form)]);

  return (
    <div className="jp-dotnb-SweepForm">
      <p>
        {trans.__(
          'Runs the notebook of %1 once per point, with its exact input bytes.',
          source.title
        )}
      </p>
      {source.clusters && (
        <fieldset className="jp-dotnb-SweepCluster">
          <legend>{trans.__('Where')}</legend>
          <label>
            <input
              type="radio"
              name="jp-dotnb-sweep-cluster"
              checked={cluster === 'local'}
              onChange={() => setCluster('local')}
            />{' '}
            {trans.__(
              'this machine: %1 local worker processes',
              source.clusters.local.workers
            )}
          </label>
          {scheduler && (
            <label>
              <input
                type="radio"
                name="jp-dotnb-sweep-cluster"
                checked={cluster === 'scheduler'}
                onChange={() => setCluster('scheduler')}
              />{' '}
              {trans.__('the Dask scheduler at %1', scheduler)}
            </label>
          )}
        </fieldset>
      )}
      {names.length ? (
        <table className="jp-dotnb-SweepParams">
          <thead>
            <tr>
              <th>{trans.__('Param')}</th>
              <th>{trans.__('Values')}</th>
            </tr>
          </thead>
          <tbody>
            {names.map(name => (
              <tr key={name}>
                <th scope="row">
                  <label htmlFor={`jp-dotnb-sweep-${name}`}>{name}</label>
                </th>
                <td>
                  <input
                    id={`jp-dotnb-sweep-${name}`}
                    className="jp-mod-styled"
                    type="text"
                    value={fields[name]}
                    onChange={e =>
                      setFields({ ...fields, [name]: e.target.value })
                    }
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <p className="jp-dotnb-Message jp-mod-warning">
          {trans.__(
            'The parameters cell of this notebook assigns nothing to sweep.'
          )}
        </p>
      )}
      <p className="jp-dotnb-SweepHint">
        {trans.__(
          'Values: a list (0.01,0.1,1), a range of N values (1:10:4) or a log range (1e-4:1e-1:log:5). Params left as they are are not swept.'
        )}
      </p>
      <div className="jp-dotnb-SweepOptions">
        <WholeNumberField
          label={trans.__('Random points')}
          placeholder={trans.__('all (grid)')}
          value={random}
          onChange={setRandom}
        />
        <WholeNumberField
          label={trans.__('Seed')}
          value={seed}
          onChange={setSeed}
        />
        <WholeNumberField
          label={trans.__('Stop after failures')}
          placeholder={trans.__('never')}
          value={maxFailures}
          onChange={setMaxFailures}
        />
        <label>
          {trans.__('Rank by')}{' '}
          <select
            className="jp-mod-styled"
            value={metric}
            onChange={e => setMetric(e.target.value)}
          >
            <option value="">{trans.__('the first metric reported')}</option>
            {source.metrics.map(m => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        </label>
        <label>
          <input
            type="checkbox"
            checked={minimize}
            onChange={e => setMinimize(e.target.checked)}
          />{' '}
          {trans.__('lower is better')}
        </label>
      </div>
      {form.problem && (
        <p className="jp-dotnb-SweepProblem" role="status">
          {form.problem}
        </p>
      )}
    </div>
  );
}

export interface ISweepViewServices {
  sweep(id: string, signal?: AbortSignal): Promise<ISweepState>;
  cancel(id: string): Promise<ISweepState>;
  openRun(id: string): void;
  renderChart(
    spec: Record<string, unknown>,
    host: HTMLElement,
    onSelect?: (id: string) => void
  ): () => void;
}

/** How often a running sweep is asked how it goes. */
export const POLL_MS = 1000;

export function SweepView(props: {
  id: string;
  /** The state the sweep started with (POST sweeps' answer), if known. */
  initial?: ISweepState | null;
  services: ISweepViewServices;
  trans: TranslationBundle;
  /** Milliseconds between polls of a running sweep. */
  pollMs?: number;
}): JSX.Element {
  const { id, services, trans } = props;
  const pollMs = props.pollMs ?? POLL_MS;
  const [state, setState] = React.useState<ISweepState | null>(
    props.initial ?? null
  );
  const [error, setError] = React.useState<string | null>(null);
  const [cancelling, setCancelling] = React.useState(false);

  React.useEffect(() => {
    const abort = new AbortController();
    let timer: ReturnType<typeof setTimeout> | null = null;
    const poll = async () => {
      try {
        const next = await services.sweep(id, abort.signal);
        setState(next);
        setError(null);
        if (next.state === 'running') {
          timer = setTimeout(poll, pollMs);
        }
      } catch (err) {
        if ((err as Error)?.name !== 'AbortError') {
          setError((err as Error).message ?? String(err));
          timer = setTimeout(poll, pollMs * 5);
        }
      }
    };
    void poll();
    return () => {
      abort.abort();
      if (timer) {
        clearTimeout(timer);
      }
    };
  }, [id]);

  const results = React.useMemo(
    () => [...(state?.results ?? [])].sort((a, b) => a.index - b.index),
    [state]
  );
  const swept = React.useMemo(() => sweptParams(results), [results]);
  const metric = state?.metric ?? null;
  const [chartParam, setChartParam] = React.useState<string | null>(null);
  const param = chartParam ?? swept[0] ?? null;
  const chart = React.useRef<HTMLDivElement>(null);
  React.useEffect(() => {
    if (!chart.current || !param || !metric) {
      return;
    }
    return services.renderChart(
      sweepChartSpec(results, param, metric, themeFromDocument()),
      chart.current,
      run => services.openRun(run)
    );
  }, [results, param, metric]);

  if (!state) {
    return (
      <div className="jp-dotnb-Sweep">
        {error ? (
          <p className="jp-dotnb-Message jp-mod-error" role="alert">
            {error}
          </p>
        ) : (
          <p>{trans.__('Loading the sweep…')}</p>
        )}
      </div>
    );
  }
  const counts = sweepCounts(state);
  const words = [
    trans.__('%1 of %2 points done', counts.done, state.points),
    counts.failed ? trans.__('%1 failed', counts.failed) : '',
    counts.interrupted ? trans.__('%1 cancelled', counts.interrupted) : '',
    counts.running ? trans.__('%1 running', counts.running) : ''
  ]
    .filter(Boolean)
    .join(' · ');
  const best = state.best ?? null;
  const bestRuns = best
    ? (results.find(r => r.index === best.index)?.runs ?? [])
    : [];
  const dashboard =
    state.dashboard && /^https?:\/\//.test(state.dashboard)
      ? state.dashboard
      : null;

  return (
    <div className="jp-dotnb-Sweep">
      <div className="jp-dotnb-SweepHead">
        <strong>{trans.__('Sweep %1', state.sweep)}</strong>
        <span className={`jp-dotnb-SweepState jp-mod-${state.state}`}>
          {state.state}
        </span>
        {state.state === 'running' && (
          <button
            className="jp-mod-styled jp-mod-warn"
            disabled={cancelling}
            onClick={async () => {
              setCancelling(true);
              try {
                setState(await services.cancel(id));
              } catch (err) {
                setError((err as Error).message ?? String(err));
              } finally {
                setCancelling(false);
              }
            }}
          >
            {cancelling ? trans.__('Cancelling…') : trans.__('Cancel')}
          </button>
        )}
        {dashboard && (
          <a href={dashboard} target="_blank" rel="noopener noreferrer">
            {trans.__('Dask dashboard')}
          </a>
        )}
      </div>
      <progress
        className="jp-dotnb-SweepProgress"
        max={state.points}
        value={counts.done}
        aria-label={words}
      />
      <p className="jp-dotnb-SweepCounts" role="status">
        {words}
        {state.stopped === 'max-failures'
          ? ` · ${trans.__('stopped: too many failures')}`
          : state.stopped === 'interrupted'
            ? ` · ${trans.__('cancelled')}`
            : ''}
      </p>
      {state.failure && (
        <p className="jp-dotnb-Message jp-mod-error" role="alert">
          {state.failure}
        </p>
      )}
      {error && (
        <p className="jp-dotnb-Message jp-mod-error" role="alert">
          {error}
        </p>
      )}
      {best && metric && (
        <p className="jp-dotnb-SweepBest">
          {trans.__('Best %1 = %2 at', metric, fieldText(best.value))}{' '}
          {swept
            .map(name => `${name}=${fieldText(best.params[name] ?? null)}`)
            .join(', ')}{' '}
          {bestRuns.length > 0 && (
            <button
              className="jp-dotnb-LinkButton"
              onClick={() => services.openRun(bestRuns[bestRuns.length - 1])}
            >
              {trans.__('open its run')}
            </button>
          )}
        </p>
      )}
      {param && metric && results.length > 0 && (
        <div className="jp-dotnb-SweepChart">
          {swept.length > 1 && (
            <label>
              {trans.__('Chart %1 against', metric)}{' '}
              <select
                value={param}
                onChange={e => setChartParam(e.target.value)}
              >
                {swept.map(name => (
                  <option key={name} value={name}>
                    {name}
                  </option>
                ))}
              </select>
            </label>
          )}
          <div ref={chart} />
        </div>
      )}
      <table className="jp-dotnb-SweepResults">
        <thead>
          <tr>
            <th>#</th>
            {swept.map(name => (
              <th key={name}>{name}</th>
            ))}
            <th>{trans.__('status')}</th>
            {metric && <th>{metric}</th>}
            <th>{trans.__('run')}</th>
          </tr>
        </thead>
        <tbody>
          {results.map(result => (
            <tr key={result.index} className={`jp-mod-${result.status}`}>
              <td>{result.index}</td>
              {swept.map(name => (
                <td key={name}>{fieldText(result.params[name] ?? null)}</td>
              ))}
              <td title={result.error ?? undefined}>{result.status}</td>
              {metric && (
                <td>
                  {result.metrics[metric] === undefined
                    ? ''
                    : fieldText(result.metrics[metric])}
                </td>
              )}
              <td>
                {result.runs.length > 0 && (
                  <button
                    className="jp-dotnb-LinkButton"
                    onClick={() =>
                      services.openRun(result.runs[result.runs.length - 1])
                    }
                  >
                    {result.runs[result.runs.length - 1].slice(0, 10)}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
