import type { Duplex } from 'node:stream';
import { dial, Dialled, DialOptions } from './dial.js';

/**
 * How a connection is obtained: opens a socket, finishes TLS and the Erps handshake, and resolves with the held
 * connection and the server's WELCOME. `onSocket` hears of the socket as soon as it exists. Replaceable (tests use a
 * fake; a fleet may dial through a proxy); `dial` is the default.
 */
export type Connector = (options: DialOptions, onSocket?: (socket: Duplex) => void) => Promise<Dialled>;

export const defaultConnector: Connector = dial;
