/**
 * `kiosk-fleet-agent run` (one real terminal) and `kiosk-fleet-agent simulate` (many virtual ones). Every command
 * takes `--help`/`-h` (usage on stdout, exit 0, nothing started); exit codes are protocol/src/cli.ts's EXIT
 * (2 = configuration error: the unit's RestartPreventExitStatus; 64 = usage error).
 */
import { EXIT, UsageError, formatHelp, formatProgramHelp, parseCommand, wantsHelp, type CommandSpec } from '@kiosk-fleet/protocol/cli';
import { AGENT_VERSION } from './agent.ts';
import { ConfigError } from './config.ts';

const PROGRAM = 'kiosk-fleet-agent';
const ENV_NOTE = `Environment: KF_HUB_URL, KF_HUB_CA, KF_TERMINAL_ID, KF_SECRET_FILE, KF_AGENT_DATA_DIR, KF_TELEMETRY_INTERVAL,
KF_LOCAL_API_PORT, KF_UPDATE_PUBKEY, KF_TERMINAL_TYPE, KF_LOG_LEVEL and more (agent/README.md, "Config"); env wins
over the config file. A wrong value stops the agent with exit code ${EXIT.config} and a message naming the key.`;

const RUN = {
  name: 'run',
  summary: "Run this terminal's agent: report to the hub, apply its config and updates, serve the kiosk app's local API.",
  options: { config: { type: 'string', value: 'file', help: 'a JSON config file (keys in agent/README.md); env wins over it' } },
  notes: ENV_NOTE,
} as const satisfies CommandSpec;
/** simulate's options live with the simulator (simulator/cli.ts, SIMULATE); its summary is repeated here so that
 * the program's help does not load the simulator's chunk. */
const SIMULATE_SUMMARY = { name: 'simulate', summary: 'Many virtual terminals in one process, for demos, tests and load.' };

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  let spec: CommandSpec | undefined;
  try {
    if (command === 'run') {
      spec = RUN;
      const parsed = parseCommand(RUN, rest);
      if (parsed.help) return void process.stdout.write(formatHelp(PROGRAM, RUN));
      const { runAgent } = await import('./run.ts');
      await runAgent({ ...(parsed.values.config ? { configFile: parsed.values.config } : {}) });
    } else if (command === 'simulate') {
      const { SIMULATE, parseSimulatorArgs, runSimulator } = await import('./simulator/cli.ts');
      spec = SIMULATE;
      if (wantsHelp(rest)) return void process.stdout.write(formatHelp(PROGRAM, SIMULATE));
      await runSimulator(parseSimulatorArgs(rest));
    } else if (command === '--version' || command === '-V' || command === 'version') {
      process.stdout.write(`${PROGRAM} ${AGENT_VERSION}\n`);
    } else if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
      process.stdout.write(programHelp());
    } else {
      process.stderr.write(`${PROGRAM}: unknown command ${JSON.stringify(command)}\n\n${programHelp()}`);
      process.exitCode = EXIT.usage;
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${PROGRAM} ${command}: ${err.message}\n\n${spec ? formatHelp(PROGRAM, spec) : programHelp()}`);
      process.exit(EXIT.usage);
    }
    // a start-up failure (fleet file unreadable, hub refused the import, ...): one clear line, not a stack
    process.stderr.write(`${PROGRAM}: ${(err as Error).message}\n`);
    process.exit(err instanceof ConfigError ? EXIT.config : EXIT.failure);
  }
}

function programHelp(): string {
  return formatProgramHelp(PROGRAM, `Kiosk Fleet terminal agent ${AGENT_VERSION}.`, [RUN, SIMULATE_SUMMARY], ENV_NOTE);
}
