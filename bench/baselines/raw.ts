/**
 * The "raw" ceiling: bare node:http answering the bytes of a cached /api answer from a Map keyed by
 * the request target. Nothing else: what answering 5 KB from memory costs in Node on this machine.
 *
 * BODY_FILE: the answer's bytes. KEYS_FILE (optional): one `q` per line; the Map holds a copy of the
 * bytes under `/api?q=<encodeURIComponent(q)>` for each (one copy per key, like a real cache).
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { announce, env } from './child';

const body = readFileSync(env('BODY_FILE'));
const keysFile = process.env.KEYS_FILE;
const qs = keysFile ? readFileSync(keysFile, 'utf8').split('\n').filter(Boolean) : [];

const answers = new Map<string, Buffer>();
for (const q of qs) answers.set(`/api?q=${encodeURIComponent(q)}`, Buffer.from(body));
const headers = { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(body.length) };

const server = http.createServer((req, res) => {
  const b = answers.get(req.url ?? '');
  if (b === undefined) {
    res.writeHead(404, { 'Content-Length': '0' });
    res.end();
    return;
  }
  res.writeHead(200, headers);
  res.end(b);
});
server.listen(0, '127.0.0.1', () => announce(server));
