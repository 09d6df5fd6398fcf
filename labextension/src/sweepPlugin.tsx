/**
 * Parameter sweeps from JupyterLab: *Sweep…* on a run (its details in the Runs
 * panel, or the command with a run id) asks for each param's values, starts
 * the sweep on the server (`POST sweeps`, on the cluster `c.Dotnb.sweep_*`
 * configures) and opens a view in the main area that follows it. The sweep's
 * runs reach the Runs panel through its live feed, tagged `sweep:<id>`.
 */

import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  Dialog,
  MainAreaWidget,
  ReactWidget,
  showDialog,
  showErrorMessage,
  WidgetTracker
} from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import * as React from 'react';

import { DotnbApi } from './api';
import {
  ISweepForm,
  ISweepSource,
  ISweepViewServices,
  SweepFormBody,
  SweepView
} from './components/Sweep';
import { CommandIDs } from './constants';
import { openInMainArea } from './mainArea';
import { ISweepState } from './types';
import { chartRenderer } from './vegaRenderer';

export const SWEEP_PLUGIN_ID = 'dotnb:sweeps';

/** The dialog's body: the form, read back when the user presses Start. */
class SweepFormWidget
  extends ReactWidget
  implements Dialog.IBodyWidget<ISweepForm | null>
{
  constructor(
    private readonly _source: ISweepSource,
    private readonly _trans: TranslationBundle
  ) {
    super();
    this.addClass('jp-dotnb-SweepDialog');
  }

  form: ISweepForm | null = null;

  getValue(): ISweepForm | null {
    return this.form;
  }

  protected render(): JSX.Element {
    return (
      <SweepFormBody
        source={this._source}
        trans={this._trans}
        onChange={form => {
          this.form = form;
        }}
      />
    );
  }
}

export class SweepWidget extends ReactWidget {
  constructor(
    readonly sweepId: string,
    private readonly _initial: ISweepState | null,
    private readonly _services: ISweepViewServices,
    private readonly _trans: TranslationBundle
  ) {
    super();
    this.addClass('jp-dotnb-SweepWidget');
  }

  protected render(): JSX.Element {
    return (
      <SweepView
        id={this.sweepId}
        initial={this._initial}
        services={this._services}
        trans={this._trans}
      />
    );
  }
}

export const sweepPlugin: JupyterFrontEndPlugin<void> = {
  id: SWEEP_PLUGIN_ID,
  description:
    "Parameter sweeps: Sweep… on a run starts one on the server's cluster and follows it.",
  autoStart: true,
  requires: [IRenderMimeRegistry],
  optional: [ILayoutRestorer, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    rendermime: IRenderMimeRegistry,
    restorer: ILayoutRestorer | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load('dotnb');
    const api = new DotnbApi(app.serviceManager.serverSettings);
    const tracker = new WidgetTracker<MainAreaWidget<SweepWidget>>({
      namespace: 'dotnb-sweep'
    });
    const services: ISweepViewServices = {
      sweep: (id, signal) => api.sweep(id, signal),
      cancel: id => api.cancelSweep(id),
      openRun: id => void app.commands.execute(CommandIDs.openRun, { id }),
      renderChart: chartRenderer(rendermime)
    };

    const open = (id: string, initial: ISweepState | null = null) => {
      const same = tracker.find(w => w.content.sweepId === id);
      if (same) {
        app.shell.activateById(same.id);
        return same;
      }
      return openInMainArea(
        app,
        tracker,
        new SweepWidget(id, initial, services, trans),
        {
          id: `dotnb-sweep-${id}`,
          label: trans.__('Sweep %1', id.slice(0, 10)),
          caption: trans.__('dotnb sweep %1', id)
        }
      );
    };

    app.commands.addCommand(CommandIDs.sweepRun, {
      label: trans.__('Sweep…'),
      caption: trans.__(
        "Run this run's notebook once per point of a parameter space (args: id)"
      ),
      execute: async args => {
        const id = String(args.id ?? '');
        if (!id) {
          return;
        }
        let source: ISweepSource;
        try {
          const manifest = await api.run(id);
          const { params, clusters } = await api.sweepParams(manifest.id);
          const number = manifest.number ? `#${manifest.number}` : id;
          source = {
            run: manifest.id,
            title: [trans.__('run'), number, manifest.name]
              .filter(Boolean)
              .join(' '),
            params,
            clusters,
            metrics: Object.keys(manifest.metrics ?? {}).sort()
          };
        } catch (error) {
          // No parameters cell, or the run's notebook cannot be read: say why.
          await showErrorMessage(
            trans.__('Cannot sweep this run'),
            (error as Error).message ?? String(error)
          );
          return;
        }
        const body = new SweepFormWidget(source, trans);
        const answer = await showDialog({
          title: trans.__('Sweep %1', source.title),
          body,
          buttons: [
            Dialog.cancelButton(),
            Dialog.okButton({ label: trans.__('Start') })
          ],
          focusNodeSelector: 'input'
        });
        const form = answer.value;
        if (!answer.button.accept || !form) {
          return;
        }
        if (form.problem) {
          await showErrorMessage(trans.__('Sweep not started'), form.problem);
          return;
        }
        try {
          const state = await api.startSweep(form.request);
          return open(state.sweep, state);
        } catch (error) {
          await showErrorMessage(
            trans.__('Sweep not started'),
            (error as Error).message ?? String(error)
          );
        }
      }
    });
    app.commands.addCommand(CommandIDs.openSweep, {
      label: trans.__('Open Sweep'),
      caption: trans.__('Follow a dotnb sweep (args: sweep)'),
      execute: args => {
        const id = String(args.sweep ?? '');
        return id ? open(id) : undefined;
      }
    });
    restorer?.restore(tracker, {
      command: CommandIDs.openSweep,
      args: widget => ({ sweep: widget.content.sweepId }),
      name: widget => widget.content.sweepId
    });
  }
};
