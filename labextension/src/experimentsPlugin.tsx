/**
 * The Experiments view's plugin: a main-area document listing runs with their
 * params and metrics, opened from the Runs panel, the command palette and the
 * launcher. Preferences (default columns, scope, open on start) live in the
 * settings registry (labextension/schema/experiments.json); strings go through
 * JupyterLab's translator.
 */

import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  MainAreaWidget,
  ReactWidget,
  WidgetTracker
} from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import * as React from 'react';

import { DotnbApi } from './api';
import {
  ExperimentsView,
  IExperimentsServices
} from './components/ExperimentsView';
import { CommandIDs } from './constants';
import { DEFAULT_BUILTINS } from './experiments';
import { ExperimentsModel } from './experimentsModel';
import { runsIcon } from './icons';
import { openInMainArea } from './mainArea';
import { chartRenderer } from './vegaRenderer';

export const EXPERIMENTS_PLUGIN_ID = 'dotnb:experiments';

/** The main-area content: the React view over one model. */
export class ExperimentsWidget extends ReactWidget {
  constructor(
    readonly model: ExperimentsModel,
    private readonly _services: IExperimentsServices,
    private readonly _trans: TranslationBundle
  ) {
    super();
    this.addClass('jp-dotnb-ExperimentsWidget');
  }

  protected render(): JSX.Element {
    return (
      <ExperimentsView
        model={this.model}
        services={this._services}
        trans={this._trans}
      />
    );
  }
}

function download(name: string, text: string, type: string): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export const experimentsPlugin: JupyterFrontEndPlugin<void> = {
  id: EXPERIMENTS_PLUGIN_ID,
  description:
    'The Experiments view: runs as a table of params and metrics, sorted and filtered by the server, with tags, notes, charts and comparisons.',
  autoStart: true,
  requires: [INotebookTracker, IRenderMimeRegistry],
  optional: [
    ICommandPalette,
    ILauncher,
    ILayoutRestorer,
    ISettingRegistry,
    ITranslator
  ],
  activate: (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker,
    rendermime: IRenderMimeRegistry,
    palette: ICommandPalette | null,
    launcher: ILauncher | null,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load('dotnb');
    const api = new DotnbApi(app.serviceManager.serverSettings);
    const tracker = new WidgetTracker<MainAreaWidget<ExperimentsWidget>>({
      namespace: 'dotnb-experiments'
    });
    const preferences = {
      defaultColumns: DEFAULT_BUILTINS,
      scope: 'notebook' as 'notebook' | 'all',
      openOnStart: false
    };
    const currentNotebook = () => notebooks.currentWidget?.context.path ?? null;
    const services: IExperimentsServices = {
      renderChart: chartRenderer(rendermime),
      openRun: id => void app.commands.execute(CommandIDs.openRun, { id }),
      compareTwo: (a, b) =>
        void app.commands.execute(CommandIDs.compare, { a, b }),
      currentNotebook,
      download
    };

    const open = (args: { notebook?: string | null; all?: boolean } = {}) => {
      const notebook = args.all
        ? null
        : args.notebook !== undefined
          ? args.notebook
          : preferences.scope === 'all'
            ? null
            : currentNotebook();
      const model = new ExperimentsModel(api, {
        notebook,
        defaultColumns: preferences.defaultColumns
      });
      const content = new ExperimentsWidget(model, services, trans);
      const widget = openInMainArea(app, tracker, content, {
        id: `dotnb-experiments-${Date.now()}`,
        label: notebook
          ? trans.__('Experiments: %1', notebook.split('/').pop() ?? notebook)
          : trans.__('Experiments'),
        caption: trans.__('dotnb runs as a table')
      });
      void model.reload();
      return widget;
    };

    app.commands.addCommand(CommandIDs.experiments, {
      label: args =>
        args.all
          ? trans.__('Experiments: All Notebooks')
          : trans.__('Experiments (dotnb)'),
      caption: trans.__(
        'Open the dotnb runs as a table of params and metrics (args: notebook, all)'
      ),
      icon: args => (args.isPalette ? undefined : runsIcon),
      execute: args =>
        open({
          notebook:
            typeof args.notebook === 'string' ? args.notebook : undefined,
          all: !!args.all
        })
    });
    palette?.addItem({ command: CommandIDs.experiments, category: 'dotnb' });
    palette?.addItem({
      command: CommandIDs.experiments,
      category: 'dotnb',
      args: { all: true }
    });
    launcher?.add({
      command: CommandIDs.experiments,
      category: trans.__('Other'),
      rank: 50
    });
    restorer?.restore(tracker, {
      command: CommandIDs.experiments,
      args: widget =>
        widget.content.model.notebook
          ? { notebook: widget.content.model.notebook }
          : { all: true },
      name: widget => widget.content.model.notebook ?? '*'
    });

    if (settingRegistry) {
      void Promise.all([
        settingRegistry.load(EXPERIMENTS_PLUGIN_ID),
        app.restored
      ]).then(
        ([settings]) => {
          const read = () => {
            preferences.defaultColumns = settings.get('defaultColumns')
              .composite as string[];
            preferences.scope = settings.get('scope').composite as
              'notebook' | 'all';
            preferences.openOnStart = settings.get('openOnStart')
              .composite as boolean;
          };
          read();
          settings.changed.connect(read);
          if (preferences.openOnStart && tracker.size === 0) {
            open();
          }
        },
        (error: unknown) => console.warn('dotnb: Experiments settings', error)
      );
    }
  }
};
