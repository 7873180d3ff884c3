/**
 * The updater as the agent wires it: keys from KF_UPDATE_PUBKEY, install roots under the agent's data dir, and
 * hooks over what the agent core knows (session lock, app heartbeat, hub connection, pushed config).
 *
 *   const updater = createAgentUpdater({ dataDir, updatePubkey: config.updatePubkey, terminalType, agentVersion,
 *     logger, view: agentView, restartApp, exitForRestart, onStatus: (s) => append('update/status', s) });
 *   updater.resume(); void updater.run(signal);        // at start
 *   updater.setTarget(parsed)                           // on update/target
 *   updater.nudge()                                     // on session end, config applied, reconnect
 */
import fs from 'node:fs';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { Logger } from 'pino';
import type { TerminalConfig } from '@kiosk-fleet/protocol';
import { publicKeyFromPem } from '@kiosk-fleet/protocol/release-signing';
import { isInWindow } from './maintenance-window.ts';
import { Updater, type StatusReport, type UpdaterTiming } from './updater.ts';

export { Updater, type StatusReport, type UpdaterHooks, type UpdaterOptions } from './updater.ts';
export { isInWindow } from './maintenance-window.ts';

/**
 * KF_UPDATE_PUBKEY: comma-separated items, each a path to a PEM file or a PEM string (an item containing
 * `-----BEGIN`; a literal `\n` counts as a line break). Several keys allow rotation. Throws naming the item.
 */
export function loadUpdateKeys(spec: string | undefined, baseDir = process.cwd()): KeyObject[] {
  if (!spec?.trim()) return [];
  return spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((item, i) => {
      let pem = item.replaceAll('\\n', '\n');
      if (!item.includes('-----BEGIN')) {
        try {
          pem = fs.readFileSync(path.resolve(baseDir, item), 'utf8');
        } catch (err) {
          throw new Error(`KF_UPDATE_PUBKEY item ${i + 1}: cannot read ${item}: ${(err as Error).message}`);
        }
      }
      if (pem.includes('PRIVATE KEY')) throw new Error(`KF_UPDATE_PUBKEY item ${i + 1}: a private key; give the agent only the public key`);
      try {
        return publicKeyFromPem(pem);
      } catch (err) {
        throw new Error(`KF_UPDATE_PUBKEY item ${i + 1}: not an Ed25519 public key (${(err as Error).message})`);
      }
    });
}

/** What the updater reads from the agent core. */
export interface AgentView {
  sessionActive: boolean;
  /** Connected to the hub right now (the agent's own health after a self-update). */
  hubConnected: boolean;
  /** Time of the kiosk app's last heartbeat (ms), 0 if none. */
  lastAppHeartbeat: number;
  /** The applied pushed config, if any. */
  config: TerminalConfig | null;
}

export interface AgentUpdaterOptions {
  dataDir: string;
  updatePubkey: string | undefined;
  terminalType: string;
  agentVersion: string;
  /** The bureau's time zone for maintenance windows (default Asia/Shanghai). */
  timeZone?: string;
  logger: Logger;
  view: () => AgentView;
  /** Restart the kiosk app (the app supervisor or restartAppCommand). */
  restartApp: () => Promise<void>;
  /** Flush and exit so the service manager starts the agent again from `current` (never returns). */
  exitForRestart: () => Promise<never>;
  onStatus: (s: StatusReport) => void;
  timing?: Partial<UpdaterTiming>;
  now?: () => Date;
}

export function createAgentUpdater(o: AgentUpdaterOptions): Updater {
  const keys = loadUpdateKeys(o.updatePubkey);
  if (keys.length === 0) o.logger.warn('KF_UPDATE_PUBKEY is not set: every release will be refused (bad-signature)');
  const now = o.now ?? (() => new Date());
  const tz = o.timeZone ?? 'Asia/Shanghai';
  let restartedAt = 0;
  return new Updater({
    stateFile: path.join(o.dataDir, 'update-state.json'),
    roots: { app: path.join(o.dataDir, 'app'), agent: path.join(o.dataDir, 'agent') },
    publicKeys: keys,
    terminalType: o.terminalType,
    agentVersion: o.agentVersion,
    logger: o.logger,
    onStatus: o.onStatus,
    ...(o.timing ? { timing: o.timing } : {}),
    now,
    policy: () => {
      const p = o.view().config?.updatePolicy;
      return { windowOnly: p?.windowOnly ?? true, healthCheckSeconds: p?.healthCheckSeconds ?? 120 };
    },
    hooks: {
      restart: async (kind) => {
        if (kind === 'agent') await o.exitForRestart();
        restartedAt = now().getTime();
        await o.restartApp();
      },
      // The app is healthy once it sent a heartbeat after its restart; the agent once it is back on the hub.
      healthCheck: async ({ kind }) => (kind === 'agent' ? o.view().hubConnected : o.view().lastAppHeartbeat > restartedAt),
      isSessionOpen: () => o.view().sessionActive,
      // No window configured: installs are not held back (an operator who wants windows sets one).
      isInMaintenanceWindow: (at) => {
        const w = o.view().config?.maintenanceWindow;
        return w === undefined ? true : isInWindow(w, at, tz);
      },
    },
  });
}
