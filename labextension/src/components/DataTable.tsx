/**
 * The tables of the panel (compare, restore plan): a header row, one row per
 * item whose first cell names it, and columns that either wrap (paths, names)
 * or stay on one line cut with an ellipsis (hashes, sizes, short labels).
 * Cell contents are React children, so user strings render as text.
 */

import * as React from 'react';

export interface IColumn<R> {
  header: string;
  /** What the cell shows. */
  value: (row: R) => React.ReactNode;
  /** The full text on hover, for a cell that may be cut. */
  title?: (row: R) => string | undefined;
  /**
   * `wrap` (the default) breaks long words (paths) only where they overflow;
   * `nowrap` keeps the cell on one line and cuts it with an ellipsis.
   */
  fit?: 'wrap' | 'nowrap';
  /** A CSS width for the column (the rest share what is left). */
  width?: string;
  className?: string;
}

export function DataTable<R>(props: {
  /** The first column is each row's header (`<th scope="row">`). */
  columns: IColumn<R>[];
  rows: R[];
  rowKey: (row: R) => string;
  rowClass?: (row: R) => string | undefined;
  /** `data-*` attributes of a row, for tests and styling. */
  rowData?: (row: R) => Record<string, string>;
  className?: string;
  'aria-label'?: string;
}): JSX.Element {
  const { columns } = props;
  const cellClass = (column: IColumn<R>) =>
    [
      column.fit === 'nowrap' ? 'jp-dotnb-Cell-nowrap' : 'jp-dotnb-Cell-wrap',
      column.className ?? ''
    ]
      .join(' ')
      .trim();
  return (
    <table
      className={`jp-dotnb-Table ${props.className ?? ''}`.trim()}
      aria-label={props['aria-label']}
    >
      <colgroup>
        {columns.map((column, i) => (
          <col key={i} style={column.width ? { width: column.width } : {}} />
        ))}
      </colgroup>
      <thead>
        <tr>
          {columns.map((column, i) => (
            <th key={i} scope="col" className={cellClass(column)}>
              {column.header}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {props.rows.map(row => {
          const data = props.rowData?.(row) ?? {};
          const attrs = Object.fromEntries(
            Object.entries(data).map(([k, v]) => [`data-${k}`, v])
          );
          return (
            <tr
              key={props.rowKey(row)}
              className={props.rowClass?.(row) || undefined}
              {...attrs}
            >
              {columns.map((column, i) => {
                const cell = {
                  className: cellClass(column),
                  title: column.title?.(row)
                };
                return i === 0 ? (
                  <th key={i} scope="row" {...cell}>
                    {column.value(row)}
                  </th>
                ) : (
                  <td key={i} {...cell}>
                    {column.value(row)}
                  </td>
                );
              })}
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
