import { DynamicModule, FactoryProvider, InjectionToken, Module, ModuleMetadata, OptionalFactoryDependency } from '@nestjs/common';
import { ErpsClient } from '../client/erps-client.js';
import type { ErpsClientOptions } from '../client/erps-client-options.js';

/** One client for `ErpsClientsModule.register`: inject it with `@Inject(name)`. */
export interface ErpsClientRegistration {
  name: string | symbol;
  options: ErpsClientOptions;
}

/** One client for `ErpsClientsModule.registerAsync`: its options come from a factory run by Nest's injector. */
export interface ErpsClientAsyncRegistration<Options extends ErpsClientOptions = ErpsClientOptions> {
  name: string | symbol;
  /** Called with what `inject` names, in that order. */
  useFactory: (...args: any[]) => Options | Promise<Options>; // eslint-disable-line @typescript-eslint/no-explicit-any
  inject?: Array<InjectionToken | OptionalFactoryDependency>;
  imports?: ModuleMetadata['imports'];
}

/**
 * `Options` with each key that `ErpsClientOptions` does not have typed `never`. TypeScript does not check an object
 * literal returned by a callback for excess properties, so this is what makes a misspelled option an error there.
 * With no such key it is `Options` itself, not an intersection with `{}`: every key of `ErpsClientOptions` is
 * optional, and only then does TypeScript refuse a Promise or a number in its place (its weak type check).
 */
type OnlyErpsClientOptions<Options> = Options &
  ([Exclude<keyof Options, keyof ErpsClientOptions>] extends [never] ? unknown : { [K in Exclude<keyof Options, keyof ErpsClientOptions>]: never });

export interface ErpsClientsModuleOptions {
  /** Make the clients injectable everywhere without importing the module again. Default false. */
  isGlobal?: boolean;
}

/**
 * Nest's `ClientsModule` for Erps clients, typed over `ErpsClientOptions` (a misspelled option is a compile
 * error). Each client is an `ErpsClient`, closed when the application shuts down.
 */
@Module({})
export class ErpsClientsModule {
  static register(clients: ErpsClientRegistration[], moduleOptions: ErpsClientsModuleOptions = {}): DynamicModule {
    const providers = clients.map(({ name, options }) => clientProvider(name, () => options, []));
    return { module: ErpsClientsModule, global: moduleOptions.isGlobal ?? false, providers, exports: providers.map((p) => p.provide) };
  }

  static registerAsync<Options extends readonly ErpsClientOptions[]>(
    clients: readonly [...{ [I in keyof Options]: ErpsClientAsyncRegistration<OnlyErpsClientOptions<Options[I]>> }],
    moduleOptions: ErpsClientsModuleOptions = {},
  ): DynamicModule {
    const providers = clients.map(({ name, useFactory, inject }) => clientProvider(name, useFactory, inject ?? []));
    const imports = [...new Set(clients.flatMap((client) => client.imports ?? []))];
    return { module: ErpsClientsModule, global: moduleOptions.isGlobal ?? false, imports, providers, exports: providers.map((p) => p.provide) };
  }
}

function clientProvider(
  name: string | symbol,
  optionsFactory: ErpsClientAsyncRegistration['useFactory'],
  inject: Array<InjectionToken | OptionalFactoryDependency>,
): FactoryProvider<ErpsClient> {
  return {
    provide: name,
    inject,
    useFactory: async (...args: unknown[]) => closedOnShutdown(new ErpsClient(await optionsFactory(...args))),
  };
}

/** Nest calls `onApplicationShutdown` on every provider instance that has one when the application closes. */
function closedOnShutdown(client: ErpsClient): ErpsClient {
  return Object.assign(client, { onApplicationShutdown: () => client.close() });
}
