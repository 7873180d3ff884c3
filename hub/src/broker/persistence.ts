/**
 * Aedes' in-memory persistence with retained messages found by their exact topic.
 *
 * aedes-persistence 11 answers every SUBSCRIBE by testing each retained message's topic against the subscription
 * (`retainedMessagesByPattern`): with a config layer in place every terminal has a retained `config/desired`, so each
 * terminal's subscription scanned all of them, O(N²) over a reconnect storm. A terminal only ever subscribes to its
 * own topics, without wildcards (broker.ts refuses anything else): those are looked up in a map of their own. A
 * pattern with `+` or `#` still goes through the scan.
 */
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';

const require = createRequire(import.meta.url);

interface RetainedPacket {
  topic: string;
  payload: Buffer;
  [k: string]: unknown;
}

interface MemoryPersistenceLike {
  storeRetained(packet: RetainedPacket): Promise<void>;
  createRetainedStream(pattern: string): Readable;
  createRetainedStreamCombi(patterns: string[]): Readable;
}

type MemoryPersistenceClass = new (opts?: object) => MemoryPersistenceLike;

// The package's entry point builds its own in-memory instance; its two layers are exported as files.
const MemoryPersistence = require('aedes-persistence/asyncPersistence.js') as MemoryPersistenceClass;
const { CallBackPersistence } = require('aedes-persistence/callBackPersistence.js') as {
  CallBackPersistence: new (factory: (opts: object) => MemoryPersistenceLike, opts?: object) => unknown;
};

const isExact = (pattern: string) => !pattern.includes('+') && !pattern.includes('#');

export class ExactRetainedPersistence extends MemoryPersistence {
  /** The same retained messages as the base class keeps, by topic. */
  readonly retainedByTopic = new Map<string, RetainedPacket>();

  override async storeRetained(packet: RetainedPacket): Promise<void> {
    await super.storeRetained(packet);
    if (packet.payload.length === 0) this.retainedByTopic.delete(packet.topic);
    else this.retainedByTopic.set(packet.topic, { ...packet });
  }

  override createRetainedStream(pattern: string): Readable {
    return isExact(pattern) ? this.exact([pattern]) : super.createRetainedStream(pattern);
  }

  override createRetainedStreamCombi(patterns: string[]): Readable {
    return patterns.every(isExact) ? this.exact(patterns) : super.createRetainedStreamCombi(patterns);
  }

  private exact(topics: string[]): Readable {
    const found: RetainedPacket[] = [];
    for (const t of new Set(topics)) {
      const p = this.retainedByTopic.get(t);
      if (p) found.push(p);
    }
    return Readable.from(found);
  }
}

/** The persistence to hand to `Aedes.createBroker` (the callback layer Aedes expects, over the class above). */
export function createPersistence(): unknown {
  return new CallBackPersistence((opts) => new ExactRetainedPersistence(opts));
}
