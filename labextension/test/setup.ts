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
