/**
 * Charts drawn by JupyterLab's own Vega-Lite renderer (rendermime), so the
 * extension ships no charting code.
 *
 * Clicking a point selects its run. JupyterLab offers no public way to reach
 * the Vega view a rendered chart holds, so that one feature reads the
 * renderer's private `_result` (vega-embed's result), here and nowhere else.
 * Checked against @jupyterlab/vega5-extension 4.0–4.6 (JupyterLab 4.0–4.6.7).
 * Where it is missing the chart still draws and points are not clickable; the
 * table of values under each chart selects runs instead.
 */

import type { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { MimeModel } from '@jupyterlab/rendermime';
import { Widget } from '@lumino/widgets';

import { VEGALITE_MIME_TYPE } from './constants';

/** The part of a Vega view this module uses. */
interface IClickableView {
  addEventListener(
    type: 'click',
    handler: (event: unknown, item: { datum?: { id?: unknown } } | null) => void
  ): unknown;
  addSignalListener?(
    name: string,
    handler: (name: string, value: unknown) => void
  ): unknown;
}

/** A brush's value is applied once the pointer rests this long (ms). */
export const BRUSH_SETTLE_MS = 400;

/** The Vega view behind a rendered chart, when the renderer exposes it. */
export function vegaViewOf(renderer: unknown): IClickableView | null {
  const view = (renderer as { _result?: { view?: unknown } } | null)?._result
    ?.view as Partial<IClickableView> | undefined;
  return view && typeof view.addEventListener === 'function'
    ? (view as IClickableView)
    : null;
}

export const CHART_ERROR_CLASS = 'jp-dotnb-ChartError';

/**
 * A function that renders a Vega-Lite spec into `host`; `onSelect` gets the
 * `id` field of a clicked datum. It returns a function that removes the chart
 * (or its error) from `host`, so the next chart starts from an empty host.
 */
export function chartRenderer(
  rendermime: Pick<IRenderMimeRegistry, 'preferredMimeType' | 'createRenderer'>
) {
  return (
    spec: Record<string, unknown>,
    host: HTMLElement,
    onSelect?: (id: string) => void,
    onBrush?: { signal: string; handler: (value: unknown) => void }
  ): (() => void) => {
    let settle: ReturnType<typeof setTimeout> | null = null;
    const note = document.createElement('div');
    note.className = CHART_ERROR_CLASS;
    const showError = (text: string) => {
      // Text, never markup: the message can quote a metric name.
      note.textContent = text;
      host.appendChild(note);
    };
    if (
      rendermime.preferredMimeType({ [VEGALITE_MIME_TYPE]: {} }, 'any') !==
      VEGALITE_MIME_TYPE
    ) {
      showError(
        "Charts need JupyterLab's Vega-Lite renderer (@jupyterlab/vega5-extension), which is disabled."
      );
      return () => note.remove();
    }
    const renderer = rendermime.createRenderer(VEGALITE_MIME_TYPE);
    const model = new MimeModel({
      data: { [VEGALITE_MIME_TYPE]: spec as any },
      metadata: {
        [VEGALITE_MIME_TYPE]: {
          embed_options: { actions: false, renderer: 'svg' }
        }
      },
      // The spec is dotnb's own (experimentsChart.ts, chart.ts): user strings are
      // data values and signals in it, never expression text. Untrusted, the
      // renderer of JupyterLab 4.6.7 and later shows a "Render" prompt instead.
      trusted: true
    });
    Widget.attach(renderer, host);
    let disposed = false;
    renderer.renderModel(model).then(
      () => {
        const view = vegaViewOf(renderer);
        if (!disposed && onSelect && view) {
          view.addEventListener('click', (_event, item) => {
            const id = item?.datum?.id;
            if (typeof id === 'string') {
              onSelect(id);
            }
          });
        }
        if (!disposed && onBrush && view?.addSignalListener) {
          // The signal changes with every pointer move while dragging.
          view.addSignalListener(onBrush.signal, (_name, value) => {
            if (settle !== null) {
              clearTimeout(settle);
            }
            settle = setTimeout(() => {
              settle = null;
              if (!disposed) {
                onBrush.handler(value);
              }
            }, BRUSH_SETTLE_MS);
          });
        }
      },
      error => {
        if (!disposed) {
          showError(`Could not draw the chart: ${error?.message ?? error}`);
        }
      }
    );
    return () => {
      disposed = true;
      if (settle !== null) {
        clearTimeout(settle);
      }
      note.remove();
      try {
        renderer.dispose();
      } catch {
        // The host left the DOM before the renderer: nothing left to detach.
      }
    };
  };
}
