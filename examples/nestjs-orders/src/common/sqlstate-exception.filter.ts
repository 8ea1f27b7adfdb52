import {
  ArgumentsHost,
  Catch,
  HttpException,
  HttpStatus,
  Logger,
} from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import type { Response } from 'express';
import { sqlState } from '../database/retry';

/** What a database error means to an HTTP client. */
const STATUS_OF: Record<string, { status: number; message: string }> = {
  '23505': {
    status: HttpStatus.CONFLICT,
    message: 'conflicts with an existing record',
  },
  '40P01': {
    status: HttpStatus.SERVICE_UNAVAILABLE,
    message: 'busy, try again',
  },
  '40001': {
    status: HttpStatus.SERVICE_UNAVAILABLE,
    message: 'busy, try again',
  },
  '54000': { status: HttpStatus.PAYLOAD_TOO_LARGE, message: 'too large' },
  '42501': { status: HttpStatus.FORBIDDEN, message: 'not allowed' },
};

/** seconds a client should wait after a 503 for a deadlock or serialization failure */
export const RETRY_AFTER_SECONDS = 1;

/**
 * Maps PostgreSQL errors (pg's DatabaseError, TypeORM's QueryFailedError)
 * to HTTP by SQLSTATE: 23505 -> 409, 40P01/40001 -> 503 with Retry-After
 * (OrdersService has already retried them), 54000 -> 413 (e.g. an event
 * above outbox_kafka.max_message_bytes), 42501 -> 403.  Other database
 * errors are a 500 whose body says nothing about the schema; the log has
 * the details.  HttpExceptions and everything else go to Nest's default.
 */
@Catch()
export class SqlStateExceptionFilter extends BaseExceptionFilter {
  private readonly logger = new Logger(SqlStateExceptionFilter.name);

  catch(exception: unknown, host: ArgumentsHost): void {
    const code =
      exception instanceof HttpException ? undefined : sqlState(exception);
    if (code === undefined || host.getType() !== 'http') {
      super.catch(exception, host);
      return;
    }
    const mapped = STATUS_OF[code] ?? {
      status: HttpStatus.INTERNAL_SERVER_ERROR,
      message: 'internal server error',
    };
    const detail = (exception as Error).message;
    if (mapped.status >= 500) this.logger.error(`SQLSTATE ${code}: ${detail}`);
    else this.logger.warn(`SQLSTATE ${code}: ${detail}`);
    const res = host.switchToHttp().getResponse<Response>();
    if (mapped.status === 503)
      res.setHeader('Retry-After', String(RETRY_AFTER_SECONDS));
    res.status(mapped.status).json({
      statusCode: mapped.status,
      message: mapped.message,
      sqlstate: code,
    });
  }
}
