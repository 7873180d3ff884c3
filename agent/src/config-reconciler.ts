/**
 * Applies the hub's pushed config (`config/desired`) to the running agent.
 *
 * Invariants:
 * 1. Only a version higher than the last one decided (applied or rejected) is considered; the retained desired
 *    config that arrives again after every reconnect is therefore a no-op.
 * 2. One apply runs at a time; desired configs arriving meanwhile merge into one: only the newest waits.
 * 3. A config is validated completely before anything changes; a rejected config changes nothing.
 * 4. The applied config is written atomically (temp + fsync + rename) before it is reported `applied`, so after a
 *    restart or power loss the agent runs what it last told the hub it runs.
 * 5. Each decided version is reported once on `config/reported` (applied, or rejected with the reason).
 * 6. Operational settings (interval, log level, peripheral drivers, opening hours, maintenance window, update
 *    policy) come from the applied config; what it leaves unset keeps the local default (env/file), which is also
 *    what runs before any config arrived. `operationalSettings` is the one place that rule is written.
 *
 * The agent applies telemetryInterval, logLevel and peripherals itself; the windows and the update policy are
 * resolved here and read by whoever needs them (updater, simulator) through `Agent.operational`.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { configDesiredSchema, stripPrograms, type ConfigDesired, type PeripheralId, type TerminalConfig } from '@kiosk-fleet/protocol';
import { driverProblem } from './config.ts';
import { writeFileAtomic } from './fs-atomic.ts';
import type { Logger } from './log.ts';

type DriverSetting = NonNullable<NonNullable<TerminalConfig['peripherals']>[PeripheralId]>;
type Weekly = NonNullable<TerminalConfig['maintenanceWindow']>;

/** The local defaults (env/file) of the operational settings. */
export interface OperationalDefaults {
  telemetryInterval: number;
  logLevel: string;
  peripherals: Partial<Record<PeripheralId, DriverSetting>>;
  openingHours?: Weekly | undefined;
  maintenanceWindow?: Weekly | undefined;
  updatePolicy?: { windowOnly?: boolean | undefined; healthCheckSeconds?: number | undefined } | undefined;
}

/** What runs: each setting from the applied config when it sets it, else the local default. */
export interface OperationalSettings {
  telemetryInterval: number;
  logLevel: string;
  /** Per peripheral, the pushed driver settings replace the local ones for that peripheral. */
  peripherals: Partial<Record<PeripheralId, DriverSetting>>;
  /** null: no schedule known (always open / no window). */
  openingHours: Weekly | null;
  maintenanceWindow: Weekly | null;
  updatePolicy: { windowOnly?: boolean | undefined; healthCheckSeconds?: number | undefined };
}

/** The precedence rule (invariant 6): pushed config over local defaults, key by key. */
export function operationalSettings(config: TerminalConfig | null, d: OperationalDefaults): OperationalSettings {
  return {
    telemetryInterval: config?.telemetryInterval ?? d.telemetryInterval,
    logLevel: config?.logLevel ?? d.logLevel,
    peripherals: { ...d.peripherals, ...(config?.peripherals ?? {}) },
    openingHours: config?.openingHours ?? d.openingHours ?? null,
    maintenanceWindow: config?.maintenanceWindow ?? d.maintenanceWindow ?? null,
    updatePolicy: { ...d.updatePolicy, ...config?.updatePolicy },
  };
}

export interface DecidedConfig {
  /** The applied config, if any. */
  applied: { version: number; config: TerminalConfig } | null;
  /** The highest version decided (applied or rejected). */
  decidedVersion: number;
}

export interface ConfigStore {
  load(): DecidedConfig | null;
  save(d: DecidedConfig): void;
}

export class FileConfigStore implements ConfigStore {
  readonly file: string;
  constructor(
    dataDir: string,
    private readonly logger?: Logger,
  ) {
    mkdirSync(dataDir, { recursive: true });
    this.file = path.join(dataDir, 'config-applied.json');
  }
  load(): DecidedConfig | null {
    let raw: string;
    try {
      raw = readFileSync(this.file, 'utf8');
    } catch {
      return null;
    }
    const parsed = JSON.parse(raw) as { applied?: { config?: unknown }; decidedVersion?: unknown };
    // applied before issue 20 with argv in it: keep the rest of that config, run no program (the hub pushes the same
    // config without the argv on its next start)
    const stripped = stripPrograms(parsed.applied?.config);
    if (stripped.removed.length > 0) this.logger?.warn({ removed: stripped.removed }, 'stored config carried programs; they were dropped and will not run');
    const applied = parsed.applied ? configDesiredSchema.safeParse({ v: 1, ...parsed.applied, config: stripped.config }) : null;
    return {
      applied: applied?.success ? { version: applied.data.version, config: applied.data.config } : null,
      decidedVersion: typeof parsed.decidedVersion === 'number' ? parsed.decidedVersion : 0,
    };
  }
  save(d: DecidedConfig): void {
    writeFileAtomic(this.file, JSON.stringify(d));
  }
}

