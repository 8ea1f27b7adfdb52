import { retryTransaction } from './retry';

const pgError = (code: string) =>
  Object.assign(new Error(`error ${code}`), { code });

describe('retryTransaction', () => {
  const noSleep = { sleep: () => Promise.resolve() };

  it.each(['40P01', '40001'])('runs again after %s', async (code) => {
    const work = jest
      .fn()
      .mockRejectedValueOnce(pgError(code))
      .mockResolvedValueOnce('done');
    await expect(
      retryTransaction(work, { attempts: 3, ...noSleep }),
    ).resolves.toBe('done');
    expect(work).toHaveBeenCalledTimes(2);
  });

  it('also recognises TypeORM-wrapped errors', async () => {
    const wrapped = Object.assign(new Error('QueryFailedError'), {
      driverError: pgError('40P01'),
    });
    const work = jest
      .fn()
      .mockRejectedValueOnce(wrapped)
      .mockResolvedValueOnce(1);
    await expect(
      retryTransaction(work, { attempts: 2, ...noSleep }),
    ).resolves.toBe(1);
  });

  it('gives up after the last attempt with the database error', async () => {
    const work = jest.fn().mockRejectedValue(pgError('40P01'));
    await expect(
      retryTransaction(work, { attempts: 4, ...noSleep }),
    ).rejects.toMatchObject({ code: '40P01' });
    expect(work).toHaveBeenCalledTimes(4);
  });

  it('does not retry other errors', async () => {
    const work = jest.fn().mockRejectedValue(pgError('23505'));
    await expect(
      retryTransaction(work, { attempts: 4, ...noSleep }),
    ).rejects.toMatchObject({ code: '23505' });
    expect(work).toHaveBeenCalledTimes(1);
  });

  it('backs off exponentially, bounded', async () => {
    const pauses: number[] = [];
    const work = jest.fn().mockRejectedValue(pgError('40001'));
    await expect(
      retryTransaction(work, {
        attempts: 6,
        baseDelayMs: 100,
        maxDelayMs: 400,
        sleep: (ms) => {
          pauses.push(ms);
          return Promise.resolve();
        },
      }),
    ).rejects.toThrow();
    const ceilings = [100, 200, 400, 400, 400];
    pauses.forEach((p, i) => {
      expect(p).toBeGreaterThanOrEqual(ceilings[i] / 2);
      expect(p).toBeLessThanOrEqual(ceilings[i]);
    });
  });
});
