import { describe, expect, it } from 'vitest';
import { parseSseBlock } from './live.ts';

describe('parseSseBlock', () => {
  it('reads the hub’s change events', () => {
    expect(parseSseBlock('event: change\ndata: {"type":"presence","terminalId":"T1"}')).toEqual({
      event: 'change',
      data: '{"type":"presence","terminalId":"T1"}',
    });
  });

  it('joins multi-line data, ignores comments and unknown fields, and CRLF line ends', () => {
    expect(parseSseBlock(': keep-alive\r\nid: 7\r\nevent: change\r\ndata: a\r\ndata: b')).toEqual({ event: 'change', data: 'a\nb' });
  });

  it('gives nothing for a comment-only block', () => {
    expect(parseSseBlock(': ping')).toBeNull();
  });
});
