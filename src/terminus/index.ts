export { ErpsHealthIndicator } from './erps-health-indicator.js';
export type { ErpsPingCheckOptions, ErpsEndpointDetail } from './erps-health-indicator.js';
