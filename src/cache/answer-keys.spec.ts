import { answerKey, answerKeyParts, isHashedQuestion } from './answer-keys';

describe('answer keys', () => {
  it('builds places:v1:<endpoint>:<question> and reads it back', () => {
    const key = answerKey('search', 'format=json&q=berlin');
    expect(key).toBe('places:v1:search:format=json&q=berlin');
    expect(answerKeyParts(key)).toEqual({ endpoint: 'search', question: 'format=json&q=berlin', at: 'places:v1:search:'.length });
    expect(answerKeyParts('places:v1:status:')).toEqual({ endpoint: 'status', question: '', at: 'places:v1:status:'.length });
  });

  it('hashes a question whose key would pass 200 characters, in the form the import checks', () => {
    const short = 'q='.padEnd(200 - 'places:v1:search:'.length, 'x');
    expect(answerKey('search', short)).toBe(`places:v1:search:${short}`);
    const hashed = answerKey('search', `${short}x`);
    const parts = answerKeyParts(hashed);
    expect(parts?.endpoint).toBe('search');
    expect(isHashedQuestion(parts!.question, true)).toBe(true);
    expect(isHashedQuestion('h:abc')).toBe(true);
    expect(isHashedQuestion('h:abc', true)).toBe(false);
    expect(isHashedQuestion(short)).toBe(false);
  });

  it('reads nothing from keys that are not answer keys', () => {
    expect(answerKeyParts('places:v1:')).toBeUndefined();
    expect(answerKeyParts('places:v1:throttle')).toBeUndefined();
    expect(answerKeyParts('places:v2:search:q=x')).toBeUndefined();
    expect(answerKeyParts('other:search:q=x')).toBeUndefined();
  });
});
