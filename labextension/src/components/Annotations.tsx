import * as React from 'react';

/** One change to a run's tags or note, as `POST runs/{run}/annotations` takes it. */
export type AnnotationChange =
  { tag: string[] } | { untag: string[] } | { note: string };

/**
 * A run's tags and note in its details, editable: a chip per tag with a button
 * that removes it, a field that adds tags (several at once, separated by spaces
 * or commas), and the note with an editor.  Tags and notes sit beside the run
 * (annotation events); the run itself never changes.  Every user string is
 * rendered as text.
 */
export function Annotations(props: {
  tags: string[];
  note: string | null;
  /** Sends one change; resolves once the run list shows it (or rejects). */
  annotate: (change: AnnotationChange) => Promise<unknown>;
}): JSX.Element {
  const { tags, note, annotate } = props;
  const [tagText, setTagText] = React.useState('');
  const [editing, setEditing] = React.useState(false);
  const [noteText, setNoteText] = React.useState(note ?? '');
  const [error, setError] = React.useState<string | null>(null);
  const [busy, setBusy] = React.useState(false);

  const send = async (change: AnnotationChange): Promise<boolean> => {
    setBusy(true);
    setError(null);
    try {
      await annotate(change);
      return true;
    } catch (err: any) {
      setError(String(err?.message ?? err));
      return false;
    } finally {
      setBusy(false);
    }
  };
  const newTags = tagText.split(/[\s,]+/).filter(Boolean);
  const addTags = async () => {
    if (newTags.length && (await send({ tag: newTags }))) {
      setTagText('');
    }
  };
  const saveNote = async () => {
    if (await send({ note: noteText })) {
      setEditing(false);
    }
  };

  return (
    <div className="jp-dotnb-Summary jp-dotnb-Details-annotations">
      <span className="jp-dotnb-Details-tags" aria-label="Tags">
        {tags.map(tag => (
          <span key={tag} className="jp-dotnb-Chip jp-dotnb-Details-tag">
            <span className="jp-dotnb-Details-tagName">{tag}</span>
            <button
              className="jp-dotnb-Details-untag"
              aria-label={`Remove tag ${tag}`}
              title={`Remove tag ${tag}`}
              disabled={busy}
              onClick={() => void send({ untag: [tag] })}
            >
              ×
            </button>
          </span>
        ))}
        <input
          className="jp-dotnb-Details-tagInput"
          aria-label="Add tags"
          placeholder="add a tag"
          value={tagText}
          disabled={busy}
          onChange={event => setTagText(event.target.value)}
          onKeyDown={event => {
            if (event.key === 'Enter') {
              void addTags();
            }
          }}
        />
        <button
          className="jp-dotnb-Details-tagAdd"
          disabled={busy || newTags.length === 0}
          onClick={() => void addTags()}
        >
          Tag
        </button>
      </span>
      {editing ? (
        <span className="jp-dotnb-Details-noteEditor">
          <textarea
            aria-label="Note"
            value={noteText}
            disabled={busy}
            onChange={event => setNoteText(event.target.value)}
          />
          <button disabled={busy} onClick={() => void saveNote()}>
            Save note
          </button>
          <button
            disabled={busy}
            onClick={() => {
              setEditing(false);
              setNoteText(note ?? '');
              setError(null);
            }}
          >
            Cancel
          </button>
        </span>
      ) : (
        <span className="jp-dotnb-Details-noteView">
          {note && (
            <span className="jp-dotnb-Details-note" aria-label="Note">
              {note}
            </span>
          )}
          <button
            className="jp-dotnb-Details-noteEdit"
            onClick={() => {
              setNoteText(note ?? '');
              setEditing(true);
            }}
          >
            {note ? 'Edit note' : 'Add a note'}
          </button>
        </span>
      )}
      {error && (
        <span className="jp-dotnb-Message-error" role="alert">
          {error}
        </span>
      )}
    </div>
  );
}
