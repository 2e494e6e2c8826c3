export * from './codes.js';
export * from './erps-error.js';
export * from './classes.js';
export * from './reply.js';
