export * from './dev-certs.js';
