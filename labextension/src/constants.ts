/**
 * Identifiers the extension shares between its parts and with dotnb's Python
 * side: MIME types, the DOM event of a run badge, and command ids.
 */

/** The output a tracked cell displays (dotnb/capture/session.py::_display). */
export const RUN_MIME_TYPE = 'application/vnd.dotnb.run+json';

/** JupyterLab's own Vega-Lite renderer (@jupyterlab/vega5-extension). */
export const VEGALITE_MIME_TYPE = 'application/vnd.vegalite.v5+json';

/** DOM event a run badge dispatches; the main plugin turns it into a command. */
export const OPEN_RUN_EVENT = 'dotnb-open-run';

export namespace CommandIDs {
  export const openPanel = 'dotnb:open-panel';
  export const openRun = 'dotnb:open-run';
  export const compare = 'dotnb:compare-runs';
  export const chart = 'dotnb:metric-chart';
  export const restore = 'dotnb:restore-run';
  export const refresh = 'dotnb:refresh';
  export const experiments = 'dotnb:open-experiments';
  export const lineage = 'dotnb:open-lineage';
  export const fileLineage = 'dotnb:file-lineage';
  export const sweepRun = 'dotnb:sweep-run';
  export const openSweep = 'dotnb:open-sweep';
}
