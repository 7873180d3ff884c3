import { describe, expect, it } from 'vitest';
import { isTerminalId, isUnderNode, nodeLevel, nodePath, parentNodeId } from './ids.ts';

describe('hierarchy ids', () => {
  it('derives level, parent and path from the id', () => {
    expect(nodeLevel('GZ')).toBe('city');
    expect(nodeLevel('GZ-YX')).toBe('district');
    expect(nodeLevel('GZ-YX-001')).toBe('station');
    expect(nodeLevel('GZ-YX-HALL')).toBe('station');
    expect(nodeLevel('GZ-YX-001-01')).toBeNull();
    expect(nodeLevel('GZ/YX')).toBeNull();
    expect(parentNodeId('GZ-YX-001')).toBe('GZ-YX');
    expect(parentNodeId('GZ-YX')).toBe('GZ');
    expect(parentNodeId('GZ')).toBeNull();
    expect(nodePath('GZ-YX-001')).toEqual(['GZ', 'GZ-YX', 'GZ-YX-001']);
  });

  it('tells descendants by segment, not by prefix', () => {
    expect(isUnderNode('GZ-YX-001', 'GZ-YX')).toBe(true);
    expect(isUnderNode('GZ-YX', 'GZ-YX')).toBe(true);
    expect(isUnderNode('GZ-YXB-001', 'GZ-YX')).toBe(false);
  });

  it('accepts terminal ids of the reference fleet and refuses topic characters', () => {
    expect(isTerminalId('GZ-YX-001-01')).toBe(true);
    for (const bad of ['a/b', 'a+b', 'a#b', 'a\u0000b', '', '-a', 'x'.repeat(65)]) expect(isTerminalId(bad)).toBe(false);
  });
});
