import type { PeerIdentity } from '../tls/peer-identity.js';

/** What a handler can learn about the connection a message came over. */
export interface ErpsSessionInfo {
  readonly connectionId: number;
  readonly remoteAddress: string | undefined;
  readonly remotePort: number | undefined;
  /** Certificate identity of the peer; undefined under transport 'tcp'. */
  readonly peer: PeerIdentity | undefined;
  /** True when the message crossed a socket (Erps `is_remote`). */
  readonly remote: boolean;
  readonly connectedAt: Date;
}

export type ErpsHeaders = Readonly<Record<string, string>>;

/** Where `ctx.push()` sends: the connection the message came over. */
export interface ErpsPushChannel {
  push(pattern: string, data: unknown): boolean;
}
