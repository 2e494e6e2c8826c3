/** The good client: a well-behaved ErpsClient that keeps calling one daemon while the rows attack it. */
import { firstValueFrom } from 'rxjs';
import { ErpsClient } from 'nestjs-erps';
import { CLIENT_VERSION, describe, IDENTIFIER, sleep } from './attack-common.js';

export interface PemIdentity {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** A well-behaved client of one daemon: small calls, a few at a time, all along. */
export class GoodClient {
  made = 0;
  failed = 0;
  lastError = '';
  private running = false;
  private loop: Promise<void> = Promise.resolve();
  readonly client: ErpsClient;

  constructor(port: number, tls: PemIdentity) {
    this.client = new ErpsClient({ host: '127.0.0.1', port, tls, identifier: IDENTIFIER, version: CLIENT_VERSION, timeoutMs: 5000, reconnect: { maxDelayMs: 500 } });
  }

  async start(): Promise<void> {
    await this.client.connect();
    this.running = true;
    this.loop = this.run();
  }

  /** Waits (up to `timeoutMs`) until a call succeeds again, e.g. after its daemon was restarted. */
  async ready(timeoutMs = 10_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await this.callOnce()) return true;
      await sleep(200);
    }
    return false;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.client.close();
  }

  private async run(): Promise<void> {
    while (this.running) {
      const batch = await Promise.all(Array.from({ length: 5 }, () => this.callOnce()));
      for (const ok of batch) {
        this.made++;
        if (!ok) this.failed++;
      }
      // After a failure (e.g. its daemon is down and calls fail fast) it slows down instead of spinning.
      await sleep(batch.every(Boolean) ? 20 : 250);
    }
  }

  private callOnce(): Promise<boolean> {
    const a = Math.floor(Math.random() * 1000);
    return firstValueFrom(this.client.send('sum', [a, 1])).then(
      (v) => v === a + 1,
      (err: unknown) => {
        this.lastError = describe(err);
        return false;
      },
    );
  }
}
