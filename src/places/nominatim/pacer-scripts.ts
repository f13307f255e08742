import { createHash } from 'node:crypto';

/*
 * One shared "next free slot" per application (GCRA with a burst of 1), kept in Redis and computed on
 * Redis's own clock (TIME), so instances with skewed clocks still agree. Effects replication (default
 * since Redis 5, the only mode in 7) makes TIME inside a writing script safe. Microseconds: at
 * 1000 requests/s the interval is one millisecond, which whole milliseconds cannot space.
 *
 * The schedule's epoch (KEYS[3]) names the schedule the slots were handed out from. A new one starts
 * whenever the next-slot key is missing: at first use and after an idle spell (no slot is pending
 * then: the key outlives the last one by an interval), but also when Redis lost it (a restart without
 * persistence, FLUSHALL, eviction) while slots were pending. Those slots are then void: each instance
 * compares a pending slot's epoch with the current one before the slot (UpstreamPacer), and queues
 * again rather than start beside the new schedule's slots.
 *
 * KEYS[1] next free slot (µs, Redis clock)   KEYS[2] cool-down flag (its PTTL is the remaining cool-down)
 * KEYS[3] epoch (Redis µs when the schedule started)
 * KEYS[4] send hold: no slot before its PTTL has run out (UpstreamPacer.holdFleet)
 * ARGV[1] interval µs (guard included)        ARGV[2] max wait µs for this call
 * ARGV[3] minimum delay µs the calling process needs (its own slots already handed out)
 * ARGV[4] horizon µs: a stored slot further ahead than this means Redis's clock stepped back; reset it
 * Returns {0, delayUs, nowUs, epoch} granted | {1, waitUs, nowUs, epoch} queue full | {2, pttlMs, 0, ''} cooling down.
 */
export const ACQUIRE_SCRIPT = `
if redis.replicate_commands then redis.replicate_commands() end
local cooling = redis.call('PTTL', KEYS[2])
if cooling > 0 then return {2, cooling, 0, ''} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local stored = redis.call('GET', KEYS[1])
local epoch = redis.call('GET', KEYS[3])
if not stored or not epoch then
  epoch = string.format('%.0f', now)
  redis.call('SET', KEYS[3], epoch)
end
local nxt = tonumber(stored or now)
if nxt > now + tonumber(ARGV[4]) then nxt = now end
local slot = math.max(now + tonumber(ARGV[3]), nxt)
local hold = redis.call('PTTL', KEYS[4])
if hold > 0 then slot = math.max(slot, now + hold * 1000) end
local wait = slot - now
if wait > tonumber(ARGV[2]) then return {1, wait, now, epoch} end
local interval = tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', slot + interval), 'PX', string.format('%.0f', math.ceil((wait + interval) / 1000)))
return {0, wait, now, epoch}
`;

/*
 * What a caller reads before its slot, in one round trip: Redis's clock (a sample for placing slots),
 * the cool-down's and the send hold's PTTL, and the schedule's epoch.
 * KEYS[1] cool-down, KEYS[2] send hold, KEYS[3] epoch.
 * Returns {seconds, microseconds, coolDownPttlMs, holdPttlMs, epoch or false}.
 */
export const SLOT_CHECK_SCRIPT = `
local t = redis.call('TIME')
return {t[1], t[2], redis.call('PTTL', KEYS[1]), redis.call('PTTL', KEYS[2]), redis.call('GET', KEYS[3])}
`;

/*
 * Sets a flag for ARGV[1] ms unless it already lives longer: the cool-down (a longer one already
 * running is kept) and the send hold (see UpstreamPacer.holdFleet). KEYS[1] the flag.
 */
export const FLAG_AT_LEAST_SCRIPT = `
local ms = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) < ms then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
return 1
`;

export const sha1 = (text: string) => createHash('sha1').update(text).digest('hex');

