/**
 * The run badge: a mime renderer for the `application/vnd.dotnb.run+json`
 * output of a tracked cell. Clicking it dispatches a DOM event that the main
 * plugin turns into the `dotnb:open-run` command (a mime extension has no
 * access to the application's commands).
 */

import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { ReactWidget } from '@jupyterlab/ui-components';
import * as React from 'react';

import { RunBadge } from './components/Badge';
import { OPEN_RUN_EVENT, RUN_MIME_TYPE } from './constants';
import { IRunBundle } from './types';

export class RunBadgeRenderer
  extends ReactWidget
  implements IRenderMime.IRenderer
{
  constructor() {
    super();
    this.addClass('jp-dotnb-BadgeOutput');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const data = model.data[RUN_MIME_TYPE] as unknown as IRunBundle | undefined;
    this._bundle = data && typeof data.id === 'string' ? data : null;
    this.update();
    await this.renderPromise;
  }

  protected render(): JSX.Element | null {
    if (!this._bundle) {
      return null;
    }
    return React.createElement(RunBadge, {
      bundle: this._bundle,
      onOpen: (id: string) =>
        this.node.dispatchEvent(
          new CustomEvent(OPEN_RUN_EVENT, { bubbles: true, detail: { id } })
        )
    });
  }

  private _bundle: IRunBundle | null = null;
}

const extension: IRenderMime.IExtension = {
  id: 'dotnb:run-badge',
  description: 'Renders the output of a tracked cell as a run badge.',
  rendererFactory: {
    // Safe in untrusted notebooks: the bundle is only ever rendered as text.
    safe: true,
    mimeTypes: [RUN_MIME_TYPE],
    createRenderer: () => new RunBadgeRenderer()
  },
  rank: 40,
  dataType: 'json'
};

export default extension;
