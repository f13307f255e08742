import { ErrorReply } from 'redis';
import { redisRefusal, refusalHint, safeReplyText } from './redis-guard';
import { OperationTimeoutError } from './with-timeout';

describe(redisRefusal.name, () => {
  it.each([
    ["OOM command not allowed when used memory > 'maxmemory'.", 'OOM'],
    ["NOPERM this user has no permissions to run the 'evalsha' command or its subcommand", 'NOPERM'],
    ["READONLY You can't write against a read only replica.", 'READONLY'],
    ['MISCONF Redis is configured to save RDB snapshots, but it is currently not able to persist on disk.', 'MISCONF'],
    ['LOADING Redis is loading the dataset in memory', 'LOADING'],
    ['ERR wrong number of arguments for command', 'ERR'],
    ['something without an error code', 'ERR'],
  ])('takes the kind of an error reply from its first word: %s', (message, kind) => {
    expect(redisRefusal(new ErrorReply(message))?.kind).toBe(kind);
  });

  it('is undefined for what is no reply: a timeout, a closed connection, anything else', () => {
    expect(redisRefusal(new OperationTimeoutError('redis get', 250))).toBeUndefined();
    expect(redisRefusal(new Error('Socket closed unexpectedly'))).toBeUndefined();
    expect(redisRefusal(new Error("OOM command not allowed when used memory > 'maxmemory'."))).toBeUndefined();
    expect(redisRefusal(undefined)).toBeUndefined();
  });

  it.each([['CLUSTERDOWN Hash slot not served'], ['CLUSTERDOWN The cluster is down'], ['TRYAGAIN Multiple keys request during rehashing of slot'], ['MOVED 3999 127.0.0.1:6381'], ['ASK 3999 127.0.0.1:6381'], ['MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no']])(
    "is undefined for a cluster's passing states, which readiness reports itself (cluster_fail) or the client follows: %s",
    (message) => {
      expect(redisRefusal(new ErrorReply(message))).toBeUndefined();
    },
  );

  it('never carries a key (the question is in it) from a Redis 7.2 ACL message', () => {
    const refusal = redisRefusal(new ErrorReply("NOPERM User app has no permissions to access the 'places:v1:search:q=Secret Street 5' key"));
    expect(refusal).toEqual({ kind: 'NOPERM', text: "NOPERM User app has no permissions to access the '…' key" });
  });
});

describe(safeReplyText.name, () => {
  it('keeps quoted command and setting names, masks anything else quoted', () => {
    expect(safeReplyText("OOM command not allowed when used memory > 'maxmemory'.")).toBe("OOM command not allowed when used memory > 'maxmemory'.");
    expect(safeReplyText("NOPERM this user has no permissions to run the 'evalsha' command")).toBe("NOPERM this user has no permissions to run the 'evalsha' command");
    expect(safeReplyText("ERR unknown command 'FOO', with args beginning with: 'places:v1:lock:x' \"Secret Street\"")).toBe(
      "ERR unknown command 'FOO', with args beginning with: '…' \"…\"",
    );
    expect(safeReplyText("NOPERM No permissions to access the 'places:v1:filled' channel")).toBe("NOPERM No permissions to access the '…' channel");
  });

  it('keeps the first line only, at most 200 characters', () => {
    expect(safeReplyText('ERR first\r\nsecond line')).toBe('ERR first');
    expect(safeReplyText(`ERR ${'x'.repeat(500)}`)).toHaveLength(200);
  });
});

describe(refusalHint.name, () => {
  it('explains the kinds an operator can act on, and nothing for the others', () => {
    expect(refusalHint('OOM')).toMatch(/maxmemory-policy/);
    expect(refusalHint('NOPERM')).toMatch(/ACL/);
    expect(refusalHint('MISCONF')).toMatch(/disk/);
    expect(refusalHint('WRONGTYPE')).toBe('');
  });
});
