/**
 * Small building blocks shared by the views. Everything from a run is passed
 * as a JSX child (text), never as HTML.
 */

import * as React from 'react';

import { RunStatus } from '../types';

export function StatusChip(props: {
  status: RunStatus;
  kind?: string;
}): JSX.Element {
  const label = props.kind === 'checkpoint' ? 'checkpoint' : props.status;
  return (
    <span
      className={`jp-dotnb-Chip jp-dotnb-Chip-${props.kind === 'checkpoint' ? 'checkpoint' : props.status}`}
    >
      {label}
    </span>
  );
}

export function Section(props: {
  title: string;
  count?: number | string;
  open?: boolean;
  children: React.ReactNode;
  actions?: React.ReactNode;
}): JSX.Element {
  return (
    <details className="jp-dotnb-Section" open={props.open ?? true}>
      <summary className="jp-dotnb-Section-title">
        <span>{props.title}</span>
        {props.count !== undefined && (
          <span className="jp-dotnb-Section-count">{props.count}</span>
        )}
        {props.actions && (
          <span className="jp-dotnb-Section-actions">{props.actions}</span>
        )}
      </summary>
      <div className="jp-dotnb-Section-body">{props.children}</div>
    </details>
  );
}

export function Message(props: {
  kind: 'error' | 'warning' | 'info';
  children: React.ReactNode;
}): JSX.Element {
  return (
    <div
      className={`jp-dotnb-Message jp-dotnb-Message-${props.kind}`}
      role={props.kind === 'error' ? 'alert' : 'status'}
    >
      {props.children}
    </div>
  );
}

export function Loading(props: { text?: string }): JSX.Element {
  return <div className="jp-dotnb-Loading">{props.text ?? 'Loading…'}</div>;
}

/** A two-column table of name → value (both text). */
export function KeyValues(props: {
  rows: [string, React.ReactNode][];
  empty?: string;
}): JSX.Element {
  if (!props.rows.length) {
    return <div className="jp-dotnb-Empty">{props.empty ?? 'None'}</div>;
  }
  return (
    <table className="jp-dotnb-Table jp-dotnb-KeyValues">
      <tbody>
        {props.rows.map(([key, value]) => (
          <tr key={key}>
            <th scope="row" title={key}>
              {key}
            </th>
            <td>{value}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A button that looks like a link (keyboard reachable, no href). */
export function LinkButton(props: {
  onClick: () => void;
  title?: string;
  children: React.ReactNode;
  className?: string;
}): JSX.Element {
  return (
    <button
      type="button"
      className={`jp-dotnb-LinkButton ${props.className ?? ''}`}
      title={props.title}
      onClick={props.onClick}
    >
      {props.children}
    </button>
  );
}

/** A header bar for the sub-views, with a back button. */
export function ViewHeader(props: {
  title: React.ReactNode;
  onBack: () => void;
  actions?: React.ReactNode;
}): JSX.Element {
  return (
    <div className="jp-dotnb-ViewHeader">
      <button
        type="button"
        className="jp-dotnb-IconButton jp-dotnb-Back"
        onClick={props.onBack}
        title="Back to the run list"
        aria-label="Back to the run list"
      >
        ‹
      </button>
      <div className="jp-dotnb-ViewHeader-title">{props.title}</div>
      {props.actions && (
        <div className="jp-dotnb-ViewHeader-actions">{props.actions}</div>
      )}
    </div>
  );
}

/** A read-only highlighted code block (highlighting is done with text nodes). */
export function CodeBlock(props: {
  code: string;
  highlight?: (code: string, host: HTMLElement) => Promise<void>;
}): JSX.Element {
  const ref = React.useRef<HTMLPreElement>(null);
  React.useEffect(() => {
    const host = ref.current;
    if (!host) {
      return;
    }
    host.textContent = '';
    if (props.highlight) {
      props.highlight(props.code, host).catch(() => {
        host.textContent = props.code;
      });
    } else {
      host.textContent = props.code;
    }
  }, [props.code, props.highlight]);
  return (
    <pre
      className="jp-dotnb-Code cm-s-jupyter"
      ref={ref}
      tabIndex={0}
      aria-label="Code"
    />
  );
}
