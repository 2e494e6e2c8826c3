export * from './tls-options.js';
export * from './peer-identity.js';
export * from './hardening.js';
