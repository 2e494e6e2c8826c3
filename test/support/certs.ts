import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DevCertificates, generateDevCertificates } from 'nestjs-erps/testing';

/** Fresh development certificates in a temporary folder, generated once per test file. */
let pending: Promise<DevCertificates> | undefined;
export function testCertificates(): Promise<DevCertificates> {
  pending ??= generateDevCertificates({ dir: mkdtempSync(join(tmpdir(), 'erps-certs-')) });
  return pending;
}
