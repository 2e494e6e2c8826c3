import { Inject, Injectable } from '@nestjs/common';
import type { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import type { ErpsClient } from '../client/erps-client.js';
import { describeError } from '../errors/erps-error.js';
import type { ErpsServer } from '../server/erps-server.js';
import { terminus } from './terminus-peer.js';

/** Options of `ErpsHealthIndicator.pingCheck`. */
export interface ErpsPingCheckOptions {
  /** Down when the server has not answered within this many ms. Default 1000. */
  timeoutMs?: number;
  /** The service whose status is asked (`server.setServingStatus`). Default '': the server as a whole. */
  service?: string;
}

/** One endpoint of the client, as the details of a check show it. */
export interface ErpsEndpointDetail {
  /** `host:port` */
  endpoint: string;
  /** Its connectivity state (`client.endpoints()`): idle, connecting, ready, transient-failure, ejected. */
  state: string;
  /** Why its last attempt failed or its last connection was lost. */
  lastError?: string;
}

const DEFAULT_TIMEOUT_MS = 1000;

/**
 * Health indicators for @nestjs/terminus (`HealthCheckService.check([...])`). Provide it beside `TerminusModule`:
 * `providers: [ErpsHealthIndicator]`.
 *
 * - `pingCheck(key, client, options)`: a real round trip through the daemon's health service (`client.health()`):
 *   up when it answers SERVING; down when it answers NOT_SERVING (set so, or draining) or SERVICE_UNKNOWN, when no
 *   server can be reached (stopped, draining, unreachable), or when the answer takes longer than `timeoutMs`.
 *   The details name the service, the status, the round trip, the endpoint that answered and every endpoint's state.
 * - `isListening(key, server)`: the daemon side, in-process: up while the ErpsServer listens and is not draining.
 */
@Injectable()
export class ErpsHealthIndicator {
  constructor(@Inject(terminus.HealthIndicatorService) private readonly indicators: HealthIndicatorService) {}

  /**
   * Asks the daemon's health service through `client` (a real round trip) about `options.service` ('' by default):
   * up when it answers SERVING within `options.timeoutMs` (default 1000), down otherwise.
   */
  async pingCheck<const Key extends string>(key: Key, client: ErpsClient, options: ErpsPingCheckOptions = {}): Promise<HealthIndicatorResult<Key>> {
    const indicator = this.indicators.check(key);
    const service = options.service ?? '';
    try {
      const { status, rttMs, endpoint } = await client.health(service, { timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS });
      const data = {
        service,
        serving: status,
        rttMs: Math.round(rttMs * 1000) / 1000,
        ...(endpoint === undefined ? {} : { endpoint: `${endpoint.host}:${endpoint.port}` }),
        endpoints: endpointsOf(client),
      };
      if (status === 'SERVING') return indicator.up(data);
      return indicator.down({ message: `service "${service}" is ${status}`, ...data });
    } catch (err) {
      const code = (err as { code?: unknown } | null)?.code;
      return indicator.down({ message: describeError(err), ...(typeof code === 'string' ? { code } : {}), service, endpoints: endpointsOf(client) });
    }
  }

  /** The daemon side, in this process: up while `server` listens and is not draining, with its address. */
  isListening<const Key extends string>(key: Key, server: ErpsServer): HealthIndicatorResult<Key> {
    const indicator = this.indicators.check(key);
    const state = server.currentStatus;
    if (state !== 'listening') return indicator.down({ message: `the Erps daemon is ${state}`, server: state });
    const { address, port } = server.address();
    return indicator.up({ server: state, address, port, connections: server.stats().connections });
  }
}

function endpointsOf(client: ErpsClient): ErpsEndpointDetail[] {
  return client.endpoints().map((info) => {
    const detail: ErpsEndpointDetail = { endpoint: `${info.host}:${info.port}`, state: info.state };
    if (info.lastError !== undefined) detail.lastError = describeError(info.lastError);
    return detail;
  });
}
