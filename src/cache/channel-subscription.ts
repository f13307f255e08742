import type { Logger } from '@nestjs/common';
import type { RedisSubscriberClient } from './redis-commands';
import { SUBSCRIBE_RETRY_MS } from './redis-refusals';
import { withTimeout } from './with-timeout';

export interface ChannelSubscriptionOptions {
  subscriber: RedisSubscriberClient;
  channel: string;
  onMessage: (message: string) => void;
  opTimeoutMs: number;
  /** The Redis operation's name in logs and refusal counts, e.g. 'fill-lock subscribe'. */
  op: string;
  /** What the subscription is, to start its log lines: 'Fill notice subscription'. */
  name: string;
  /** What is lost while it fails, told in its warn line. */
  meanwhile?: string;
  /** Reports a refused SUBSCRIBE (RedisConnectionService.noteRefused); true when it was one. */
  refused?: (op: string, error: unknown) => boolean;
  /** The owner's logger: its lines name the owner. */
  logger: Logger;
}

/**
 * One pub/sub channel this instance listens on (fill notices, purge broadcasts). node-redis keeps a
 * channel's listeners and resubscribes by itself after a reconnect; what it does not do is try again
 * after a SUBSCRIBE that failed. The owner calls start() whenever the pub/sub connection becomes
 * ready; a refused SUBSCRIBE (an ACL without the channel) is also retried every SUBSCRIBE_RETRY_MS,
 * which keeps it in readiness while it lasts and takes an ACL fixed meanwhile into use without a
 * restart. A failing stretch is logged once, and its end once.
 */
export class ChannelSubscription {
  private subscribed?: Promise<void>;
  /** the last attempt failed (logged once until one succeeds) */
  private failing = false;
  private retry?: NodeJS.Timeout;

  constructor(private readonly options: ChannelSubscriptionOptions) {}

  /** Subscribes (once while it holds); rejects when this attempt failed (already logged). */
  start(): Promise<void> {
    const o = this.options;
    this.subscribed ??= withTimeout(o.subscriber.subscribe(o.channel, o.onMessage), o.opTimeoutMs, `redis ${o.op}`).then(
      () => {
        if (this.failing) o.logger.log(`${o.name} in place again`);
        this.failing = false;
      },
      (error: unknown) => {
        this.subscribed = undefined;
        const refused = o.refused?.(o.op, error) ?? false;
        if (refused) this.retry ??= setTimeout(() => this.retryNow(), SUBSCRIBE_RETRY_MS).unref();
        if (!this.failing) {
          const when = refused ? `every ${SUBSCRIBE_RETRY_MS / 1000} s` : 'when Redis is ready';
          o.logger.warn(`${o.name} failed (${describe(error)})${o.meanwhile ? `; ${o.meanwhile}` : ''}; retried ${when}`);
        }
        this.failing = true;
        throw error;
      },
    );
    return this.subscribed;
  }

  /** Stops retrying and unsubscribes. Never rejects: a failure is logged at debug (the connection is closing). */
  async stop(): Promise<void> {
    clearTimeout(this.retry);
    this.retry = undefined;
    const subscribed = this.subscribed;
    this.subscribed = undefined;
    if (!subscribed) return;
    const o = this.options;
    try {
      await subscribed;
      await withTimeout(o.subscriber.unsubscribe(o.channel, o.onMessage), o.opTimeoutMs, `redis ${o.op.replace('subscribe', 'unsubscribe')}`);
    } catch (error) {
      o.logger.debug(`${o.name}: unsubscribe failed (${describe(error)})`);
    }
  }

  private retryNow(): void {
    this.retry = undefined;
    if (this.options.subscriber.isReady) this.start().catch(() => undefined);
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