export class MemoryConfigStore implements ConfigStore {
  #d: DecidedConfig | null = null;
  load(): DecidedConfig | null {
    return this.#d;
  }
  save(d: DecidedConfig): void {
    this.#d = structuredClone(d);
  }
}

export interface ReconcilerTarget {
  /** What this terminal cannot run in `config` (a probe its catalog lacks), or null. Runs before anything changes. */
  check?(config: TerminalConfig): string | null;
  /** Make the running agent use `config` (null: back to local defaults). Throws if it cannot. */
  apply(config: TerminalConfig | null): void | Promise<void>;
  report(version: number, status: 'applied' | 'rejected', reason?: string): void;
}

export class ConfigReconciler {
  #state: DecidedConfig;
  #waiting: ConfigDesired | null = null;
  #running = false;
  #idle: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: ConfigStore,
    private readonly target: ReconcilerTarget,
    private readonly logger: Logger,
  ) {
    let loaded: DecidedConfig | null = null;
    try {
      loaded = store.load();
    } catch (err) {
      logger.warn({ err }, 'stored config unreadable; starting from local defaults');
    }
    this.#state = loaded ?? { applied: null, decidedVersion: 0 };
  }

  get applied(): DecidedConfig['applied'] {
    return this.#state.applied;
  }

  /** A new desired config from the hub (already schema-checked at the boundary). */
  offer(desired: ConfigDesired): Promise<void> {
    this.logger.debug({ version: desired.version, decided: this.#state.decidedVersion }, 'desired config received');
    if (desired.version <= this.#state.decidedVersion) return this.#idle;
    if (!this.#waiting || desired.version > this.#waiting.version) this.#waiting = desired;
    if (!this.#running) this.#idle = this.#run();
    return this.#idle;
  }

  /** A desired config that failed its schema but names a version: rejected with the reason, once. */
  refuse(version: number, reason: string): void {
    if (version <= this.#state.decidedVersion) return;
    this.#state = { ...this.#state, decidedVersion: version };
    this.#persist();
    this.logger.warn({ version, reason: reason.slice(0, 500) }, 'config rejected');
    this.target.report(version, 'rejected', reason.slice(0, 500));
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      while (this.#waiting) {
        const desired = this.#waiting;
        this.#waiting = null;
        if (desired.version <= this.#state.decidedVersion) continue;
        await this.#decide(desired);
      }
    } finally {
      this.#running = false;
    }
  }

  async #decide(desired: ConfigDesired): Promise<void> {
    const problem = validate(desired.config) ?? this.target.check?.(desired.config) ?? null;
    if (problem) {
      this.#state = { ...this.#state, decidedVersion: desired.version };
      this.#persist();
      this.logger.warn({ version: desired.version, reason: problem }, 'config rejected');
      this.target.report(desired.version, 'rejected', problem);
      return;
    }
    try {
      await this.target.apply(desired.config);
    } catch (err) {
      const reason = `apply failed: ${(err as Error).message}`.slice(0, 500);
      // put back what ran before, so that a half-applied config does not linger
      await Promise.resolve(this.target.apply(this.#state.applied?.config ?? null)).catch(() => undefined);
      this.#state = { ...this.#state, decidedVersion: desired.version };
      this.#persist();
      this.logger.warn({ version: desired.version, reason }, 'config rejected');
      this.target.report(desired.version, 'rejected', reason);
      return;
    }
    this.#state = { applied: { version: desired.version, config: desired.config }, decidedVersion: desired.version };
    this.#persist();
    this.logger.info({ version: desired.version }, 'config applied');
    this.target.report(desired.version, 'applied');
  }

  #persist(): void {
    try {
      this.store.save(this.#state);
    } catch (err) {
      this.logger.error({ err }, 'cannot store the applied config');
    }
  }
}

/** What the schema cannot say: settings that parse but cannot run here. */
function validate(config: TerminalConfig): string | null {
  for (const [id, d] of Object.entries(config.peripherals ?? {})) {
    if (!d) continue;
    const problem = driverProblem(d);
    if (problem) return `peripherals.${id}: ${problem}`;
  }
  return null;
}
