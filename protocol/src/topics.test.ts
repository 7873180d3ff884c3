import { describe, expect, it } from 'vitest';
import { downTopics, parseTopic, TOPIC_KINDS, topicFor, TOPICS, UP_KINDS } from './topics.ts';

describe('topics', () => {
  it.each(TOPIC_KINDS)('round-trips %s', (kind) => {
    const topic = topicFor('GZ-YX-001-01', kind);
    expect(topic).toBe(`kf/v1/t/GZ-YX-001-01/${kind}`);
    expect(parseTopic(topic)).toEqual({ terminalId: 'GZ-YX-001-01', kind });
  });

  it('accepts a 64-character id and refuses 65', () => {
    const ok = 'a'.repeat(64);
    expect(parseTopic(`kf/v1/t/${ok}/telemetry`)).toEqual({ terminalId: ok, kind: 'telemetry' });
    expect(parseTopic(`kf/v1/t/${ok}a/telemetry`)).toBeNull();
    expect(() => topicFor(`${ok}a`, 'telemetry')).toThrow(/invalid terminal id/);
  });

  it.each([
    ['slash', 'kf/v1/t/GZ/YX/telemetry'],
    ['plus', 'kf/v1/t/+/telemetry'],
    ['hash', 'kf/v1/t/#'],
    ['hash in id', 'kf/v1/t/a#b/telemetry'],
    ['plus in id', 'kf/v1/t/a+b/telemetry'],
    ['NUL', 'kf/v1/t/a\u0000b/telemetry'],
    ['empty id', 'kf/v1/t//telemetry'],
    ['no kind', 'kf/v1/t/GZ-YX-001-01'],
    ['no kind, trailing slash', 'kf/v1/t/GZ-YX-001-01/'],
    ['unknown kind', 'kf/v1/t/GZ-YX-001-01/shell'],
    ['extra level', 'kf/v1/t/GZ-YX-001-01/telemetry/x'],
    ['other version', 'kf/v2/t/GZ-YX-001-01/telemetry'],
    ['other root', 'x/v1/t/GZ-YX-001-01/telemetry'],
    ['leading slash', '/kf/v1/t/GZ-YX-001-01/telemetry'],
    ['space', 'kf/v1/t/GZ YX/telemetry'],
    ['prototype key', 'kf/v1/t/GZ/__proto__'],
  ])('rejects %s', (_name, topic) => {
    expect(parseTopic(topic)).toBeNull();
  });

  it.each(['a/b', '+', '#', 'a\u0000', '', 'x'.repeat(65)])('topicFor refuses id %j', (id) => {
    expect(() => topicFor(id, 'presence')).toThrow();
  });

  it('gives a terminal exactly its own hub → terminal topics', () => {
    expect(downTopics('T1')).toEqual(['kf/v1/t/T1/config/desired', 'kf/v1/t/T1/commands', 'kf/v1/t/T1/update/target']);
    for (const kind of UP_KINDS) expect(TOPICS[kind].direction).toBe('up');
  });
});
