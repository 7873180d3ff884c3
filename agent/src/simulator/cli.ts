export interface SimulatorArgs { raw: string[] }
export function parseSimulatorArgs(raw: string[]): SimulatorArgs { return { raw }; }
export async function runSimulator(_a: SimulatorArgs): Promise<void> { throw new Error('simulator: work in progress'); }
