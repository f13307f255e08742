import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { GatewayError } from './gateway.errors';

/**
 * One JSON error shape for every failure: `{statusCode, error, message, code?}`. Unknown errors become
 * a generic 500 and their stack is logged once; 503 and 429 carry Retry-After.
 */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger(AllExceptionsFilter.name);

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    let status = 500;
    let body: Record<string, unknown> = { statusCode: 500, error: 'Internal Server Error', message: 'Internal server error' };
    if (exception instanceof HttpException) {
      status = exception.getStatus();
      const r = exception.getResponse();
      body =
        typeof r === 'object' && r !== null
          ? { statusCode: status, ...(r as Record<string, unknown>) }
          : { statusCode: status, error: exception.name, message: String(r) };
      if (Array.isArray(body.message)) body.message = (body.message as string[]).join('; ');
      if (exception instanceof GatewayError && exception.retryAfterSeconds !== undefined) {
        res.setHeader('Retry-After', String(exception.retryAfterSeconds));
      }
    } else {
      this.logger.error(exception instanceof Error ? exception : String(exception));
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.setHeader('Cache-Control', 'no-store');
    res.status(status).type('application/json; charset=utf-8').send(JSON.stringify(body));
  }
}
