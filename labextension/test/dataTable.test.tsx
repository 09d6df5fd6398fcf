import { render } from '@testing-library/react';
import * as React from 'react';
import { describe, expect, it } from 'vitest';

import { DataTable } from '../src/components/DataTable';
import { XSS } from './fixtures';

type Row = { path: string; hash: string };

describe('DataTable', () => {
  const rows: Row[] = [
    { path: 'data/train.csv', hash: 'a'.repeat(64) },
    { path: XSS, hash: 'b'.repeat(64) }
  ];
  const table = (
    <DataTable<Row>
      aria-label="Files"
      columns={[
        { header: 'Path', value: r => r.path, title: r => r.path },
        {
          header: 'Hash',
          value: r => r.hash.slice(0, 8),
          title: r => r.hash,
          fit: 'nowrap',
          width: '5.5em'
        }
      ]}
      rows={rows}
      rowKey={r => r.path}
      rowClass={r => (r.path === XSS ? 'jp-mod-changed' : undefined)}
      rowData={r => ({ path: r.path })}
    />
  );

  it('names each row in its first cell and keeps short cells on one line', () => {
    const { container } = render(table);
    const headers = [...container.querySelectorAll('th[scope="row"]')];
    expect(headers.map(h => h.textContent)).toEqual(['data/train.csv', XSS]);
    const hashes = [...container.querySelectorAll('td')];
    expect(hashes.map(td => td.textContent)).toEqual(['aaaaaaaa', 'bbbbbbbb']);
    expect(hashes.every(td => td.className === 'jp-dotnb-Cell-nowrap')).toBe(
      true
    );
    expect(hashes[0].getAttribute('title')).toBe('a'.repeat(64));
    expect(headers[0].className).toBe('jp-dotnb-Cell-wrap');
    const cols = [...container.querySelectorAll('col')];
    expect(cols.map(c => c.style.width)).toEqual(['', '5.5em']);
    expect(
      container.querySelector('tr[data-path="data/train.csv"]')?.className
    ).toBe('');
    expect(container.querySelectorAll('tr.jp-mod-changed')).toHaveLength(1);
  });

  it('renders user strings as text', () => {
    const { container } = render(table);
    expect(container.querySelector('img')).toBeNull();
    expect(container.textContent).toContain(XSS);
  });
});
