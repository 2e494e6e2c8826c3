import { LoggerService } from '@nestjs/common';

export interface LogEntry {
  level: 'log' | 'error' | 'warn' | 'debug' | 'verbose' | 'fatal';
  message: string;
}

/** A Nest logger that records instead of printing, so tests can assert what was (or was not) logged. */
export class CapturedLogs implements LoggerService {
  entries: LogEntry[] = [];

  log(message: unknown): void {
    this.record('log', message);
  }
  error(message: unknown): void {
    this.record('error', message);
  }
  warn(message: unknown): void {
    this.record('warn', message);
  }
  debug(message: unknown): void {
    this.record('debug', message);
  }
  verbose(message: unknown): void {
    this.record('verbose', message);
  }
  fatal(message: unknown): void {
    this.record('fatal', message);
  }

  warnings(containing: string): string[] {
    return this.entries.filter((entry) => entry.level === 'warn' && entry.message.includes(containing)).map((entry) => entry.message);
  }

  clear(): void {
    this.entries = [];
  }

  private record(level: LogEntry['level'], message: unknown): void {
    this.entries.push({ level, message: message instanceof Error ? message.message : String(message) });
  }
}
