/**
 * `kiosk-fleet-agent run` (one real terminal) and `kiosk-fleet-agent simulate` (many virtual ones).
 */
import { parseArgs } from 'node:util';
import { ConfigError } from './config.ts';

const USAGE = `usage:
  kiosk-fleet-agent run [--config FILE]
  kiosk-fleet-agent simulate [--fleet FILE] [--count N] [--interval S] [--hub URL] [--api URL --token T]
                             [--provision] [--data-dir DIR] [--local-address A,B,...] [--control-port P]
                             [--ramp N] [--chaos X] [--summary-every S] [--seed N] [--always-open]
Environment: KF_HUB_URL, KF_HUB_CA, KF_TERMINAL_ID, KF_SECRET_FILE, KF_AGENT_DATA_DIR, KF_TELEMETRY_INTERVAL,
KF_LOCAL_API_PORT, KF_UPDATE_PUBKEY, KF_LOG_LEVEL (see agent/README.md).`;

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  try {
    if (command === 'run') {
      const { values } = parseArgs({ args: rest, options: { config: { type: 'string' } }, strict: true });
      const { runAgent } = await import('./run.ts');
      await runAgent({ ...(values.config ? { configFile: values.config } : {}) });
    } else if (command === 'simulate') {
      const { parseSimulatorArgs, runSimulator } = await import('./simulator/cli.ts');
      await runSimulator(parseSimulatorArgs(rest));
    } else {
      process.stderr.write(`${USAGE}\n`);
      process.exitCode = command === undefined || command === '--help' || command === 'help' ? 0 : 2;
    }
  } catch (err) {
    if (err instanceof ConfigError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`kiosk-fleet-agent: ${(err as Error).message}\n`);
      process.exit(2);
    }
    // a start-up failure (fleet file unreadable, hub refused the import, ...): one clear line, not a stack
    process.stderr.write(`kiosk-fleet-agent: ${(err as Error).message}\n`);
    process.exit(1);
  }
}
