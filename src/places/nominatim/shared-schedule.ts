import type { RedisCommandClient } from '../../cache/redis-commands';
import { ACQUIRE_SCRIPT, FLAG_AT_LEAST_SCRIPT, SLOT_CHECK_SCRIPT, sha1 } from './pacer-scripts';

/** What ACQUIRE_SCRIPT answered (see pacer-scripts.ts). */
type AcquireReply =
  | { kind: 'granted' | 'full'; amountUs: number; redisNowUs: number; epoch: string }
  | { kind: 'cooling'; pttlMs: number };

/** Runs one Redis call within the pacer's bound (its guard or op timeout); rejects past it. */
type BoundedCall = <T>(op: string, call: () => Promise<T>) => Promise<T>;

const SHAS = new Map([ACQUIRE_SCRIPT, FLAG_AT_LEAST_SCRIPT, SLOT_CHECK_SCRIPT].map((s) => [s, sha1(s)]));

/**
 * The fleet's pacing state in Redis, as UpstreamPacer reads and writes it: its keys (one hash tag on
 * a cluster: they share `keyPrefix`) and the scripts over them. Every call goes through `bounded`.
 */
export class SharedSchedule {
  private readonly nextKey: string;
  private readonly coolDownKey: string;
  private readonly holdKey: string;
  private readonly epochKey: string;

  constructor(
    private readonly client: RedisCommandClient,
    keyPrefix: string,
    private readonly bounded: BoundedCall,
  ) {
    // In µs: a key of its own, so that an instance of the ms version reading it during a rolling deploy
    // does not take µs for ms (it would see a schedule hours ahead, and both would reset it).
    this.nextKey = `${keyPrefix}pacer:next-us`;
    this.coolDownKey = `${keyPrefix}pacer:cooldown`;
    this.holdKey = `${keyPrefix}pacer:hold`;
    this.epochKey = `${keyPrefix}pacer:epoch`;
  }

  /** The next slot (see ACQUIRE_SCRIPT); `onRetry` marks the moment the script is sent a second time. */
  async acquire(intervalUs: number, maxWaitUs: number, ownDelayUs: number, horizonUs: number, onRetry: () => void): Promise<AcquireReply> {
    const reply = await this.bounded('pacer acquire', () =>
      this.run(ACQUIRE_SCRIPT, [this.nextKey, this.coolDownKey, this.epochKey, this.holdKey], [intervalUs, maxWaitUs, ownDelayUs, horizonUs], onRetry),
    );
    if (!Array.isArray(reply) || reply.length !== 4) throw new Error(`unexpected pacer script reply ${JSON.stringify(reply)}`);
    const [status, amount, redisNowUs] = reply.slice(0, 3).map(Number);
    if (status === 2) return { kind: 'cooling', pttlMs: amount };
    return { kind: status === 1 ? 'full' : 'granted', amountUs: amount, redisNowUs, epoch: String(reply[3]) };
  }

  /** Starts (or keeps a longer) shared cool-down of `ms`. */
  coolDown(ms: number): Promise<unknown> {
    return this.bounded('pacer cool-down', () => this.run(FLAG_AT_LEAST_SCRIPT, [this.coolDownKey], [ms]));
  }

  /** Holds every instance's next start for `ms` (or keeps a longer hold). */
  hold(ms: number): Promise<unknown> {
    return this.bounded('pacer send hold', () => this.run(FLAG_AT_LEAST_SCRIPT, [this.holdKey], [ms]));
  }

  /**
   * Before a slot (SLOT_CHECK_SCRIPT): Redis's clock in ms, the cool-down and the send hold still
   * running (ms, ≤ 0: none), and the schedule's epoch (null: none, the schedule is gone). `onSend`
   * marks each moment the script is sent (for the clock sample: not the time spent in `bounded`).
   */
  async slotCheck(onSend: () => void): Promise<{ redisMs: number; coolDownMs: number; holdMs: number; epoch: string | null }> {
    const reply = (await this.bounded('pacer slot check', () => {
      onSend();
      return this.run(SLOT_CHECK_SCRIPT, [this.coolDownKey, this.holdKey, this.epochKey], [], onSend);
    })) as [string, string, number, number, string | null];
    const [seconds, micros, coolDownMs, holdMs, epoch] = reply;
    return { redisMs: Number(seconds) * 1000 + Number(micros) / 1000, coolDownMs: Number(coolDownMs), holdMs: Number(holdMs), epoch: epoch ?? null };
  }

  /** EVALSHA, or EVAL when Redis does not know the script yet (`onRetry` marks the second send). */
  private async run(script: string, keys: string[], args: number[], onRetry?: () => void): Promise<unknown> {
    const options = { keys, arguments: args.map((a) => String(a)) };
    try {
      return await this.client.evalSha(SHAS.get(script)!, options);
    } catch (error) {
      if (error instanceof Error && error.message.startsWith('NOSCRIPT')) {
        onRetry?.();
        return this.client.eval(script, options);
      }
      throw error;
    }
  }
}
