import { existsSync, readdirSync } from 'node:fs';

/** Whether this platform lists a process's open file descriptors under /proc (Linux). */
export const canCountFileDescriptors = existsSync('/proc/self/fd');

/** How many file descriptors this process has open (sockets included). */
export function openFileDescriptors(): number {
  return readdirSync('/proc/self/fd').length;
}
