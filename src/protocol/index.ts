export * from './frame.js';
export * from './codec.js';
export * from './handshake.js';
export * from './message.js';
export * from './payload.js';
