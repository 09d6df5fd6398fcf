/**
 * The Runs sidebar: a ReactWidget that shows the run list or a view opened
 * from it, with a back stack.
 */

import { ReactWidget } from '@jupyterlab/ui-components';
import { ISignal, Signal } from '@lumino/signaling';
import * as React from 'react';

import { RunsPanel } from './components/RunsPanel';
import { IPanelServices, View } from './services';

type ServicesWithoutNav = Omit<IPanelServices, 'navigate' | 'back'>;

export class RunsSidebar extends ReactWidget {
  constructor(services: ServicesWithoutNav) {
    super();
    this.addClass('jp-dotnb-Sidebar');
    this._services = {
      ...services,
      navigate: view => this.navigate(view),
      back: () => this.back()
    };
  }

  get services(): IPanelServices {
    return this._services;
  }

  get view(): View {
    return this._stack[this._stack.length - 1];
  }

  get viewChanged(): ISignal<this, View> {
    return this._viewChanged;
  }

  navigate(view: View): void {
    if (view.kind === 'list') {
      this._stack = [view];
    } else {
      const top = this.view;
      // Replacing a view of the same kind keeps the back stack short.
      if (top.kind === view.kind) {
        this._stack = [...this._stack.slice(0, -1), view];
      } else {
        this._stack = [...this._stack, view].slice(-10);
      }
    }
    this._viewChanged.emit(this.view);
    this.update();
  }

  back(): void {
    if (this._stack.length > 1) {
      this._stack = this._stack.slice(0, -1);
    }
    this._viewChanged.emit(this.view);
    this.update();
  }

  protected render(): JSX.Element {
    return <RunsPanel view={this.view} services={this._services} />;
  }

  private _services: IPanelServices;
  private _stack: View[] = [{ kind: 'list' }];
  private _viewChanged = new Signal<this, View>(this);
}
