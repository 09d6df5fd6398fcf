/**
 * What dotnb's main-area views share with JupyterLab: opening a view as a tab
 * (tracked, so the layout restorer brings it back), and opening a project file.
 */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { runsIcon } from './icons';

/** Add `content` to the main area as a closable dotnb tab, tracked and active. */
export function openInMainArea<T extends Widget>(
  app: JupyterFrontEnd,
  tracker: WidgetTracker<MainAreaWidget<T>>,
  content: T,
  tab: { id: string; label: string; caption: string }
): MainAreaWidget<T> {
  const widget = new MainAreaWidget({ content });
  widget.id = tab.id;
  widget.title.label = tab.label;
  widget.title.caption = tab.caption;
  widget.title.icon = runsIcon;
  widget.title.closable = true;
  void tracker.add(widget);
  app.shell.add(widget, 'main');
  app.shell.activateById(widget.id);
  return widget;
}

/**
 * Open a project file (root-relative): in its editor or viewer when JupyterLab
 * knows its type, else shown in the file browser (Parquet, pickles… would
 * otherwise load into a text editor).
 */
export function openProjectFile(app: JupyterFrontEnd, path: string): void {
  void app.commands.execute(
    app.docRegistry.getFileTypesForPath(path).length
      ? 'docmanager:open'
      : 'filebrowser:go-to-path',
    { path }
  );
}
