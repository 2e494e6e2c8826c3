import { firstValueFrom } from 'rxjs';
import { ErpsCallOptions, ErpsClient, ErpsClientOptions, ErpsRecord } from 'nestjs-erps';
import type { DevCertificates } from 'nestjs-erps/testing';

/**
 * The fleet client's contract (issue 13), written down for the tests from the names (option names,
 * `client.endpoints()`, `on('endpoint')`) independently of the client's own types: the specs check what the issue
 * promises, not what the implementation happens to export.
 */
export const describeFleet: jest.Describe = describe;

export type EndpointState = 'idle' | 'connecting' | 'ready' | 'transient-failure' | 'ejected';

/** One entry of `client.endpoints()`. */
export interface EndpointInfo {
  host: string;
  port: number;
  state: EndpointState;
  inFlight: number;
  connections: number;
  lastError?: unknown;
}

export interface FleetEndpoint {
  host: string;
  port: number;
  serverName?: string;
}

export type FleetDiscovery = ({ dns: string; port: number } | { srv: string } | { resolve: () => Promise<Array<{ host: string; port: number }>> }) & {
  /** DNS servers to ask, e.g. ['127.0.0.1:5353'] (the test DNS server's `address`). */
  servers?: string[];
  /** Re-resolve every refreshMs (default 30 s), and at once when an endpoint fails. */
  refreshMs?: number;
};

export type Balancing = 'least-in-flight' | 'round-robin' | 'pick-first';

export interface OutlierDetection {
  consecutiveFailures?: number;
  baseEjectionMs?: number;
  maxEjectedPercent?: number;
}

/** ErpsClientOptions plus the options of issue 13. */
export type FleetClientOptions = Omit<ErpsClientOptions, 'host' | 'port'> & {
  host?: string;
  port?: number;
  endpoints?: FleetEndpoint[];
  connectionsPerEndpoint?: number;
  discovery?: FleetDiscovery;
  balancing?: Balancing;
  maxRetries?: number;
  outlierDetection?: OutlierDetection | false;
};

/** Per-call options plus `idempotent`. */
export type FleetCallOptions = ErpsCallOptions & { idempotent?: boolean };

/** What the fleet client adds to ErpsClient, as the tests use it. */
export interface FleetView {
  endpoints(): EndpointInfo[];
  on(event: 'endpoint', callback: (info: EndpointInfo) => void): void;
}

/** The fleet methods of `client` (endpoints(), on('endpoint')). */
export function fleetView(client: ErpsClient): FleetView {
  const loose: unknown = client;
  return loose as FleetView;
}

/**
 * Options as ErpsClient takes them. Through `unknown` on purpose: the client's own option types may spell the
 * fleet options differently while it is being written; the tests check behaviour, the API report checks types.
 */
export function asClientOptions(options: FleetClientOptions): ErpsClientOptions {
  const loose: unknown = options;
  return loose as ErpsClientOptions;
}

export function asCallOptions(options: FleetCallOptions): ErpsCallOptions {
  const loose: unknown = options;
  return loose as ErpsCallOptions;
}

/**
 * A fleet client for the fleet daemons (identifier 'calc', the fleet certificates' client 'alice', short
 * heartbeat and reconnect delays). `options` override everything.
 */
export function fleetClient(certs: DevCertificates, options: FleetClientOptions): ErpsClient {
  return new ErpsClient(
    asClientOptions({
      tls: certs.clients.alice,
      identifier: 'calc',
      version: '1.2.0',
      keepaliveMs: 200,
      connectTimeoutMs: 2000,
      reconnect: { minDelayMs: 20, maxDelayMs: 200 },
      ...options,
    }),
  );
}

/** `data` with an `x-call` header (the daemons journal it) and per-call options. */
export function tagged<T>(data: T, token: string, options: FleetCallOptions = {}): ErpsRecord<T> {
  return new ErpsRecord(data, { 'x-call': token }, asCallOptions(options));
}

/** Who answered: the `id` of a whoami or slow reply. */
export async function whoAnswers(client: ErpsClient, options: FleetCallOptions = {}): Promise<string> {
  const reply = await firstValueFrom(client.send<{ id: string }>('whoami', new ErpsRecord(null, {}, asCallOptions(options))));
  return reply.id;
}

/** `n` whoami calls, `concurrency` at a time; how many each daemon answered. Rejects on the first failure. */
export async function spread(client: ErpsClient, n: number, concurrency = 10): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  let started = 0;
  const worker = async (): Promise<void> => {
    while (started < n) {
      started++;
      const id = await whoAnswers(client);
      counts[id] = (counts[id] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return counts;
}

/** The entry of `client.endpoints()` for host:port. */
export function endpointOf(client: ErpsClient, endpoint: { host: string; port: number }): EndpointInfo | undefined {
  return fleetView(client)
    .endpoints()
    .find((e) => e.host === endpoint.host && e.port === endpoint.port);
}

/** `host:port` of each entry of `client.endpoints()` in the given state (any state if omitted), sorted. */
export function endpointKeys(client: ErpsClient, state?: EndpointState): string[] {
  return fleetView(client)
    .endpoints()
    .filter((e) => state === undefined || e.state === state)
    .map((e) => `${e.host}:${e.port}`)
    .sort();
}

export const keyOf = (endpoint: { host: string; port: number }): string => `${endpoint.host}:${endpoint.port}`;
