/**
 * A terminal whose connection flaps (presence flags it after too many transitions in its window, see
 * presence/service.ts): one alert instead of a stream of offline/online.
 */
import { terminalCondition, type Condition, type Snapshot } from './types.ts';

export function flappingRule(s: Snapshot): Condition[] {
  return s.terminals
    .filter((t) => t.flapping)
    .map((t) => terminalCondition(t, 'flapping', 'minor', { presence: t.presence, reason: t.presenceReason }));
}
