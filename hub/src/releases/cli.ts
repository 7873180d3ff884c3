/**
 * `kiosk-fleet release keygen --out <dir>` and `kiosk-fleet release pack --dir <bundle> --version <semver>
 * --type <types,comma> --kind app|agent --key <private key> --out <dir> [--min-agent <semver>]`.
 * Returns the exit code; prints results to stdout and problems to stderr.
 */
import { EXIT, UsageError, formatHelp, formatProgramHelp, parseCommand, progressReporter, type CommandSpec } from '@kiosk-fleet/protocol/cli';
import { TERMINAL_TYPE_IDS, isSemver, isTerminalType } from '@kiosk-fleet/protocol';
import { writeKeyPair } from './keys.ts';
import { packRelease } from './pack.ts';

const PROGRAM = 'kiosk-fleet';
const KEYGEN = {
  name: 'release keygen',
  summary: "Write a new Ed25519 key pair for signing releases: keep the private key offline; the public key goes into the hub's KF_RELEASE_KEYS and the agents' KF_UPDATE_PUBKEY.",
  synopsis: '--out <dir>',
  options: { out: { type: 'string', value: 'dir', help: 'where to write release-private.pem and release-public.pem' } },
} as const satisfies CommandSpec;
const PACK = {
  name: 'release pack',
  summary: 'Pack a bundle directory into a signed release: <kind>-<version>.tar.gz, .manifest.json and .sig in --out.',
  synopsis: '--dir <bundle> --version <semver> --type <types> --key <pem> --out <dir> [--kind app|agent] [--min-agent <semver>]',
  options: {
    dir: { type: 'string', value: 'bundle', help: 'the bundle directory to pack' },
    version: { type: 'string', value: 'semver', help: 'the release version, e.g. 3.3.0' },
    type: { type: 'string', value: 'types', help: `terminal types, comma-separated: ${TERMINAL_TYPE_IDS.join(', ')}` },
    kind: { type: 'string', value: 'app|agent', help: 'the kiosk application (default) or the agent' },
    key: { type: 'string', value: 'pem', help: 'the private key file (release keygen)' },
    out: { type: 'string', value: 'dir', help: 'where to write the artifact, manifest and signature' },
    'min-agent': { type: 'string', value: 'semver', help: 'the lowest agent version that may install it' },
  },
  notes: 'Progress (packing, hashing) goes to stderr; the result, one JSON line, to stdout.',
} as const satisfies CommandSpec;

export interface CliIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

const defaultIo: CliIo = { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) };

export async function releaseCommand(argv: string[], io: CliIo = defaultIo): Promise<number> {
  const [sub, ...rest] = argv;
  const spec = sub === 'keygen' ? KEYGEN : sub === 'pack' ? PACK : undefined;
  try {
    if (sub === 'keygen') {
      const r0 = parseCommand(KEYGEN, rest);
      if (r0.help) return (io.stdout(formatHelp(PROGRAM, KEYGEN)), EXIT.ok);
      const { values } = r0;
      if (!values.out) throw new UsageError('--out is required');
      const r = writeKeyPair(values.out);
      io.stdout(`${JSON.stringify({ privateKey: r.privateKeyPath, publicKey: r.publicKeyPath })}\n`);
      io.stderr(`Keep ${r.privateKeyPath} offline; put ${r.publicKeyPath} in the hub's KF_RELEASE_KEYS and the agents' KF_UPDATE_PUBKEY.\n`);
      return EXIT.ok;
    }
    if (sub === 'pack') {
      const r0 = parseCommand(PACK, rest);
      if (r0.help) return (io.stdout(formatHelp(PROGRAM, PACK)), EXIT.ok);
      const values = { kind: 'app', ...r0.values };
      for (const k of ['dir', 'version', 'type', 'key', 'out'] as const) if (!values[k]) throw new UsageError(`--${k} is required`);
      if (!isSemver(values.version!)) throw new UsageError(`--version ${values.version}: not semver (e.g. 3.3.0)`);
      if (values['min-agent'] !== undefined && !isSemver(values['min-agent'])) throw new UsageError(`--min-agent: not semver`);
      if (values.kind !== 'app' && values.kind !== 'agent') throw new UsageError(`--kind ${values.kind}: app or agent`);
      const types = values.type!.split(',').map((s) => s.trim()).filter(Boolean);
      const unknown = types.filter((t) => !isTerminalType(t));
      if (types.length === 0 || unknown.length > 0) throw new UsageError(`--type: unknown terminal type ${unknown.join(', ') || '(none)'}`);
      const progress = { pack: progressReporter('release pack: packing', { write: io.stderr }), hash: progressReporter('release pack: hashing', { write: io.stderr }) };
      const r = await packRelease({
        dir: values.dir!,
        version: values.version!,
        kind: values.kind,
        terminalTypes: types,
        minAgentVersion: values['min-agent'],
        keyPath: values.key!,
        outDir: values.out!,
        onProgress: (phase, done, total) => progress[phase].update(done, total, 'bytes'),
      });
      io.stdout(`${JSON.stringify({ id: r.id, artifact: r.artifactPath, manifest: r.manifestPath, signature: r.signaturePath, size: r.manifest.size, sha256: r.manifest.sha256 })}\n`);
      return EXIT.ok;
    }
    if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
      io.stdout(releaseHelp());
      return EXIT.ok;
    }
    throw new UsageError(`unknown release command ${sub}`);
  } catch (err) {
    io.stderr(`release ${sub ?? ''}: ${(err as Error).message}\n`);
    if (err instanceof UsageError) {
      io.stderr(`\n${spec ? formatHelp(PROGRAM, spec) : releaseHelp()}`);
      return EXIT.usage;
    }
    return EXIT.failure;
  }
}

function releaseHelp(): string {
  return formatProgramHelp(`${PROGRAM} release`, 'Signing keys and signed release artifacts (hub/src/releases/README.md).', [
    { name: 'keygen', summary: KEYGEN.summary },
    { name: 'pack', summary: PACK.summary },
  ]);
}
