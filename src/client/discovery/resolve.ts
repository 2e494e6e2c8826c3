import { promises as dns } from 'node:dns';
import type { DiscoveryConfig } from '../../config/client-config.js';
import { checkEndpointAddress } from '../../config/client-config.js';
import type { ErpsEndpointAddress } from '../erps-client-options.js';

/** One resolution: the endpoints as of now. Rejects when the registry cannot be asked or knows no endpoint. */
export type Resolve = () => Promise<ErpsEndpointAddress[]>;

export function createResolve(config: DiscoveryConfig): Resolve {
  switch (config.kind) {
    case 'resolve':
      return async () => {
        const found = await config.resolve();
        if (!Array.isArray(found)) throw new TypeError('discovery.resolve() must resolve to an array of { host, port }');
        return found.map((address, i) => checkEndpointAddress(`discovery.resolve()[${i}]`, address));
      };
    case 'dns': {
      const addresses = hostAddresses(config.servers);
      return async () => (await addresses(config.name)).map((host) => ({ host, port: config.port, serverName: config.serverName }));
    }
    case 'srv': {
      const resolver = resolverFor(config.servers);
      const addresses = hostAddresses(config.servers);
      return async () => {
        const records = await resolver.resolveSrv(config.name);
        const found = await Promise.all(
          records.map(async (record) => {
            const target = record.name.replace(/\.$/, '');
            const serverName = config.serverName ?? target;
            // A target that does not resolve is dialled by name (the system resolver may know it).
            const hosts = await addresses(target).catch(() => [target]);
            return hosts.map((host) => ({ host, port: record.port, serverName }));
          }),
        );
        return found.flat();
      };
    }
  }
}

function resolverFor(servers: string[] | undefined): dns.Resolver {
  const resolver = new dns.Resolver();
  if (servers !== undefined) resolver.setServers(servers);
  return resolver;
}

/**
 * Every address of a name. With given DNS servers: their A and AAAA records. Without: the system's getaddrinfo, so
 * /etc/hosts and the search domains of a Kubernetes pod apply, as they do for any other connection.
 */
function hostAddresses(servers: string[] | undefined): (name: string) => Promise<string[]> {
  if (servers === undefined) return async (name) => (await dns.lookup(name, { all: true })).map((entry) => entry.address);
  const resolver = resolverFor(servers);
  return async (name) => {
    const [v4, v6] = await Promise.allSettled([resolver.resolve4(name), resolver.resolve6(name)]);
    const found = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (found.length === 0) throw v4.status === 'rejected' ? v4.reason : new Error(`${name} has no A or AAAA record`);
    return found;
  };
}
