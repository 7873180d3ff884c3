/** `kiosk-fleet release …` as its own process, until the hub's CLI wires releaseCommand (hub/src/releases/cli.ts). */
import { releaseCommand } from '../../../hub/src/releases/cli.ts';

process.exitCode = await releaseCommand(process.argv.slice(2));
