import { errorReply } from '../errors/index.js';
import { CanActivate, ExecutionContext, UseGuards } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import { ErpsContext } from '../server/erps-context.js';
import type { PeerIdentity } from '../tls/peer-identity.js';

/** Which peer certificates may use a handler: any listed CN, SAN (`DNS:x`, `IP:1.2.3.4`) or fingerprint. */
export interface ErpsAllowRule {
  cn?: string[];
  san?: string[];
  fingerprint256?: string[];
}

export function peerMatches(peer: PeerIdentity | undefined, rule: ErpsAllowRule): boolean {
  if (peer === undefined) return false;
  if (peer.cn !== undefined && rule.cn?.includes(peer.cn)) return true;
  if (rule.san?.some((san) => peer.sans.includes(san))) return true;
  const fingerprint = peer.fingerprint256.toUpperCase();
  return rule.fingerprint256?.some((allowed) => allowed.toUpperCase() === fingerprint) ?? false;
}

/** The guard behind @ErpsAllow: refuses (ERPS_FORBIDDEN) callers whose certificate matches none of the rule. */
export class ErpsAllowGuard implements CanActivate {
  constructor(private readonly rule: ErpsAllowRule) {}

  canActivate(context: ExecutionContext): boolean {
    const rpc = context.switchToRpc().getContext<unknown>();
    const ctx = rpc instanceof ErpsContext ? rpc : undefined;
    if (peerMatches(ctx?.peer, this.rule)) return true;
    const who = ctx?.peer?.cn !== undefined ? `"${ctx.peer.cn}"` : 'a caller without a certificate';
    throw new RpcException(errorReply('ERPS_FORBIDDEN', `${who} may not call "${ctx?.getPattern() ?? 'this pattern'}"`));
  }
}

/**
 * Per-handler (or per-controller) authorization by peer identity:
 * `@ErpsAllow({ cn: ['billing'] })`. Denied calls get `{ status: 'error', code: 'ERPS_FORBIDDEN' }`;
 * the handler does not run.
 */
export const ErpsAllow = (rule: ErpsAllowRule): MethodDecorator & ClassDecorator => UseGuards(new ErpsAllowGuard(rule));
