import { MissingFilterWarning } from '../../src/nest/missing-filter-warning';
import { markShapedByFilter } from '../../src/nest/shaped-by-filter';
import { CapturedLogs } from '../support/captured-logs';

const nestUnknownError = (): Record<string, unknown> => ({ status: 'error', message: 'Internal server error' });

describe('MissingFilterWarning', () => {
  let logs: CapturedLogs;
  let warning: MissingFilterWarning;

  beforeEach(() => {
    logs = new CapturedLogs();
    warning = new MissingFilterWarning(logs);
  });

  it("warns once per pattern about Nest's generic error that ErpsExceptionFilter did not shape", () => {
    warning.check('user.register', nestUnknownError());
    warning.check('user.register', nestUnknownError());
    warning.check('order.place', nestUnknownError());
    expect(logs.entries.map((entry) => entry.level)).toEqual(['warn', 'warn']);
    expect(logs.entries[0]?.message).toContain('Erps call "user.register"');
    expect(logs.entries[1]?.message).toContain('Erps call "order.place"');
  });

  it('is silent for errors the filter shaped, and for every other error reply', () => {
    warning.check('a', markShapedByFilter(nestUnknownError()));
    warning.check('b', { status: 'error', statusCode: 400, message: ['name must be a string'], error: 'Bad Request' });
    warning.check('c', { status: 'error', message: 'Internal server error', code: 'E_APP' });
    warning.check('d', { status: 'error', message: 'calculator says no' });
    warning.check('e', 'Internal server error');
    warning.check('f', undefined);
    expect(logs.entries).toEqual([]);
  });

  it('stops remembering patterns at a bound, so odd patterns cannot grow it', () => {
    for (let i = 0; i < 1100; i++) warning.check(`p${i}`, nestUnknownError());
    expect(logs.entries).toHaveLength(1024);
  });
});
