// jsdom lacks a few browser APIs that JupyterLab's packages touch at import time.
const g = globalThis as any;
if (typeof g.DragEvent === 'undefined') {
  g.DragEvent = class DragEvent extends MouseEvent {};
}
if (typeof window.matchMedia !== 'function') {
  window.matchMedia = (query: string) =>
    ({
      matches: false,
      media: query,
      onchange: null,
      addListener: () => undefined,
      removeListener: () => undefined,
      addEventListener: () => undefined,
      removeEventListener: () => undefined,
      dispatchEvent: () => false
    }) as MediaQueryList;
}
// jsdom has no canvas; Vega (chart-compiled.test.ts) measures text with one when
// it can and estimates otherwise. Without this, jsdom logs "Not implemented".
HTMLCanvasElement.prototype.getContext = (() =>
  null) as unknown as HTMLCanvasElement['getContext'];
// jsdom has no requestIdleCallback; ReactWidget (the restore dialogs' bodies,
// restore.test.tsx) schedules with it once rendered.
if (typeof g.requestIdleCallback !== 'function') {
  g.requestIdleCallback = (callback: IdleRequestCallback) =>
    setTimeout(() => callback({ didTimeout: false, timeRemaining: () => 0 }));
  g.cancelIdleCallback = (handle: number) => clearTimeout(handle);
}
