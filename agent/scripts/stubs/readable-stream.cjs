'use strict';
// The bundle's `readable-stream` (mqtt.js, bl): Node's own streams, exactly as readable-stream's documented
// READABLE_STREAM=disable mode exports them (readable-stream 4, lib/ours/index.js). It is a copy of Node's streams
// for other runtimes; in Node it only added 117 KB of source and its own classes to every agent's heap.
const Stream = require('node:stream');

module.exports = Stream.Readable;
module.exports._uint8ArrayToBuffer = Stream._uint8ArrayToBuffer;
module.exports._isUint8Array = Stream._isUint8Array;
module.exports.isDisturbed = Stream.isDisturbed;
module.exports.isErrored = Stream.isErrored;
module.exports.isReadable = Stream.isReadable;
module.exports.Readable = Stream.Readable;
module.exports.Writable = Stream.Writable;
module.exports.Duplex = Stream.Duplex;
module.exports.Transform = Stream.Transform;
module.exports.PassThrough = Stream.PassThrough;
module.exports.addAbortSignal = Stream.addAbortSignal;
module.exports.finished = Stream.finished;
module.exports.destroy = Stream.destroy;
module.exports.pipeline = Stream.pipeline;
module.exports.compose = Stream.compose;
module.exports.Stream = Stream.Stream;
module.exports.default = module.exports;
