import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
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
    const method = host.switchToHttp().getRequest<Request>().method;
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
      // An HttpException's response object is the thrower's: its message is not known to be a string.
      if (method === 'HEAD' && typeof body.message === 'string') body.message = asForGet(body.message);
    } else {
      this.logger.error(exception instanceof Error ? exception : String(exception));
    }
    writeError(res, body, retryAfter);
  }
}

/**
 * A HEAD carries the Content-Length of GET's answer (RFC 9110 8.6: no other value may be sent), and
 * the body it stands for is GET's: a 404's "Cannot HEAD /x" (Nest's words) is GET's "Cannot GET /x".
 */
function asForGet(message: string): string {
  return message.startsWith('Cannot HEAD ') ? `Cannot GET ${message.slice('Cannot HEAD '.length)}` : message;
}
