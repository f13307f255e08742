import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { errorBody, ErrorBody, writeError } from './error-writer';
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
    let body: ErrorBody = errorBody(500, 'Internal server error');
    let retryAfter: number | undefined;
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const r = exception.getResponse();
      body =
        typeof r === 'object' && r !== null
          ? { ...(r as ErrorBody), statusCode: status }
          : { statusCode: status, error: exception.name, message: String(r) };
      if (Array.isArray(body.message)) body.message = (body.message as string[]).join('; ');
      if (exception instanceof GatewayError) retryAfter = exception.retryAfterSeconds;
    } else {
      this.logger.error(exception instanceof Error ? exception : String(exception));
    }
    writeError(res, body, retryAfter);
  }
}
