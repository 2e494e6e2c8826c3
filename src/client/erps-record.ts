import type { ErpsCallOptions } from './erps-client.js';

/** Data plus per-message headers and call options, for `client.send()` / `client.emit()`. */
export class ErpsRecord<TData = unknown> {
  constructor(
    readonly data: TData,
    readonly headers: Readonly<Record<string, string>> = {},
    readonly options: Readonly<ErpsCallOptions> = {},
  ) {}
}

/** Builds an ErpsRecord, in the style of Nest's NatsRecordBuilder. */
export class ErpsRecordBuilder<TData = unknown> {
  private headers: Record<string, string> = {};
  private options: ErpsCallOptions = {};

  constructor(private data?: TData) {}

  setData(data: TData): this {
    this.data = data;
    return this;
  }

  /** Merged with the client's default `headers` (these win). */
  setHeaders(headers: Record<string, string>): this {
    this.headers = { ...this.headers, ...headers };
    return this;
  }

  /** Per-call `timeoutMs` and `waitForReady`. */
  setOptions(options: ErpsCallOptions): this {
    this.options = { ...this.options, ...options };
    return this;
  }

  build(): ErpsRecord<TData> {
    return new ErpsRecord(this.data as TData, { ...this.headers }, { ...this.options });
  }
}
