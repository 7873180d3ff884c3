'use strict';
// The bundle's `worker-timers` (mqtt.js' get-timer.js): timers run in a Web Worker, which mqtt.js uses only in a
// browser; in Node it picks the native timers. These are the native timers, so the worker broker, its inlined
// worker script and @babel/runtime are not loaded by every agent.
module.exports = {
  setInterval: (fn, ms, ...args) => globalThis.setInterval(fn, ms, ...args),
  clearInterval: (id) => globalThis.clearInterval(id),
  setTimeout: (fn, ms, ...args) => globalThis.setTimeout(fn, ms, ...args),
  clearTimeout: (id) => globalThis.clearTimeout(id),
};
