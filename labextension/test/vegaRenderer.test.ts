import { Widget } from '@lumino/widgets';
import { describe, expect, it, vi } from 'vitest';

import { VEGALITE_MIME_TYPE } from '../src/constants';
import {
  BRUSH_SETTLE_MS,
  CHART_ERROR_CLASS,
  chartRenderer,
  vegaViewOf
} from '../src/vegaRenderer';

/** A rendermime registry whose Vega-Lite renderer settles as told. */
function registry(
  render: (renderer: any) => Promise<void>,
  preferred: string | undefined = VEGALITE_MIME_TYPE
) {
  const renderers: any[] = [];
  return {
    renderers,
    preferredMimeType: () => preferred,
    createRenderer: () => {
      const renderer: any = new Widget();
      renderer.renderModel = (model: any) => {
        renderer.model = model;
        return render(renderer);
      };
      renderers.push(renderer);
      return renderer;
    }
  };
}

const settle = () => new Promise(resolve => setTimeout(resolve, 0));

describe('chartRenderer', () => {
  it("hands the renderer dotnb's spec as trusted (JupyterLab 4.6.7 prompts before drawing an untrusted one)", async () => {
    const host = document.createElement('div');
    document.body.appendChild(host);
    const drawn = registry(() => Promise.resolve());
    const spec = { mark: 'point', data: { values: [{ name: '<b>x</b>' }] } };
    const dispose = chartRenderer(drawn as any)(spec, host);
    await settle();
    const model = drawn.renderers[0].model;
    expect(model.trusted).toBe(true);
    expect(model.data[VEGALITE_MIME_TYPE]).toBe(spec);
    dispose();
    host.remove();
  });

  it('shows a failed chart as text and clears it for the next chart', async () => {
    const host = document.createElement('div');
    document.body.appendChild(host);
    const failing = registry(() =>
      Promise.reject(new Error('<b>loss "train"</b> broke'))
    );
    const dispose = chartRenderer(failing as any)({}, host);
    await settle();
    const note = host.querySelector(`.${CHART_ERROR_CLASS}`);
    expect(note?.textContent).toBe(
      'Could not draw the chart: <b>loss "train"</b> broke'
    );
    expect(host.querySelector('b')).toBeNull();
    dispose();
    expect(host.textContent).toBe('');

    // The next metric draws fine: nothing of the error is left.
    const working = registry(() => Promise.resolve());
    const disposeNext = chartRenderer(working as any)({}, host);
    await settle();
    expect(host.querySelector(`.${CHART_ERROR_CLASS}`)).toBeNull();
    expect(host.contains(working.renderers[0].node)).toBe(true);
    disposeNext();
    expect(host.children).toHaveLength(0);
    host.remove();
  });

  it('reports clicks on points through the Vega view when the renderer has one', async () => {
    const host = document.createElement('div');
    document.body.appendChild(host);
    let handler: any = null;
    const rm = registry(async renderer => {
      renderer._result = {
        view: { addEventListener: (_: string, h: any) => (handler = h) }
      };
    });
    const picked: string[] = [];
    const dispose = chartRenderer(rm as any)({}, host, id => picked.push(id));
    await settle();
    handler(null, { datum: { id: 'R2' } });
    handler(null, { datum: { id: 7 } });
    handler(null, null);
    expect(picked).toEqual(['R2']);
    dispose();
    host.remove();
  });

  it('hands on a brush once the pointer rests, and nothing after disposal', async () => {
    vi.useFakeTimers();
    try {
      const host = document.createElement('div');
      document.body.appendChild(host);
      let listener: any = null;
      const rm = registry(async renderer => {
        renderer._result = {
          view: {
            addEventListener: () => undefined,
            addSignalListener: (name: string, h: any) =>
              (listener = { name, h })
          }
        };
      });
      const brushes: unknown[] = [];
      const dispose = chartRenderer(rm as any)({}, host, undefined, {
        signal: 'brush',
        handler: value => brushes.push(value)
      });
      await vi.runAllTimersAsync();
      expect(listener.name).toBe('brush');
      listener.h('brush', { x: [1, 2] });
      listener.h('brush', { x: [1, 3] }); // still dragging
      vi.advanceTimersByTime(BRUSH_SETTLE_MS - 1);
      expect(brushes).toEqual([]);
      vi.advanceTimersByTime(1);
      expect(brushes).toEqual([{ x: [1, 3] }]);
      listener.h('brush', { x: [5, 6] });
      dispose();
      vi.advanceTimersByTime(BRUSH_SETTLE_MS);
      expect(brushes).toEqual([{ x: [1, 3] }]);
      host.remove();
    } finally {
      vi.useRealTimers();
    }
  });

  it('draws without click selection where the renderer keeps no view', async () => {
    const host = document.createElement('div');
    document.body.appendChild(host);
    const rm = registry(() => Promise.resolve());
    const picked: string[] = [];
    const dispose = chartRenderer(rm as any)({}, host, id => picked.push(id));
    await settle();
    expect(vegaViewOf(rm.renderers[0])).toBeNull();
    expect(host.querySelector(`.${CHART_ERROR_CLASS}`)).toBeNull();
    expect(picked).toEqual([]);
    dispose();
    host.remove();
  });

  it('says so when the Vega-Lite renderer is disabled', () => {
    const host = document.createElement('div');
    const rm = registry(() => Promise.resolve(), 'text/plain');
    const dispose = chartRenderer(rm as any)({}, host);
    expect(host.textContent).toContain('Vega-Lite renderer');
    expect(rm.renderers).toHaveLength(0);
    dispose();
    expect(host.textContent).toBe('');
  });
});
