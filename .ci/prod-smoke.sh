#!/usr/bin/env bash
# Proves the Docker image's runtime layout works without Docker: dist/ plus production-only
# node_modules, no Redis (in-memory cache) and an unreachable Nominatim. The app must answer
# /health/live with 200 within 20 s and exit within 10 s of SIGTERM.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -f "$root/dist/main.js" ]; then
  echo "prod-smoke: $root/dist/main.js is missing; run npm run build first" >&2
  exit 1
fi

tmp="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "prod-smoke: $*" >&2
  echo "---- app output ----" >&2
  cat "$tmp/app.log" >&2 || true
  echo "--------------------" >&2
  exit 1
}

# Prints the HTTP status of a GET, or 0 when nothing answers within 2 s. Node, because the
# image has no curl either.
http_status() {
  node -e "
    const req = require('http').get(process.argv[1], (res) => { console.log(res.statusCode); process.exit(0); });
    req.on('error', () => { console.log(0); process.exit(0); });
    req.setTimeout(2000, () => { console.log(0); process.exit(0); });
  " "$1"
}

echo "prod-smoke: production-only install in $tmp"
cp "$root/package.json" "$root/package-lock.json" "$tmp/"
cp -R "$root/dist" "$tmp/dist"
# Scripts are skipped, as in the Dockerfile's deps stage.
(cd "$tmp" && npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund)

port="$(node -e "const s = require('net').createServer(); s.listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); });")"
echo "prod-smoke: starting node dist/main.js on port $port (no REDIS_URL, Nominatim on a closed port)"
# Started from the temp dir so only its node_modules resolve; nothing listens on port 9.
(
  cd "$tmp"
  exec env -u REDIS_URL -u REDIS_TLS_URL -u NODE_PATH \
    NODE_ENV=production \
    PORT="$port" \
    NOMINATIM_URL=http://127.0.0.1:9 \
    NOMINATIM_USER_AGENT="places-cache-ci (prod-smoke; no contact)" \
    node dist/main.js
) >"$tmp/app.log" 2>&1 </dev/null &
pid=$!

url="http://127.0.0.1:$port/health/live"
status=0
deadline=$((SECONDS + 20))
while [ "$SECONDS" -lt "$deadline" ]; do
  kill -0 "$pid" 2>/dev/null || fail "the app exited before $url answered"
  status="$(http_status "$url")"
  [ "$status" = 200 ] && break
  sleep 0.5
done
[ "$status" = 200 ] || fail "$url answered $status (0 = no answer) instead of 200 within 20 s"
echo "prod-smoke: $url answered 200"

kill -TERM "$pid"
deadline=$((SECONDS + 10))
while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
  sleep 0.2
done
if kill -0 "$pid" 2>/dev/null; then
  fail "the app was still running 10 s after SIGTERM"
fi
code=0
wait "$pid" || code=$?
pid=""
# Nest's shutdown hooks re-raise the signal after closing, so 143 (128 + SIGTERM) is a clean exit too.
if [ "$code" -ne 0 ] && [ "$code" -ne 143 ]; then
  fail "the app exited with status $code after SIGTERM"
fi
echo "prod-smoke: exited with status $code after SIGTERM"
