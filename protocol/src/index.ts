export * from './ids.ts';
export * from './topics.ts';
export * from './catalog.ts';
export * from './schemas/common.ts';
export * from './schemas/config.ts';
export * from './schemas/messages.ts';
export { fastTelemetry } from './schemas/telemetry-fast.ts';
export * from './examples.ts';
export * from './release.ts';
