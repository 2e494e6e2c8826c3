import type * as Terminus from '@nestjs/terminus';
import { ErpsConfigError } from '../errors/classes.js';
import { isMissingModule } from '../optional-peer.js';

const MISSING_TERMINUS = 'nestjs-erps/terminus needs @nestjs/terminus (11 or 12): npm install @nestjs/terminus';

/**
 * @nestjs/terminus, an optional peer dependency: loaded when `nestjs-erps/terminus` is (never by `nestjs-erps`
 * itself). Without it, loading `nestjs-erps/terminus` throws an ErpsConfigError that names the package to install.
 */
export const terminus: typeof Terminus = loadTerminus();

function loadTerminus(): typeof Terminus {
  try {
    return require('@nestjs/terminus') as typeof Terminus;
  } catch (error) {
    if (isMissingModule(error, '@nestjs/terminus')) throw new ErpsConfigError(MISSING_TERMINUS, error);
    throw error;
  }
}
