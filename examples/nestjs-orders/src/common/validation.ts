import { ValidationPipe } from '@nestjs/common';

/**
 * The ValidationPipe both applications use: DTO classes become instances
 * (transform), unknown properties are an error, and nothing is converted
 * implicitly - a quantity "2" is a 400, not the number 2.
 */
export function strictValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    transform: true,
    transformOptions: { enableImplicitConversion: false },
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
  });
}
