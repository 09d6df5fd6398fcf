/**
 * The lineage view: which nodes show (folding, collapsing), their marks, the
 * dagre layout, and the view's rendering (text only, actions on click).
 */

import { nullTranslator } from '@jupyterlab/translation';
import { act, fireEvent, render } from '@testing-library/react';
import * as React from 'react';
import { describe, expect, it, vi } from 'vitest';

import {
  ILineageServices,
  LineageView,
  storedRef
} from '../src/components/LineageView';
import {
  FOLD_AFTER,
  layoutLineage,
  primaryPath,
  shorten,
  visibleGraph
} from '../src/lineageGraph';
import { ILineage, ILineageNode } from '../src/types';
import { settle } from './fakes';
import { XSS } from './fixtures';

const trans = nullTranslator.load('dotnb');
const none = { collapsed: new Set<string>(), expanded: new Set<string>() };

function run(id: string, extra: Partial<ILineageNode> = {}): ILineageNode {
  return {
    id: `run:${id}`,
    type: 'run',
    run: id,
    truncated: false,
    notebook: 'train.ipynb',
    number: 1,
    status: 'ok',
    ...extra
  };
}

function content(
  hash: string,
  path: string,
  extra: Partial<ILineageNode> = {}
): ILineageNode {
  return {
    id: `content:${hash}`,
    type: 'content',
    hash,
    paths: [path],
    disk: { [path]: 'same' },
    stale: false,
    source: false,
    truncated: false,
    ...extra
  };
}

/** raw → prepare → clean → train → model (the root), plus `extra` inputs of train. */
function pipeline(extraInputs = 0): ILineage {
  const nodes: ILineageNode[] = [
    content('raw', 'raw/data.csv', { source: true }),
    run('prepare', { number: 1, notebook: 'prepare.ipynb' }),
    content('clean', 'work/clean.csv'),
    run('train', { number: 2 }),
    content('model', 'models/model.pkl')
  ];
  const edges: ILineage['edges'] = [
    { from: 'content:raw', to: 'run:prepare', relation: 'used' },
    { from: 'run:prepare', to: 'content:clean', relation: 'wasGeneratedBy' },
    { from: 'content:clean', to: 'run:train', relation: 'used' },
    { from: 'run:train', to: 'content:model', relation: 'wasGeneratedBy' }
  ];
  for (let i = 0; i < extraInputs; i++) {
    const hash = `in${String(i).padStart(3, '0')}`;
    nodes.push(content(hash, `images/${hash}.png`, { source: true }));
    edges.push({ from: `content:${hash}`, to: 'run:train', relation: 'used' });
  }
  return {
    root: 'content:model',
    direction: 'upstream',
    depth: null,
    nodes,
    edges
  };
}

describe('the graph shown', () => {
  it('marks the root, sources and stale bytes', () => {
    const lineage = pipeline();
    lineage.nodes[2] = content('clean', 'work/clean.csv', {
      disk: { 'work/clean.csv': 'changed' },
      stale: true
    });
    const { nodes } = visibleGraph(lineage, none);
    const byId = new Map(nodes.map(n => [n.id, n]));
    expect(byId.get('content:model')!.marks).toContain('root');
    expect(byId.get('content:raw')!.marks).toContain('source');
    expect(byId.get('content:clean')!.marks).toContain('stale');
    expect(byId.get('run:train')!.title).toBe('run #2');
  });

  it("folds a run's many leaf inputs into one node, and unfolds it on request", () => {
    const lineage = pipeline(40);
    const folded = visibleGraph(lineage, none);
    const group = folded.nodes.find(n => n.kind === 'group')!;
    // FOLD_AFTER leaves: FOLD_AFTER - 1 shown, the rest (and the clean file is no leaf) folded.
    expect(group.members).toHaveLength(40 - (FOLD_AFTER - 1));
    expect(group.title).toBe(`${40 - (FOLD_AFTER - 1)} more input files`);
    expect(folded.nodes).toHaveLength(5 + FOLD_AFTER - 1 + 1);
    expect(
      folded.edges.filter(e => e.from === group.id && e.to === 'run:train')
    ).toHaveLength(1);
    const open = visibleGraph(lineage, {
      collapsed: new Set(),
      expanded: new Set([group.id])
    });
    expect(open.nodes).toHaveLength(45);
    expect(open.nodes.some(n => n.kind === 'group')).toBe(false);
  });

  it('hides what lies beyond a collapsed node and counts it', () => {
    const { nodes, edges } = visibleGraph(pipeline(), {
      collapsed: new Set(['run:train']),
      expanded: new Set()
    });
    expect(nodes.map(n => n.id).sort()).toEqual(['content:model', 'run:train']);
    expect(nodes.find(n => n.id === 'run:train')!.hidden).toBe(3);
    expect(edges).toEqual([
      { from: 'run:train', to: 'content:model', relation: 'wasGeneratedBy' }
    ]);
  });

  it('lays data out left to right, without overlaps', () => {
    const drawn = layoutLineage(pipeline(3), none);
    const x = (id: string) => drawn.nodes.find(n => n.id === id)!.x;
    expect(x('content:raw')).toBeLessThan(x('run:prepare'));
    expect(x('run:prepare')).toBeLessThan(x('content:clean'));
    expect(x('run:train')).toBeLessThan(x('content:model'));
    for (const a of drawn.nodes) {
      for (const b of drawn.nodes) {
        if (a !== b) {
          const apart =
            Math.abs(a.x - b.x) >= (a.width + b.width) / 2 ||
            Math.abs(a.y - b.y) >= (a.height + b.height) / 2;
          expect(apart).toBe(true);
        }
      }
    }
    expect(drawn.edges.every(e => e.points.length >= 2)).toBe(true);
    expect(drawn.width).toBeGreaterThan(4 * 200);
  });

  it('lays out 200 nodes', () => {
    const drawn = layoutLineage(pipeline(195), {
      collapsed: new Set(),
      expanded: new Set(['group:in:run:train'])
    });
    expect(drawn.nodes).toHaveLength(200);
    expect(drawn.nodes.every(n => Number.isFinite(n.x + n.y))).toBe(true);
  });

  it('cuts long labels in the middle and prefers a path that holds the bytes', () => {
    expect(shorten('a'.repeat(20) + '/' + 'b'.repeat(20), 11)).toBe(
      'aaaaa…bbbbb'
    );
    const node = content('h', 'old.csv', {
      paths: ['old.csv', 'new.csv'],
      disk: { 'old.csv': 'missing', 'new.csv': 'same' }
    });
    expect(primaryPath(node)).toBe('new.csv');
  });

  it('finds the stored bytes through the run that wrote them, else one that read them', () => {
    const lineage = pipeline();
    expect(storedRef(lineage, lineage.nodes[2])).toEqual({
      run: 'prepare',
      path: 'work/clean.csv',
      role: 'output'
    });
    expect(storedRef(lineage, lineage.nodes[0])).toEqual({
      run: 'prepare',
      path: 'raw/data.csv',
      role: 'input'
    });
  });
});

