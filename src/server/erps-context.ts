import { BaseRpcContext } from '@nestjs/microservices';
import type { PeerIdentity } from '../tls/peer-identity.js';
import type { ErpsHeaders, ErpsPushChannel, ErpsSessionInfo } from './session-info.js';

export type { ErpsHeaders, ErpsPushChannel, ErpsSessionInfo } from './session-info.js';

export type ErpsContextArgs = [pattern: string, session: ErpsSessionInfo, headers: ErpsHeaders, channel: ErpsPushChannel];

const NO_HEADERS: ErpsHeaders = Object.freeze({});

/** The `@Ctx()` of an Erps handler. */
export class ErpsContext extends BaseRpcContext<ErpsContextArgs> {
  constructor(args: ErpsContextArgs) {
    super(args);
  }

  /** The pattern as it travelled (Nest's normalized route string). */
  getPattern(): string {
    return this.args[0];
  }

  get connectionId(): number {
    return this.args[1].connectionId;
  }

  get remoteAddress(): string | undefined {
    return this.args[1].remoteAddress;
  }

  /** The peer's certificate identity (CN, SANs, fingerprint256, validity); undefined under 'tcp'. */
  get peer(): PeerIdentity | undefined {
    return this.args[1].peer;
  }

  /** Erps `is_remote/1`: true when the call came over a socket, false for an in-process caller. */
  isRemote(): boolean {
    return this.args[1].remote;
  }

  /**
   * Erps `Server.push/2` to the calling client: a PUSH frame on this connection, ordered with the replies.
   * The pattern is a string (as `client.pushes(pattern)` filters it). Returns false if the client is gone.
   */
  push(pattern: string, data: unknown): boolean {
    return this.args[3].push(pattern, data);
  }

  /** Per-message headers sent by the client. */
  getHeaders(): ErpsHeaders {
    return this.args[2] ?? NO_HEADERS;
  }

  /** The per-message headers as Nest's `TcpContext.getMetadata()` gives them: undefined when there were none. */
  getMetadata(): ErpsHeaders | undefined {
    const headers = this.args[2];
    return headers === undefined || Object.keys(headers).length === 0 ? undefined : headers;
  }
}
