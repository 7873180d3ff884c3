/**
 * `kiosk-fleet release keygen --out <dir>` and `kiosk-fleet release pack --dir <bundle> --version <semver>
 * --type <types,comma> --kind app|agent --key <private key> --out <dir> [--min-agent <semver>]`.
 * Returns the exit code; prints results to stdout and problems to stderr.
 */
import { parseArgs } from 'node:util';
import { TERMINAL_TYPE_IDS, isSemver, isTerminalType } from '@kiosk-fleet/protocol';
import { writeKeyPair } from './keys.ts';
import { packRelease } from './pack.ts';

const USAGE = `usage:
  kiosk-fleet release keygen --out <dir>
  kiosk-fleet release pack --dir <bundle> --version <semver> --type <types,comma> --kind app|agent
                           --key <private key pem> --out <dir> [--min-agent <semver>]
terminal types: ${TERMINAL_TYPE_IDS.join(', ')}
`;

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

const defaultIo: CliIo = { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) };

export async function releaseCommand(argv: string[], io: CliIo = defaultIo): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === 'keygen') {
      const { values } = parseArgs({ args: rest, options: { out: { type: 'string' } }, strict: true });
      if (!values.out) throw new UsageError('--out is required');
      const r = writeKeyPair(values.out);
      io.stdout(`${JSON.stringify({ privateKey: r.privateKeyPath, publicKey: r.publicKeyPath })}\n`);
      io.stderr(`Keep ${r.privateKeyPath} offline; put ${r.publicKeyPath} in the hub's KF_RELEASE_KEYS and the agents' KF_UPDATE_PUBKEY.\n`);
      return 0;
    }
    if (sub === 'pack') {
      const { values } = parseArgs({
        args: rest,
        options: {
          dir: { type: 'string' },
          version: { type: 'string' },
          type: { type: 'string' },
          kind: { type: 'string', default: 'app' },
          key: { type: 'string' },
          out: { type: 'string' },
          'min-agent': { type: 'string' },
        },
        strict: true,
      });
      for (const k of ['dir', 'version', 'type', 'key', 'out'] as const) if (!values[k]) throw new UsageError(`--${k} is required`);
      if (!isSemver(values.version!)) throw new UsageError(`--version ${values.version}: not semver (e.g. 3.3.0)`);
      if (values['min-agent'] !== undefined && !isSemver(values['min-agent'])) throw new UsageError(`--min-agent: not semver`);
      if (values.kind !== 'app' && values.kind !== 'agent') throw new UsageError(`--kind ${values.kind}: app or agent`);
      const types = values.type!.split(',').map((s) => s.trim()).filter(Boolean);
      const unknown = types.filter((t) => !isTerminalType(t));
      if (types.length === 0 || unknown.length > 0) throw new UsageError(`--type: unknown terminal type ${unknown.join(', ') || '(none)'}`);
      const r = await packRelease({
        dir: values.dir!,
        version: values.version!,
        kind: values.kind,
        terminalTypes: types,
        minAgentVersion: values['min-agent'],
        keyPath: values.key!,
        outDir: values.out!,
      });
      io.stdout(`${JSON.stringify({ id: r.id, artifact: r.artifactPath, manifest: r.manifestPath, signature: r.signaturePath, size: r.manifest.size, sha256: r.manifest.sha256 })}\n`);
      return 0;
    }
    throw new UsageError(sub ? `unknown release command ${sub}` : 'missing release command');
  } catch (err) {
    io.stderr(`release ${sub ?? ''}: ${(err as Error).message}\n`);
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr(USAGE);
      return 2;
    }
    return 1;
  }
}

class UsageError extends Error {}
