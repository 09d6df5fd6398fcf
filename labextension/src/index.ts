/**
 * dotnb's JupyterLab plugin: the Runs sidebar, its commands, live notebook
 * snapshots, and the bridge from run badges to the sidebar.
 */

import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IEditorLanguageRegistry } from '@jupyterlab/codemirror';
import { IDocumentManager } from '@jupyterlab/docmanager';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { IStateDB } from '@jupyterlab/statedb';

import { DotnbApi } from './api';
import { runsIcon } from './icons';
import { introduceOnce } from './introduce';
import { openProjectFile } from './mainArea';
import { RunsModel } from './model';
import { RemotesModel } from './remotes';
import { restoreWithDialog } from './restore';
import { trackSnapshots } from './snapshot';
import { CommandIDs, OPEN_RUN_EVENT } from './constants';
import { experimentsPlugin } from './experimentsPlugin';
import { lineagePlugin } from './lineagePlugin';
import { sweepPlugin } from './sweepPlugin';
import { chartRenderer } from './vegaRenderer';
import { RunsSidebar } from './widget';

const SIDEBAR_ID = 'dotnb-runs';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'dotnb:plugin',
  description:
    'The Runs sidebar: run history, details, compare, metric charts and restore for dotnb.',
  autoStart: true,
  requires: [INotebookTracker, IDocumentManager, IRenderMimeRegistry],
  optional: [
    ILayoutRestorer,
    ICommandPalette,
    IEditorLanguageRegistry,
    IStateDB
  ],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    docManager: IDocumentManager,
    rendermime: IRenderMimeRegistry,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    languages: IEditorLanguageRegistry | null,
    state: IStateDB | null
  ) => {
    const api = new DotnbApi(app.serviceManager.serverSettings);
    const model = new RunsModel(api);
    // A pull reloads the run list, so pulled runs show at once.
    const remotes = new RemotesModel(api, model);

    const restore = (id: string) => {
      const known = model.summary(id);
      const run = known
        ? Promise.resolve(known)
        : model.manifest(id).then(m => ({
            id: m.id,
            number: m.number,
            name: m.name ?? null,
            notebook: m.notebook,
            kind: m.kind
          }));
      void run.then(r =>
        restoreWithDialog(
          {
            api,
            docManager,
            // The checkpoint arrives through the live feed; without it, reload.
            onRestored: () => {
              if (!model.live) {
                void model.refresh();
              }
            }
          },
          r
        )
      );
    };

    const sidebar = new RunsSidebar({
      model,
      remotes,
      api,
      highlight: async (code, host) => {
        if (!languages) {
          host.textContent = code;
          return;
        }
        const language =
          languages.findBest('ipython') ??
          languages.findByMIME('text/x-python');
        await languages.highlight(code, language, host);
      },
      renderChart: chartRenderer(rendermime),
      notebookCells: path => {
        if (!path) {
          return null;
        }
        const panel = tracker.find(p => p.context.path === path);
        const cells = panel?.content.model?.cells;
        if (!cells) {
          return null;
        }
        const sources: string[] = [];
        for (let i = 0; i < cells.length; i++) {
          const cell = cells.get(i);
          if (cell.type === 'code') {
            sources.push(cell.sharedModel.getSource());
          }
        }
        return sources;
      },
      restore,
      openExperiments: () =>
        void app.commands.execute(CommandIDs.experiments, {}),
      sweep: id => void app.commands.execute(CommandIDs.sweepRun, { id }),
      openLineage: target =>
        void app.commands.execute(CommandIDs.lineage, { ...target }),
      openPath: path => openProjectFile(app, path)
    });
    sidebar.id = SIDEBAR_ID;
    sidebar.title.icon = runsIcon;
    sidebar.title.caption = 'Runs (dotnb): history, compare, restore';
    app.shell.add(sidebar, 'left', { rank: 550 });
    restorer?.add(sidebar, SIDEBAR_ID);

    // The current notebook's runs come first in the list.
    const follow = (panel: NotebookPanel | null) => {
      model.setCurrentNotebook(panel ? panel.context.path : null);
    };
    tracker.currentChanged.connect((_, panel) => {
      follow(panel);
      panel?.context.pathChanged.connect(() => {
        if (tracker.currentWidget === panel) {
          follow(panel);
        }
      });
    });
    follow(tracker.currentWidget);

    trackSnapshots(api, tracker);

    const show = () => app.shell.activateById(SIDEBAR_ID);
    app.commands.addCommand(CommandIDs.openPanel, {
      label: 'Show Runs (dotnb)',
      caption: 'Open the dotnb run history in the left sidebar',
      execute: () => {
        sidebar.navigate({ kind: 'list' });
        show();
      }
    });
    app.commands.addCommand(CommandIDs.openRun, {
      label: 'Open Run in the Runs Panel',
      caption: 'Show a dotnb run (args: id) in the sidebar',
      execute: args => {
        const id = String(args.id ?? '');
        if (id) {
          sidebar.navigate({ kind: 'details', id });
          show();
        }
      }
    });
    app.commands.addCommand(CommandIDs.compare, {
      label: 'Compare Two Runs',
      caption: 'Compare two dotnb runs (args: a, b; default: the two selected)',
      execute: args => {
        const a = String(args.a ?? model.selection[0] ?? '');
        const b = String(args.b ?? model.selection[1] ?? '');
        if (a && b) {
          sidebar.navigate({ kind: 'compare', ids: [a, b] });
          show();
        }
      }
    });
    app.commands.addCommand(CommandIDs.chart, {
      label: 'Chart a Metric Across Runs',
      caption: "Chart a dotnb metric across the notebook's runs",
      execute: args => {
        sidebar.navigate({
          kind: 'chart',
          metric: args.metric ? String(args.metric) : null
        });
        show();
      }
    });
    app.commands.addCommand(CommandIDs.restore, {
      label: 'Restore Run…',
      caption: "Restore a dotnb run's data files and notebook (args: id)",
      execute: args => {
        if (args.id) {
          restore(String(args.id));
        }
      }
    });
    app.commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh Runs',
      caption: 'Reload the dotnb run list',
      execute: () => Promise.all([model.refresh(), remotes.load()])
    });
    if (palette) {
      const category = 'dotnb';
      for (const command of [
        CommandIDs.openPanel,
        CommandIDs.chart,
        CommandIDs.refresh
      ]) {
        palette.addItem({ command, category });
      }
    }

    // Run badges ask for their run through a DOM event (see mime.ts).
    document.addEventListener(OPEN_RUN_EVENT, event => {
      const id = (event as CustomEvent<{ id?: string }>).detail?.id;
      if (id) {
        void app.commands.execute(CommandIDs.openRun, { id });
      }
    });

    void app.restored.then(() => {
      void model.start();
      // Show the panel once to a new user (per workspace), so it is found.
      void introduceOnce(state, show);
    });
  }
};

export default [plugin, experimentsPlugin, lineagePlugin, sweepPlugin];
