import * as React from 'react';

import * as fmt from '../format';
import { IRunSummary } from '../types';
import { StatusChip } from './common';

export interface IRunRowProps {
  run: IRunSummary;
  /** Show the notebook name (rows of other notebooks). */
  showNotebook: boolean;
  selected: boolean;
  focused: boolean;
  active: boolean;
  onOpen: (id: string) => void;
  onToggle: (id: string) => void;
  now?: number;
  domId?: string;
}

/**
 * A run in the list: number, name, status, where it was pulled from, who
 * recorded it, time ago, duration, key params and metrics.
 */
export function RunRow(props: IRunRowProps): JSX.Element {
  const { run } = props;
  const who = fmt.author(run);
  const params = fmt.keyValues(run.params, 3, 16);
  const metrics = fmt.keyValues(run.metrics, 3, 12);
  const details = [
    props.showNotebook && run.notebook ? fmt.baseName(run.notebook) : '',
    fmt.duration(run.duration_s),
    metrics,
    params
  ].filter(Boolean);
  const title = [
    `${fmt.runTitle(run)} (${run.kind}, ${run.status})`,
    run.notebook ?? '',
    fmt.dateTime(run.started_at),
    params && `params: ${params}`,
    metrics && `metrics: ${metrics}`,
    `${fmt.plural(run.inputs, 'input')}, ${fmt.plural(run.outputs, 'output')}`,
    who ? `by ${who}` : '',
    run.remote ? `pulled from ${run.remote}` : '',
    fmt.signatureMark(run.signature)?.title ?? ''
  ]
    .filter(Boolean)
    .join('\n');
  const signed = fmt.signatureMark(run.signature);
  const classes = ['jp-dotnb-Row'];
  if (props.selected) {
    classes.push('jp-mod-selected');
  }
  if (props.focused) {
    classes.push('jp-mod-focused');
  }
  if (props.active) {
    classes.push('jp-mod-active');
  }
  return (
    <div
      className={classes.join(' ')}
      id={props.domId}
      role="option"
      aria-selected={props.selected}
      title={title}
      data-run-id={run.id}
      data-run-number={run.number}
      onClick={() => props.onOpen(run.id)}
    >
      <input
        type="checkbox"
        className="jp-dotnb-Row-check"
        checked={props.selected}
        tabIndex={-1}
        aria-label={`Select ${fmt.runTitle(run)} for compare`}
        onClick={event => event.stopPropagation()}
        onChange={() => props.onToggle(run.id)}
      />
      <div className="jp-dotnb-Row-main">
        <div className="jp-dotnb-Row-line">
          <span className="jp-dotnb-Row-number">#{run.number}</span>
          <span className="jp-dotnb-Row-name">{run.name ?? ''}</span>
          {(run.status !== 'ok' || run.kind === 'checkpoint') && (
            <StatusChip status={run.status} kind={run.kind} />
          )}
          {who && <span className="jp-dotnb-Row-author">{who}</span>}
          <span className="jp-dotnb-Row-ago">
            {fmt.timeAgo(run.started_at, props.now)}
          </span>
        </div>
        <div className="jp-dotnb-Row-line jp-dotnb-Row-details">
          {/* First on the second line: the name keeps the first line's room. */}
          {signed && (
            <span
              className={`jp-dotnb-Chip jp-dotnb-Signature jp-mod-${signed.kind}`}
              title={signed.title}
            >
              {signed.text}
            </span>
          )}
          {run.remote && (
            <span
              className="jp-dotnb-Chip jp-dotnb-Chip-remote jp-dotnb-Row-remote"
              title={`Pulled from the remote ${run.remote}`}
            >
              from {run.remote}
            </span>
          )}
          {details.join(' · ')}
        </div>
      </div>
    </div>
  );
}
