/** Every rule, in the order the queue lists them when severities tie. */
import { diskRule } from './disk.ts';
import { driftRule } from './drift.ts';
import { credentialReuseRule } from './credential-reuse.ts';
import { flappingRule } from './flapping.ts';
import { floodingRule } from './flooding.ts';
import { offlineRule } from './offline.ts';
import { peripheralRule } from './peripheral.ts';
import { stationServiceRule } from './station-service.ts';
import { temperatureRule } from './temperature.ts';
import type { Rule, RuleId, StationRule } from './types.ts';
import { updateFailedRule } from './update-failed.ts';

export const RULES: Record<RuleId, Rule> = {
  'station-service-lost': stationServiceRule,
  offline: offlineRule,
  'peripheral-fault': peripheralRule,
  'update-failed': updateFailedRule,
  'config-drift': driftRule,
  temperature: temperatureRule,
  'disk-full': diskRule,
  flapping: flappingRule,
  'terminal-flooding': floodingRule,
  'credential-reuse': credentialReuseRule,
};

/** The rules about stations: they read only what `MemberView` holds of each terminal. */
export const STATION_RULES: Partial<Record<RuleId, StationRule>> = { 'station-service-lost': stationServiceRule };

export * from './types.ts';
