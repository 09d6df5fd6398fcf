import * as React from 'react';

import * as fmt from '../format';
import { IRunBundle } from '../types';

/**
 * The compact badge a tracked cell's output shows:
 * `#4 name · 1 input · 1 output · acc=0.93 · 812 ms`. Clicking opens the run.
 */
export function RunBadge(props: {
  bundle: IRunBundle;
  onOpen: (id: string) => void;
}): JSX.Element {
  const { bundle } = props;
  const inputs = bundle.inputs ?? [];
  const outputs = bundle.outputs ?? [];
  const overridden = new Set(bundle.overridden ?? []);
  const params = Object.entries(bundle.params ?? {})
    .slice(0, 3)
    .map(
      ([k, v]) =>
        `${k}=${fmt.clip(fmt.value(v), 16)}${overridden.has(k) ? ' (--param)' : ''}`
    );
  const metrics = Object.entries(bundle.metrics ?? {})
    .slice(0, 3)
    .map(([k, v]) => `${k}=${fmt.clip(fmt.value(v), 12)}`);
  const title = [
    `Open run ${fmt.runTitle(bundle)} in the Runs panel`,
    inputs.length ? `inputs: ${inputs.join(', ')}` : '',
    outputs.length ? `outputs: ${outputs.join(', ')}` : '',
    params.length ? `params: ${params.join(', ')}` : ''
  ]
    .filter(Boolean)
    .join('\n');
  const files = `${fmt.plural(bundle.input_count ?? inputs.length, 'input')} · ${fmt.plural(bundle.output_count ?? outputs.length, 'output')}`;
  // What a screen reader says: the parts the badge shows side by side, with
  // the separators the eye gets from the layout.
  const label = [
    `run #${bundle.number}`,
    bundle.name ?? '',
    bundle.status !== 'ok' ? bundle.status : '',
    files,
    ...metrics,
    ...params,
    fmt.duration(bundle.duration_s)
  ]
    .filter(Boolean)
    .join(' · ');
  return (
    <button
      type="button"
      className={`jp-dotnb-Badge jp-dotnb-Badge-${bundle.status}`}
      title={title}
      aria-label={label}
      data-run-id={bundle.id}
      onClick={() => props.onOpen(bundle.id)}
    >
      <span className="jp-dotnb-Badge-number">run #{bundle.number}</span>
      {bundle.name && (
        <span className="jp-dotnb-Badge-name">{bundle.name}</span>
      )}
      {bundle.status !== 'ok' && (
        <span className={`jp-dotnb-Chip jp-dotnb-Chip-${bundle.status}`}>
          {bundle.status}
        </span>
      )}
      <span className="jp-dotnb-Badge-part">{files}</span>
      {metrics.length > 0 && (
        <span className="jp-dotnb-Badge-part jp-dotnb-Badge-metrics">
          {metrics.join(' · ')}
        </span>
      )}
      {params.length > 0 && (
        <span className="jp-dotnb-Badge-part jp-dotnb-Badge-params">
          {params.join(' · ')}
        </span>
      )}
      <span className="jp-dotnb-Badge-part">
        {fmt.duration(bundle.duration_s)}
      </span>
    </button>
  );
}
