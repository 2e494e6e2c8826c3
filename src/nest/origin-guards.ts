import { errorReply } from '../errors/index.js';
import { CanActivate, ExecutionContext, UseGuards } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import { ErpsContext } from '../server/erps-context.js';

type Origin = 'remote' | 'local';

/**
 * Lets a handler accept only remote callers (over a socket) or only local ones (transport 'local'),
 * Erps' `is_remote` as a guard. A refused call gets `{ status: 'error', code: 'ERPS_FORBIDDEN' }` and the
 * handler does not run. Messages from other Nest transports count as remote.
 */
export class ErpsOriginGuard implements CanActivate {
  constructor(private readonly origin: Origin) {}

  canActivate(context: ExecutionContext): boolean {
    const rpc = context.switchToRpc().getContext<unknown>();
    const remote = rpc instanceof ErpsContext ? rpc.isRemote() : true;
    if (remote === (this.origin === 'remote')) return true;
    const pattern = rpc instanceof ErpsContext ? rpc.getPattern() : 'this pattern';
    throw new RpcException(errorReply('ERPS_FORBIDDEN', `"${pattern}" accepts only ${this.origin} callers`));
  }
}

/** Handler (or controller) decorator: refuse callers that did not come over a socket. */
export const RemoteOnly = (): MethodDecorator & ClassDecorator => UseGuards(new ErpsOriginGuard('remote'));

/** Handler (or controller) decorator: refuse callers that came over a socket. */
export const LocalOnly = (): MethodDecorator & ClassDecorator => UseGuards(new ErpsOriginGuard('local'));
