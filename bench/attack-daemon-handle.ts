/**
 * One attack daemon as the attacker sees it: the forked process (bench/attack-daemon.ts), requests over IPC,
 * its memory from /proc, and a restart on the same port after a death.
 */
import { ChildProcess, fork } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonArgs, DaemonConfig, DaemonMessage, DaemonRequest, DaemonSample, sleep } from './attack-common.js';

type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;
type Request = WithoutId<DaemonRequest>;
type Reply = Extract<DaemonMessage, { type: 'reply' }>;

/** The daemon's V8 heap is capped so that a successful memory attack kills it instead of the machine. */
export const DAEMON_HEAP_MIB = 1024;

/** One attack daemon in its own process. After a death, `restart()` brings it back on the same port. */
export class Daemon {
  config!: DaemonConfig;
  deaths = 0;
  exitedWith: string | undefined;
  /** The end of the daemon's stderr (kept, not printed: a V8 out-of-memory report is long). */
  stderrTail = '';
  private child!: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, (reply: Reply | undefined) => void>();

  private constructor(private readonly args: DaemonArgs) {}

  static async start(args: DaemonArgs): Promise<Daemon> {
    const daemon = new Daemon(args);
    await daemon.spawn(args.port);
    return daemon;
  }

  get port(): number {
    return this.config.port;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.exitedWith === undefined;
  }

  /** Sends a request; undefined if no reply within `timeoutMs` or the daemon is gone. */
  request(request: Request, timeoutMs = 5000): Promise<Reply | undefined> {
    if (!this.alive) return Promise.resolve(undefined);
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle(undefined), timeoutMs);
      const settle = (reply: Reply | undefined): void => {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(reply);
      };
      this.pending.set(id, settle);
      this.child.send({ ...request, id }, (err) => err && settle(undefined));
    });
  }

  async sample(timeoutMs = 2000): Promise<DaemonSample | undefined> {
    return (await this.request({ cmd: 'sample' }, timeoutMs))?.sample;
  }

  /** Current and peak RSS from /proc: readable even while the daemon's event loop is stalled. */
  procMemory(): { rss: number; peak: number } | undefined {
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const kib = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
      return { rss: kib('VmRSS'), peak: kib('VmHWM') };
    } catch {
      return undefined;
    }
  }

  /** Resets the kernel's peak-RSS mark (VmHWM) of the daemon; false if the kernel does not allow it. */
  resetPeak(): boolean {
    try {
      writeFileSync(`/proc/${this.pid}/clear_refs`, '5');
      return true;
    } catch {
      return false;
    }
  }

  /** Brings the daemon back on the same port, after a death (counted) or a hang (killed first). */
  async restart(): Promise<void> {
    if (this.alive) await this.terminate();
    else this.deaths++;
    await this.spawn(this.config.port);
  }

  kill(): void {
    if (this.alive) this.child.kill('SIGKILL');
  }

  /** Kills the daemon and waits until it is gone. */
  async terminate(): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.kill();
    await exited;
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    await this.request({ cmd: 'stop' }, 1000);
    await Promise.race([exited, sleep(4000)]);
    this.kill();
  }

  private spawn(port: number): Promise<void> {
    this.exitedWith = undefined;
    const script = join(__dirname, 'attack-daemon.js');
    const child = fork(script, [JSON.stringify({ ...this.args, port })], {
      execArgv: [`--max-old-space-size=${DAEMON_HEAP_MIB}`, '--expose-gc'],
      // A fixed mmap threshold: glibc returns freed large buffers to the kernel instead of keeping them resident,
      // so one row's freed memory does not hide the next row's growth.
      env: { ...process.env, MALLOC_MMAP_THRESHOLD_: String(16 * 1024) },
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    });
    this.child = child;
    child.on('error', () => undefined); // IPC to a daemon that just died: its requests settle as unanswered
    this.stderrTail = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-8192);
    });
    return new Promise((resolve, reject) => {
      child.on('message', (message: DaemonMessage) => {
        if (this.child !== child) return;
        if (message.type === 'ready') {
          this.config = message.config;
          resolve();
        } else if (message.type === 'failed') {
          reject(new Error(`daemon ${this.args.name}: ${message.error}`));
        } else {
          this.pending.get(message.id)?.(message);
        }
      });
      child.on('exit', (code, signal) => {
        if (this.child !== child) return;
        const fatal = /FATAL ERROR: .*/.exec(this.stderrTail)?.[0];
        this.exitedWith = `${signal ?? `exit code ${code}`}${fatal === undefined ? '' : `: ${fatal}`}`;
        for (const settle of [...this.pending.values()]) settle(undefined);
        reject(new Error(`daemon ${this.args.name} exited before it was ready (${this.exitedWith})`));
      });
    });
  }
}