function services(lineage: ILineage): ILineageServices & {
  calls: string[];
} {
  const calls: string[] = [];
  return {
    calls,
    lineage: vi.fn(async (_target, direction) => {
      calls.push(`lineage ${direction}`);
      return lineage;
    }),
    openRun: id => calls.push(`run ${id}`),
    openPath: path => calls.push(`open ${path}`),
    storedUrl: (r, p, role) => `/stored?run=${r}&path=${p}&role=${role}`,
    openLineage: target => calls.push(`lineage of ${JSON.stringify(target)}`)
  };
}

describe('the lineage view', () => {
  it('draws every node as text, and opens runs and files from the details', async () => {
    const lineage = pipeline();
    lineage.nodes[3] = run('train', { number: 2, name: XSS, notebook: XSS });
    lineage.nodes[0] = content('raw', `raw/${XSS}`, { source: true });
    const fake = services(lineage);
    const { container } = render(
      <LineageView
        target={{ path: 'models/model.pkl' }}
        services={fake}
        trans={trans}
      />
    );
    await act(settle);
    expect(fake.calls[0]).toBe('lineage upstream');
    expect(
      container.querySelectorAll('.jp-dotnb-DataLineageNode')
    ).toHaveLength(5);
    expect(container.querySelector('img')).toBeNull();
    expect(container.textContent).toContain(XSS.slice(0, 10));
    expect(container.textContent).toContain('2 runs, 3 files');

    const train = container.querySelector('[data-node="run:train"]')!;
    fireEvent.click(train);
    const details = container.querySelector('.jp-dotnb-DataLineageDetails')!;
    expect(details.textContent).toContain(XSS); // untruncated, as text
    expect(container.querySelector('img')).toBeNull();
    fireEvent.click(
      [...details.querySelectorAll('button')].find(
        b => b.textContent === 'Open run'
      )!
    );
    expect(fake.calls).toContain('run train');

    fireEvent.doubleClick(
      container.querySelector('[data-node="content:clean"]')!
    );
    expect(fake.calls).toContain('open work/clean.csv');

    fireEvent.click(container.querySelector('[data-node="content:clean"]')!);
    const link = container.querySelector<HTMLAnchorElement>(
      '.jp-dotnb-DataLineageStored'
    )!;
    expect(link.getAttribute('href')).toBe(
      '/stored?run=prepare&path=work/clean.csv&role=output'
    );
  });

  it('collapses a node from its details and asks again in the other direction', async () => {
    const fake = services(pipeline());
    const { container } = render(
      <LineageView target={{ run: 'train' }} services={fake} trans={trans} />
    );
    await act(settle);
    expect(fake.calls[0]).toBe('lineage both');
    fireEvent.click(container.querySelector('[data-node="content:clean"]')!);
    fireEvent.click(
      [
        ...container.querySelectorAll('.jp-dotnb-DataLineageDetails button')
      ].find(b => b.textContent === 'Collapse what lies beyond')!
    );
    expect(
      container.querySelectorAll('.jp-dotnb-DataLineageNode')
    ).toHaveLength(3);
    expect(container.querySelector('.jp-mod-collapsed')?.textContent).toContain(
      '+2'
    );
    const select = container.querySelector<HTMLSelectElement>(
      '.jp-dotnb-DataLineageDirection'
    )!;
    fireEvent.change(select, { target: { value: 'downstream' } });
    await act(settle);
    expect(fake.calls).toContain('lineage downstream');
  });

  it('shows a server error as text', async () => {
    const fake = services(pipeline());
    fake.lineage = async () => {
      throw new Error(`no such file ${XSS}`);
    };
    const { container } = render(
      <LineageView
        target={{ path: 'gone.csv' }}
        services={fake}
        trans={trans}
      />
    );
    await act(settle);
    expect(container.querySelector('[role="alert"]')?.textContent).toBe(
      `no such file ${XSS}`
    );
    expect(container.querySelector('img')).toBeNull();
  });
});
