import type { LoggerService } from '@nestjs/common';
import { refusalHint, type RedisRefusal } from './redis-guard';

/**
 * How long a refusal keeps /health/ready `degraded`, and how often the refusals of one kind are
 * reported in the log (with their count) while they go on.
 */
export const REFUSAL_WINDOW_MS = 30_000;

/**
 * A refused SUBSCRIBE is tried again this often: a subscription is asked for once, not per request, so
 * only a retry within the window keeps readiness degraded while it lasts, and takes an ACL fixed
 * meanwhile into use without a restart.
 */
export const SUBSCRIBE_RETRY_MS = REFUSAL_WINDOW_MS / 3;

/** One kind of refusal seen within the window, as /health/ready lists it. */
export interface RecentRefusals {
  kind: string;
  /** refusals of this kind since the first one of the episode */
  count: number;
  /** the guarded operations (our own names: `set`, `fill-lock acquire`, `pacer acquire`, …) */
  ops: string[];
  /** Redis's words, the last time (safeReplyText) */
  text: string;
  lastSecondsAgo: number;
}

interface KindRecord {
  count: number;
  unreported: number;
  ops: Set<string>;
  text: string;
  firstAt: number;
  lastAt: number;
}

/**
 * The error replies of a Redis that is reachable but refuses commands (full with noeviction, an ACL
 * without a command, a disk it cannot save to, …): the service works around each one, so without this
 * the only trace would be places_redis_errors_total. Logs the first refusal of a kind at once, then one
 * line per kind and window with the number refused meanwhile, and one (info) when a kind stopped; never
 * a key or a question (RedisRefusal.text is masked). Nothing here runs unless Redis refused something.
 */
export class RedisRefusals {
  private readonly kinds = new Map<string, KindRecord>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly logger: Pick<LoggerService, 'warn' | 'log'>,
    private readonly windowMs = REFUSAL_WINDOW_MS,
    private readonly now: () => number = Date.now,
  ) {}

  note(refusal: RedisRefusal, op: string): void {
    const now = this.now();
    const record = this.kinds.get(refusal.kind);
    if (record) {
      record.count++;
      record.unreported++;
      record.ops.add(op);
      record.text = refusal.text;
      record.lastAt = now;
      return;
    }
    this.kinds.set(refusal.kind, { count: 1, unreported: 0, ops: new Set([op]), text: refusal.text, firstAt: now, lastAt: now });
    const hint = refusalHint(refusal.kind);
    this.logger.warn(
      `Redis refused ${op}: ${refusal.text}${hint ? ` (${hint})` : ''}; the service goes on without it (a miss whose store or fill lock is refused is X-Cache: BYPASS; ` +
        `pacing and rate limits count per process while their scripts are refused); ` +
        `/health/ready is degraded until ${this.windowMs / 1000} s pass without a refusal; further ${refusal.kind} refusals are counted here once per ${this.windowMs / 1000} s`,
    );
    this.timer ??= setInterval(() => this.report(), this.windowMs).unref();
  }

  /** The kinds refused within the window, most recent first (empty when Redis refused nothing lately). */
  recent(): RecentRefusals[] {
    if (this.kinds.size === 0) return [];
    const now = this.now();
    return [...this.kinds]
      .filter(([, r]) => now - r.lastAt < this.windowMs)
      .sort(([, a], [, b]) => b.lastAt - a.lastAt)
      .map(([kind, r]) => ({ kind, count: r.count, ops: [...r.ops], text: r.text, lastSecondsAgo: Math.round((now - r.lastAt) / 100) / 10 }));
  }

  /** Once per window while refusals go on: their count per kind; a kind refused no more for a window ends. */
  report(): void {
    const now = this.now();
    const seconds = this.windowMs / 1000;
    for (const [kind, r] of this.kinds) {
      if (r.unreported > 0) {
        this.logger.warn(`Redis refused ${r.unreported} more commands with ${kind} in the last ${seconds} s (${[...r.ops].join(', ')}): ${r.text}`);
        r.unreported = 0;
      }
      if (now - r.lastAt >= this.windowMs) {
        this.kinds.delete(kind);
        this.logger.log(`Redis has refused nothing with ${kind} for ${seconds} s (${r.count} refused since ${new Date(r.firstAt).toISOString()})`);
      }
    }
    if (this.kinds.size === 0) this.stop();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
