import { createHash } from 'node:crypto';
import { KEY_PREFIX } from './cache.constants';

/**
 * The shape of an answer's canonical key, `places:v1:<endpoint>:<question>`, in one place: the
 * canonicaliser builds keys here, and the Redis names, purges and export/import read them here.
 */

/** Past this many characters the question is hashed: keys in Redis, logs and purges stay short. */
const KEY_MAX_LENGTH = 200;
const ANSWER_KEY_START = new RegExp(`^${KEY_PREFIX}([a-z]+):`);
/** A hashed question: `h:` and a base64url SHA-256 (a canonical query never starts with `h:`). */
const HASHED_QUESTION = /^h:[A-Za-z0-9_-]{43}$/;

/** The key of the answer to `question` (the canonical upstream query) on `endpoint`. */
export function answerKey(endpoint: string, question: string): string {
  const key = `${KEY_PREFIX}${endpoint}:${question}`;
  return key.length > KEY_MAX_LENGTH ? `${KEY_PREFIX}${endpoint}:h:${createHash('sha256').update(question).digest('base64url')}` : key;
}

export interface AnswerKeyParts {
  endpoint: string;
  /** the canonical query, or `h:…` for a hashed one */
  question: string;
  /** where the question starts in the key (just past `places:v1:<endpoint>:`) */
  at: number;
}

/** The parts of an answer key (or of a prefix of one that reaches past the endpoint); undefined for anything else. */
export function answerKeyParts(key: string): AnswerKeyParts | undefined {
  const m = ANSWER_KEY_START.exec(key);
  return m === null ? undefined : { endpoint: m[1], question: key.slice(m[0].length), at: m[0].length };
}

/** Whether a question is a hash, not a query; `strict`: exactly the form answerKey makes. */
export function isHashedQuestion(question: string, strict = false): boolean {
  return strict ? HASHED_QUESTION.test(question) : question.startsWith('h:');
}
