import type { Duplex } from 'node:stream';
import { ErpsConfigError, ErpsDisconnectedError } from '../errors/index.js';
import { createDuplexPair } from './duplex-pair.js';

/** In-process daemons of the local transport (Erps `transport: false`), by name. */
const listeners = new Map<string, (socket: Duplex) => void>();

/** Registers an acceptor under `name`; returns the function that unregisters it. */
export function listenLocal(name: string, accept: (socket: Duplex) => void): () => void {
  if (listeners.has(name)) throw new ErpsConfigError(`a local Erps server named "${name}" is already listening in this process`);
  listeners.set(name, accept);
  return () => {
    if (listeners.get(name) === accept) listeners.delete(name);
  };
}

/** Connects to the local daemon `name` through an in-memory pair; the caller gets its end. */
export function connectLocal(name: string): Duplex {
  const accept = listeners.get(name);
  if (accept === undefined) throw new ErpsDisconnectedError(`no local Erps server named "${name}" is listening in this process`);
  const [clientEnd, serverEnd] = createDuplexPair();
  // Accept on the next tick, as a real listener would, so the client can attach its handlers first.
  process.nextTick(() => accept(serverEnd));
  return clientEnd;
}
