import { ArgumentsHost, ConflictException } from '@nestjs/common';
import { SqlStateExceptionFilter } from './sqlstate-exception.filter';

function httpHost() {
  const res = {
    headers: {} as Record<string, string>,
    statusCode: 0,
    body: undefined as unknown,
    setHeader(name: string, value: string) {
      this.headers[name] = value;
    },
    status(code: number) {
      this.statusCode = code;
      return this;
    },
    json(body: unknown) {
      this.body = body;
      return this;
    },
  };
  const host = {
    getType: () => 'http',
    switchToHttp: () => ({ getResponse: () => res, getRequest: () => ({}) }),
    getArgByIndex: (i: number) => [{}, res][i],
    getArgs: () => [{}, res],
  } as unknown as ArgumentsHost;
  return { host, res };
}

const pgError = (code: string) =>
  Object.assign(new Error(`relation "shop.secret" says ${code}`), { code });

describe('SqlStateExceptionFilter', () => {
  const filter = new SqlStateExceptionFilter();
  beforeAll(() => jest.spyOn(console, 'error').mockImplementation());
  beforeEach(() => {
    jest.spyOn(filter['logger'], 'warn').mockImplementation();
    jest.spyOn(filter['logger'], 'error').mockImplementation();
  });

  it.each([
    ['23505', 409],
    ['40P01', 503],
    ['40001', 503],
    ['54000', 413],
    ['42501', 403],
    ['XX000', 500],
  ])(
    'answers SQLSTATE %s with HTTP %i, without the error text',
    (code, status) => {
      const { host, res } = httpHost();
      filter.catch(pgError(code), host);
      expect(res.statusCode).toBe(status);
      expect(res.body).toMatchObject({ statusCode: status, sqlstate: code });
      expect(JSON.stringify(res.body)).not.toMatch(/shop\.secret/);
    },
  );

  it('adds Retry-After to the 503 of a deadlock', () => {
    const { host, res } = httpHost();
    filter.catch(pgError('40P01'), host);
    expect(res.headers['Retry-After']).toBe('1');
  });

  it('leaves HttpExceptions to Nest', () => {
    const adapter = { isHeadersSent: () => false, reply: jest.fn() };
    const withAdapter = new SqlStateExceptionFilter(adapter as never);
    const { host } = httpHost();
    withAdapter.catch(new ConflictException('taken'), host);
    expect(adapter.reply).toHaveBeenCalledWith(
      expect.anything(),
      expect.objectContaining({ statusCode: 409, message: 'taken' }),
      409,
    );
  });
});
