/**
 * Verification of a downloaded artifact, never trusting the hub alone: the manifest's Ed25519 signature against
 * the agent's own KF_UPDATE_PUBKEY, then that the signed manifest describes this target (kind, version, size,
 * sha256) and this terminal (type, agent version), then the artifact's sha256 computed from the file.
 */
import { createHash, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { compareSemver, isSemver } from '@kiosk-fleet/protocol';
import { verifyManifest } from '@kiosk-fleet/protocol/release-signing';
import type { Target, UpdateError } from './state.ts';

export interface VerifyContext {
  publicKeys: readonly KeyObject[];
  terminalType: string;
  agentVersion: string;
}

export async function verifyArtifact(target: Target, file: string, ctx: VerifyContext): Promise<UpdateError | null> {
  const check = verifyManifest(Buffer.from(target.manifest, 'base64'), target.signature, ctx.publicKeys);
  if (!check.ok) return { code: check.code, message: check.reason };
  const m = check.manifest;
  const mismatch = (['kind', 'version', 'size', 'sha256'] as const).find((k) => m[k] !== target[k]);
  if (mismatch) return { code: 'manifest-mismatch', message: `update/target ${mismatch} differs from the signed manifest` };
  if (!m.terminalTypes.includes(ctx.terminalType)) {
    return { code: 'wrong-terminal-type', message: `release is for ${m.terminalTypes.join(', ')}, this terminal is ${ctx.terminalType}` };
  }
  if (m.minAgentVersion && isSemver(ctx.agentVersion) && compareSemver(ctx.agentVersion, m.minAgentVersion) < 0) {
    return { code: 'agent-too-old', message: `needs agent ${m.minAgentVersion}, this is ${ctx.agentVersion}` };
  }
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (!st || st.size !== m.size) return { code: 'size-mismatch', message: `artifact is ${st?.size ?? 0} bytes, signed ${m.size}` };
  const h = createHash('sha256');
  await pipeline(fs.createReadStream(file), h);
  const digest = h.digest('hex');
  if (digest !== m.sha256) return { code: 'sha256-mismatch', message: `artifact sha256 ${digest} differs from the signed ${m.sha256}` };
  return null;
}
