export { ErpsInstrumentation } from './erps-instrumentation.js';
export type { ErpsInstrumentationConfig } from './erps-instrumentation.js';
export { ERPS_CHANNELS } from '../observability/channels.js';
export type { ErpsClientCallMessage, ErpsServerCallMessage, ErpsConnectionMessage } from '../observability/channels.js';
