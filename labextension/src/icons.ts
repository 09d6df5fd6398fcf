import { LabIcon } from '@jupyterlab/ui-components';

/** A clock with a back arrow: the run history. */
const RUNS_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M13 3a9 9 0 0 0-8.95 8H1l4 4 4-4H6.07A7 7 0 1 1 13 19a6.97 6.97 0 0 1-4.95-2.05l-1.41 1.41A9 9 0 1 0 13 3zm-1 5v5.41l4.29 4.3 1.42-1.42L14 12.59V8h-2z"/>
  </g>
</svg>`;

export const runsIcon = new LabIcon({ name: 'dotnb:runs', svgstr: RUNS_SVG });
