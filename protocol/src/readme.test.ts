import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EXAMPLES } from './examples.ts';
import { TOPIC_KINDS } from './topics.ts';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');

describe('protocol/README.md', () => {
  it.each(TOPIC_KINDS)('documents %s with exactly the example the tests check', (kind) => {
    expect(readme).toContain(`### \`${kind}\``);
    expect(readme).toContain(JSON.stringify(EXAMPLES[kind], null, 2));
  });
});
