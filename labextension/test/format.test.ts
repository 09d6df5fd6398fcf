import { describe, expect, it } from 'vitest';

import * as fmt from '../src/format';

describe('format', () => {
  it('says how long ago', () => {
    const now = Date.parse('2024-01-01T12:00:00Z');
    expect(fmt.timeAgo('2024-01-01T12:00:00Z', now)).toBe('just now');
    expect(fmt.timeAgo('2024-01-01T11:59:30Z', now)).toBe('30 s ago');
    expect(fmt.timeAgo('2024-01-01T11:55:00Z', now)).toBe('5 min ago');
    expect(fmt.timeAgo('2024-01-01T09:00:00Z', now)).toBe('3 h ago');
    expect(fmt.timeAgo('2023-12-29T12:00:00Z', now)).toBe('3 d ago');
    expect(fmt.timeAgo('2023-06-01T12:00:00Z', now)).toBe('2023-06-01');
    expect(fmt.timeAgo('not a date', now)).toBe('');
  });

  it('formats durations', () => {
    expect(fmt.duration(0.8123)).toBe('812 ms');
    expect(fmt.duration(4.23)).toBe('4.2 s');
    expect(fmt.duration(42.4)).toBe('42 s');
    expect(fmt.duration(185)).toBe('3 min 05 s');
    expect(fmt.duration(3720)).toBe('1 h 02 min');
    expect(fmt.duration(null)).toBe('');
  });

  it('formats sizes', () => {
    expect(fmt.bytes(12)).toBe('12 B');
    expect(fmt.bytes(1536)).toBe('1.5 KB');
    expect(fmt.bytes(20 * 1024 ** 3)).toBe('20 GB');
    expect(fmt.bytes(undefined)).toBe('');
  });

  it('formats values like Python shows them', () => {
    expect(fmt.value(3)).toBe('3');
    expect(fmt.value(0.123456)).toBe('0.1235');
    expect(fmt.value(0.00001234)).toBe('1.234e-5');
    expect(fmt.value(null)).toBe('None');
    expect(fmt.value(true)).toBe('True');
    expect(fmt.value([64, 32])).toBe('[64,32]');
    expect(fmt.value('adam')).toBe('adam');
  });

  it('computes deltas with a relative change', () => {
    expect(fmt.delta(0.5, 0.6)).toBe('+0.1 (+20.0%)');
    expect(fmt.delta(2, 1)).toBe('-1 (-50.0%)');
    expect(fmt.delta(1, 1)).toBe('±0');
    expect(fmt.delta(0, 1)).toBe('+1');
    expect(fmt.delta('a', 1)).toBe('');
  });

  it('summarises params and titles', () => {
    expect(
      fmt.keyValues({ lr: 0.1, layers: [64, 32], opt: 'adam', x: 1 }, 3)
    ).toBe('lr=0.1 · layers=[64,32] · opt=adam');
    expect(fmt.keyValues({ long: 'x'.repeat(40) }, 3, 10)).toBe(
      `long=${'x'.repeat(9)}…`
    );
    expect(fmt.runTitle({ number: 4, name: 'train' })).toBe('#4 train');
    expect(fmt.runTitle({ number: 4, name: null })).toBe('#4');
    expect(fmt.plural(1, 'input')).toBe('1 input');
    expect(fmt.plural(2, 'output')).toBe('2 outputs');
    expect(fmt.shortHash('abcdef0123456789')).toBe('abcdef01');
    expect(fmt.baseName('a/b/nb.ipynb')).toBe('nb.ipynb');
  });
});
