import { INestApplication } from '@nestjs/common';
import { firstValueFrom } from 'rxjs';
import { ErpsClient, ErpsClientOptions } from 'nestjs-erps';
import { CapturedLogs } from './support/captured-logs';
import { testCertificates } from './support/certs';
import { HybridUsersApp, startHybridUsersApp, TOO_LATE_REGISTRATIONS, WORKING_REGISTRATIONS } from './support/hybrid-users-app';
import { startUsersGateway } from './support/users-gateway';

const INVALID_USER = { name: 'x', age: -1 };
const VALIDATION_MESSAGES = ['name must be longer than or equal to 3 characters', 'age must not be less than 0'];
const MISSING_FILTER_WARNING = 'ErpsExceptionFilter is not in its exception-filter chain';

// Every app in this file logs here (Nest's logger is process-wide), so tests can assert on warnings.
const logs = new CapturedLogs();

async function erpsOptions(port: number): Promise<ErpsClientOptions> {
  const certs = await testCertificates();
  return { host: '127.0.0.1', port, tls: certs.clients.alice, identifier: 'users', version: '1.0.0' };
}

/** fetch with a deadline: an HTTP request that nobody answers fails the test instead of hanging it. */
async function request(url: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
  return { status: response.status, body: await response.json() };
}

function postJson(url: string, value: unknown): Promise<{ status: number; body: unknown }> {
  return request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(value) });
}

describe('a hybrid app (HTTP + Erps daemon over mutual TLS): ValidationPipe messages reach callers', () => {
  describe.each(WORKING_REGISTRATIONS)('ErpsExceptionFilter registered with %s', (registration) => {
    let users: HybridUsersApp;
    let client: ErpsClient;
    let gateway: { app: INestApplication; url: string };

    beforeAll(async () => {
      logs.clear();
      users = await startHybridUsersApp(registration, logs);
      client = new ErpsClient(await erpsOptions(users.erpsPort));
      gateway = await startUsersGateway(await erpsOptions(users.erpsPort), logs);
    });

    afterAll(async () => {
      await gateway.app.close();
      await client.close();
      await users.close();
    });

    it('a direct ErpsClient call with an invalid DTO gets the validation messages', async () => {
      const error = await firstValueFrom(client.send('user.register', INVALID_USER)).catch((e: unknown) => e);
      expect(error).toEqual({ status: 'error', statusCode: 400, error: 'Bad Request', message: expect.arrayContaining(VALIDATION_MESSAGES) });
      await expect(firstValueFrom(client.send('user.register', { name: 'alice', age: 30 }))).resolves.toEqual({ registered: 'alice' });
    });

    it('an HTTP route calling through a ClientsModule ErpsClient maps them to a 400 with the messages', async () => {
      const refused = await postJson(`${gateway.url}/users`, INVALID_USER);
      expect(refused.status).toBe(400);
      expect(refused.body).toEqual({ statusCode: 400, error: 'Bad Request', message: expect.arrayContaining(VALIDATION_MESSAGES) });
      await expect(postJson(`${gateway.url}/users`, { name: 'bob', age: 41 })).resolves.toEqual({ status: 201, body: { registered: 'bob' } });
    });

    // The filter is bound to these routes too (global, or on their controller). It answers them itself; before
    // @nestjs/core 11.2.10 / 12.2.0 nothing else would, and these requests would hang (then time out here).
    it("the hybrid app's own HTTP routes still answer their exceptions as Nest does", async () => {
      await expect(request(`${users.url}/users/7`)).resolves.toEqual({ status: 200, body: { id: 7 } });
      await expect(request(`${users.url}/users/seven`)).resolves.toEqual({
        status: 400,
        body: { statusCode: 400, error: 'Bad Request', message: 'Validation failed (numeric string is expected)' },
      });
      await expect(request(`${users.url}/crash`)).resolves.toEqual({ status: 500, body: { statusCode: 500, message: 'Internal server error' } });
    });

    it('a crash still reaches the caller as "Internal server error", with no missing-filter warning', async () => {
      const error = await firstValueFrom(client.send('user.crash', {})).catch((e: unknown) => e);
      expect(error).toEqual({ status: 'error', message: 'Internal server error' });
      expect(logs.entries.some((entry) => entry.level === 'error' && entry.message === 'secret internal detail')).toBe(true);
      expect(logs.warnings(MISSING_FILTER_WARNING)).toEqual([]);
    });
  });

  describe.each(TOO_LATE_REGISTRATIONS)('the trap: ErpsExceptionFilter registered with %s', (registration) => {
    let users: HybridUsersApp;
    let client: ErpsClient;

    beforeAll(async () => {
      logs.clear();
      users = await startHybridUsersApp(registration, logs);
      client = new ErpsClient(await erpsOptions(users.erpsPort));
    });

    afterAll(async () => {
      await client.close();
      await users.close();
    });

    it('the caller gets "Internal server error", and the server warns once per pattern, naming it and the ways out', async () => {
      for (let i = 0; i < 3; i++) {
        const error = await firstValueFrom(client.send('user.register', INVALID_USER)).catch((e: unknown) => e);
        expect(error).toEqual({ status: 'error', message: 'Internal server error' });
      }
      const warnings = logs.warnings(MISSING_FILTER_WARNING);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain('Erps call "user.register"');
      expect(warnings[0]).toContain('APP_FILTER');
      expect(warnings[0]).toContain('before connectMicroservice()');
    });
  });
});
