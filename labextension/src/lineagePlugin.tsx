/**
 * The lineage view's plugin: a main-area view of where a run or a file came
 * from and what used it, opened from the Runs panel (a run's details and the
 * list's toolbar), from a file's context menu in the file browser, and from the
 * command palette (the current notebook's newest run).
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
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';
import {
  ITranslator,
  nullTranslator,
  TranslationBundle
} from '@jupyterlab/translation';
import { Signal } from '@lumino/signaling';
import * as React from 'react';

import { DotnbApi, ILineageTarget } from './api';
import { ILineageServices, LineageView } from './components/LineageView';
import { CommandIDs } from './constants';
import { runsIcon } from './icons';
import { openInMainArea, openProjectFile } from './mainArea';

export const LINEAGE_PLUGIN_ID = 'dotnb:lineage';

export class LineageWidget extends ReactWidget {
  constructor(
    readonly target: ILineageTarget,
    private readonly _services: ILineageServices,
    private readonly _trans: TranslationBundle
  ) {
    super();
    this.addClass('jp-dotnb-DataLineageWidget');
  }

  /** What the graph is of, once the server has said. */
  readonly subjectChanged = new Signal<this, string>(this);

  protected render(): JSX.Element {
    return (
      <LineageView
        target={this.target}
        services={this._services}
        trans={this._trans}
        onSubject={subject => {
          this.subjectChanged.emit(subject);
        }}
      />
    );
  }
}

function targetOf(args: Record<string, unknown>): ILineageTarget | null {
  const run = typeof args.run === 'string' && args.run ? args.run : undefined;
  const path =
    typeof args.path === 'string' && args.path ? args.path : undefined;
  return run || path ? { run, path } : null;
}

export const lineagePlugin: JupyterFrontEndPlugin<void> = {
  id: LINEAGE_PLUGIN_ID,
  description:
    'The lineage view: where a run or a file came from and what used it, as a graph.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [
    IFileBrowserFactory,
    ICommandPalette,
    ILayoutRestorer,
    ITranslator
  ],
  activate: (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker,
    browsers: IFileBrowserFactory | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load('dotnb');
    const api = new DotnbApi(app.serviceManager.serverSettings);
    const tracker = new WidgetTracker<MainAreaWidget<LineageWidget>>({
      namespace: 'dotnb-lineage'
    });
    const services: ILineageServices = {
      lineage: (target, direction, depth, signal) =>
        api.lineage(target, direction, depth, signal),
      openRun: id => void app.commands.execute(CommandIDs.openRun, { id }),
      openPath: path => openProjectFile(app, path),
      storedUrl: (run, path, role) => api.fileUrl(run, path, role),
      openLineage: target =>
        void app.commands.execute(CommandIDs.lineage, { ...target })
    };

    const open = (target: ILineageTarget) => {
      const same = tracker.find(
        w =>
          w.content.target.run === target.run &&
          w.content.target.path === target.path
      );
      if (same) {
        app.shell.activateById(same.id);
        return same;
      }
      const content = new LineageWidget(target, services, trans);
      const what = target.run
        ? trans.__('run %1', target.run.slice(0, 10))
        : (target.path ?? '').split('/').pop();
      const widget = openInMainArea(app, tracker, content, {
        id: `dotnb-lineage-${Date.now()}`,
        label: trans.__('Lineage: %1', what ?? ''),
        caption: trans.__(
          'Where %1 came from and what used it',
          target.run ?? target.path ?? ''
        )
      });
      content.subjectChanged.connect((_, subject) => {
        widget.title.label = trans.__('Lineage: %1', subject);
        widget.title.caption = trans.__(
          'Where %1 came from and what used it',
          subject
        );
      });
      return widget;
    };

    app.commands.addCommand(CommandIDs.lineage, {
      label: args =>
        targetOf(args)
          ? trans.__('Show Lineage')
          : trans.__("Show Lineage of the Notebook's Newest Run"),
      caption: trans.__(
        'Where a dotnb run or file came from and what used it (args: run or path)'
      ),
      execute: async args => {
        const target = targetOf(args);
        if (target) {
          return open(target);
        }
        const notebook = notebooks.currentWidget?.context.path ?? null;
        const page = await api.runs({ notebook, kind: 'run', limit: 1 });
        const newest = page.runs[0];
        if (newest) {
          return open({ run: newest.id });
        }
        return undefined;
      }
    });
    palette?.addItem({ command: CommandIDs.lineage, category: 'dotnb' });

    if (browsers) {
      app.commands.addCommand(CommandIDs.fileLineage, {
        label: trans.__('Show Lineage (dotnb)'),
        caption: trans.__(
          "Where this file's bytes came from and what used them"
        ),
        icon: runsIcon,
        isVisible: () => {
          const item = browsers.tracker.currentWidget?.selectedItems().next();
          return !!item && !item.done && item.value.type !== 'directory';
        },
        execute: () => {
          const item = browsers.tracker.currentWidget?.selectedItems().next();
          if (item && !item.done) {
            return open({ path: item.value.path });
          }
          return undefined;
        }
      });
      app.contextMenu.addItem({
        command: CommandIDs.fileLineage,
        selector: '.jp-DirListing-item[data-isdir="false"]',
        rank: 60
      });
    }

    restorer?.restore(tracker, {
      command: CommandIDs.lineage,
      args: widget => ({ ...widget.content.target }),
      name: widget =>
        widget.content.target.run ?? `path:${widget.content.target.path}`
    });
  }
};
