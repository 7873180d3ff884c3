// The few systeminformation modules the host probe uses, imported one by one (host/system.ts says why); typed from
// the package's own declarations.
declare module 'systeminformation/lib/cpu.js' {
  export const currentLoad: typeof import('systeminformation').currentLoad;
  export const cpuTemperature: typeof import('systeminformation').cpuTemperature;
}
declare module 'systeminformation/lib/memory.js' {
  export const mem: typeof import('systeminformation').mem;
}
declare module 'systeminformation/lib/filesystem.js' {
  export const fsSize: typeof import('systeminformation').fsSize;
}
declare module 'systeminformation/lib/network.js' {
  export const networkInterfaces: typeof import('systeminformation').networkInterfaces;
}
