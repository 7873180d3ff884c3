export { startHub, createHub, resolveAdminToken, ADMIN_TOKEN_FILE, type Hub, type HubServices, type StartOptions } from './hub.ts';
export { parseConfig, ConfigError, configSchema, type HubConfig } from './config.ts';
export { backupDatabase } from './backup.ts';
export { parseFleetCsv, parseFleetJson, applyImport, importFleet, type ImportResult } from './fleet/import.ts';
export { createFleetStore, type FleetStore } from './fleet/index.ts';
