/**
 * MQTT topics: built and parsed here and nowhere else.
 *
 * Every topic is `kf/v1/t/{terminalId}/{kind}`. The `v1` is the topic-tree version; payloads carry their own
 * schema version (`v`). Everything here works with MQTT 3.1.1 (the hub embeds Aedes 1.x, which speaks 3.1/3.1.1).
 */
import { isTerminalId } from './ids.ts';

export const TOPIC_ROOT = 'kf/v1/t';

export type Direction = 'up' | 'down'; // up: terminal → hub, down: hub → terminal

export interface TopicSpec {
  readonly direction: Direction;
  readonly qos: 1;
  readonly retain: boolean;
  /** Up streams that must not be lost carry `seq` + `epoch` (see the design's "Sequence numbers"). */
  readonly sequenced: boolean;
}

export const TOPICS = {
  presence: { direction: 'up', qos: 1, retain: true, sequenced: false },
  telemetry: { direction: 'up', qos: 1, retain: false, sequenced: true },
  events: { direction: 'up', qos: 1, retain: false, sequenced: true },
  'config/desired': { direction: 'down', qos: 1, retain: true, sequenced: false },
  'config/reported': { direction: 'up', qos: 1, retain: false, sequenced: true },
  commands: { direction: 'down', qos: 1, retain: false, sequenced: false },
  'commands/result': { direction: 'up', qos: 1, retain: false, sequenced: true },
  'update/target': { direction: 'down', qos: 1, retain: true, sequenced: false },
  'update/status': { direction: 'up', qos: 1, retain: false, sequenced: true },
} as const satisfies Record<string, TopicSpec>;

export type TopicKind = keyof typeof TOPICS;
export const TOPIC_KINDS = Object.keys(TOPICS) as TopicKind[];
export const UP_KINDS = TOPIC_KINDS.filter((k) => TOPICS[k].direction === 'up');
export const DOWN_KINDS = TOPIC_KINDS.filter((k) => TOPICS[k].direction === 'down');
/** The streams with their own seq counter: telemetry, events, config/reported, commands/result, update/status. */
export const STREAM_KINDS = TOPIC_KINDS.filter((k) => TOPICS[k].sequenced);
export type StreamKind = 'telemetry' | 'events' | 'config/reported' | 'commands/result' | 'update/status';

export function isTopicKind(s: string): s is TopicKind {
  return Object.hasOwn(TOPICS, s);
}

/** The topic of `kind` for a terminal. Throws on an id that could not be parsed back. */
export function topicFor(terminalId: string, kind: TopicKind): string {
  if (!isTerminalId(terminalId)) throw new Error(`invalid terminal id: ${JSON.stringify(terminalId)}`);
  return `${TOPIC_ROOT}/${terminalId}/${kind}`;
}

export interface ParsedTopic {
  terminalId: string;
  kind: TopicKind;
}

const ROOT_PREFIX = `${TOPIC_ROOT}/`;

/** The one parser: the terminal and kind of a topic, or null for anything that is not exactly one of ours. */
export function parseTopic(topic: string): ParsedTopic | null {
  if (!topic.startsWith(ROOT_PREFIX)) return null;
  const rest = topic.slice(ROOT_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash <= 0) return null;
  const terminalId = rest.slice(0, slash);
  const kind = rest.slice(slash + 1);
  if (!isTerminalId(terminalId) || !isTopicKind(kind)) return null;
  return { terminalId, kind };
}

/** What a terminal subscribes to: its own hub → terminal topics. */
export function downTopics(terminalId: string): string[] {
  return DOWN_KINDS.map((k) => topicFor(terminalId, k));
}

/** What the hub subscribes to (or matches) for all terminals' terminal → hub messages. */
export const ALL_UP_FILTER = `${TOPIC_ROOT}/+/#`;
