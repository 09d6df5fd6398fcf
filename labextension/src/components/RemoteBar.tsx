/**
 * Push and Pull for team remotes, under the list's filters. Shown only when
 * the store has a remote (`dotnb remote add NAME URL`); the outcome of the
 * last transfer stays below the buttons until dismissed.
 */

import { Button, HTMLSelect } from '@jupyterlab/ui-components';
import * as React from 'react';

import type { RemotesModel } from '../remotes';
import { Message } from './common';
import { useSignal } from './hooks';

export function RemoteBar(props: {
  remotes: RemotesModel;
}): JSX.Element | null {
  const { remotes } = props;
  useSignal(remotes.changed);
  // Remotes are configured with the CLI: look again whenever the list is shown.
  React.useEffect(() => {
    void remotes.load();
  }, [remotes]);

  const note = remotes.note;
  const selected = remotes.selected;
  if (!remotes.available || !selected) {
    return null;
  }
  const busy = remotes.busy;
  const where = `${selected.name} (${selected.url})`;
  return (
    <div className="jp-dotnb-RemoteBar" aria-busy={busy !== null}>
      <div className="jp-dotnb-FilterRow">
        {remotes.remotes.length > 1 && (
          <HTMLSelect
            aria-label="Remote"
            className="jp-dotnb-RemoteSelect"
            value={selected.name}
            disabled={busy !== null}
            onChange={event => remotes.select(event.target.value)}
            options={remotes.remotes.map(r => ({
              value: r.name,
              label: r.default ? `${r.name} (default)` : r.name
            }))}
          />
        )}
        <Button
          small
          className="jp-mod-styled jp-dotnb-PushButton"
          disabled={busy !== null}
          onClick={() => void remotes.push()}
          title={`Send every run to ${where}`}
        >
          {busy === 'push' ? 'Pushing…' : 'Push'}
        </Button>
        <Button
          small
          className="jp-mod-styled jp-dotnb-PullButton"
          disabled={busy !== null}
          onClick={() => void remotes.pull()}
          title={`Fetch the runs of ${where} that this project lacks (data files come when first needed)`}
        >
          {busy === 'pull' ? 'Pulling…' : 'Pull'}
        </Button>
        {remotes.remotes.length === 1 && (
          <span className="jp-dotnb-RemoteName" title={where}>
            {selected.name}
          </span>
        )}
      </div>
      {note && (
        <Message kind={note.kind}>
          <div className="jp-dotnb-TransferNote">
            <span className="jp-dotnb-TransferNote-text">{note.text}</span>
            <button
              type="button"
              className="jp-dotnb-IconButton jp-dotnb-Dismiss"
              onClick={() => remotes.dismiss()}
              title="Dismiss"
              aria-label="Dismiss"
            >
              ×
            </button>
          </div>
          {note.details.length > 0 && (
            <ul className="jp-dotnb-TransferNote-details">
              {note.details.map((line, index) => (
                <li key={index}>{line}</li>
              ))}
            </ul>
          )}
        </Message>
      )}
    </div>
  );
}
