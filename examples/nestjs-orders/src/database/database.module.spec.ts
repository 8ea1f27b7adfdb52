import { Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { Pool } from 'pg';
import { AppConfigModule } from '../config/config.module';
import { DatabaseModule, ORDERS_POOL } from './database.module';

describe('DatabaseModule', () => {
  it('survives the server terminating idle connections (57P01)', async () => {
    const moduleRef = await Test.createTestingModule({
      imports: [AppConfigModule, DatabaseModule.orders()],
    }).compile();
    const pool = moduleRef.get<Pool>(ORDERS_POOL);
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation();
    const terminated = Object.assign(
      new Error('terminating connection due to administrator command'),
      { code: '57P01' },
    );
    // what pg does when an idle client's connection is closed by the server
    expect(() => pool.emit('error', terminated)).not.toThrow();
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('57P01'));
    warn.mockRestore();
    await moduleRef.close();
  });
});
