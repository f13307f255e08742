#!/usr/bin/env bash
# The Docker image and docker-compose.yml, built and run for real (called by .ci/run; runs alone too:
# `bash .ci/docker-checks.sh`, as root, after `npm ci`).
#
#  1. the image builds from the unmodified Dockerfile (official base images; stand-ins from Debian only
#     where Docker Hub cannot be reached: scripts/docker-standins.sh), holds no build tool, runs as
#     non-root; its size is printed;
#  2. run as Heroku runs it: PORT set, an arbitrary non-root uid, REDIS_URL=rediss://:password@host:port
#     to a Redis with a self-signed certificate; MISS then HIT (one upstream request), the key in Redis,
#     the password nowhere in the logs, `docker stop` exits 0 within the grace period;
#  3. docker-compose (v2 plugin or v1): Redis healthy before web starts, web reaches it at `redis`,
#     every setting of an env file written from .env.example reaches web (compose's own PORT, HOST
#     and Redis wiring kept), MISS then HIT, the key in Redis; with the `cluster` profile (README's quick start) the six-node
#     Redis Cluster forms and web-cluster serves MISS then HIT from it; every container exits 0 on
#     stop; `down` leaves nothing behind.
# The service's upstream is the test suite's fake Nominatim, reached through the Docker bridge only.
#
# Where dockerd cannot run (no privilege), this says so loudly and exits 0 so the rest of CI runs;
# DOCKER_CHECKS=require makes that a failure instead.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"
IMAGE="${IMAGE:-places-cache:ci}"
GRACE=30
run_id="pcci$$"
tmp="$(mktemp -d)"
t_start=$SECONDS
bridge_pid=""
compose=()

say() { printf '[docker %4d s] %s\n' "$((SECONDS - t_start))" "$*"; }
fail() {
  say "FAILED: $*" >&2
  exit 1
}
elapsed() { echo "$((SECONDS - $1)) s"; }
# Whether a container's log holds a text. Not `docker logs | grep -q`: under pipefail, grep leaving at
# the first match makes docker logs fail on the closed pipe, and the pipeline with it.
logs_have() {
  local out
  out="$(docker logs "$1" 2>&1)"
  grep -qF -- "$2" <<<"$out"
}

cleanup() {
  set +e
  if [ "${#compose[@]}" -gt 0 ]; then "${compose[@]}" down -v --remove-orphans >/dev/null 2>&1; fi
  docker rm -f "$run_id-web" "$run_id-redis" "$run_id-host" "$run_id-heap" "$run_id-heap2" >/dev/null 2>&1
  docker network rm "$run_id-net" >/dev/null 2>&1
  if [ -n "$bridge_pid" ]; then kill "$bridge_pid" 2>/dev/null; wait "$bridge_pid" 2>/dev/null; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

skip_loudly() {
  cat >&2 <<EOF

############################################################################################
##  DOCKER CHECKS SKIPPED: $1
##  The image, the Heroku-style run and docker-compose were NOT tested in this run.
############################################################################################

EOF
  if [ "${DOCKER_CHECKS:-}" = require ]; then exit 1; fi
  exit 0
}

# --- dockerd -------------------------------------------------------------------------------------
command -v docker >/dev/null 2>&1 || skip_loudly "the docker client is not installed (apt-get install docker.io)"
if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null 2>&1 || skip_loudly "dockerd is not installed (apt-get install docker.io)"
  [ "$(id -u)" -eq 0 ] || skip_loudly "dockerd is not running and starting it needs root"
  say "starting dockerd (log: /var/log/places-cache-dockerd.log)"
  # No systemd here: dockerd in the background, left running for later runs on this machine.
  nohup dockerd >/var/log/places-cache-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    kill -0 $! 2>/dev/null || break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 \
    || skip_loudly "dockerd cannot start on this machine: $(tail -n 3 /var/log/places-cache-dockerd.log | tr '\n' ' ' | cut -c1-300)"
fi
say "docker server $(docker version -f '{{.Server.Version}}')"

# --- 1. the image --------------------------------------------------------------------------------
t=$SECONDS
bash scripts/docker-standins.sh
say "base images ready in $(elapsed "$t")"
t=$SECONDS
docker build -q -t "$IMAGE" . >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log" >&2; fail "docker build"; }
build_s=$((SECONDS - t))
size_mb=$(($(docker image inspect -f '{{.Size}}' "$IMAGE") / 1000000))
base="official node:24-bookworm-slim"
if [ "$(docker image inspect -f '{{index .Config.Labels "places-cache.standin"}}' node:24-bookworm-slim)" = true ]; then
  base="the stand-in node:24-bookworm-slim built from Debian bookworm (scripts/docker-standins.sh)"
fi
say "built $IMAGE in ${build_s} s"
say "IMAGE SIZE: ${size_mb} MB (base: $base)"

[ "$(docker image inspect -f '{{.Config.User}}' "$IMAGE")" = node ] || fail "the image does not run as USER node"
label="$(docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.version"}}' "$IMAGE")"
[ "$label" = "$(node -p 'require("./package.json").version')" ] || fail "org.opencontainers.image.version is '$label', not package.json's version"
docker run --rm --entrypoint node "$IMAGE" -e '
  const found = ["typescript", "@nestjs/cli", "jest", "@swc/core", "@swc/jest", "eslint"].filter((m) => {
    try { require.resolve(m + "/package.json", { paths: ["/app"] }); return true; } catch { return false; }
  });
  if (found.length) { console.error("build tools in the runtime image: " + found.join(", ")); process.exit(1); }
  const major = Number(process.versions.node.split(".")[0]);
  if (major < 24) { console.error("node " + process.version + " in the image"); process.exit(1); }
' || fail "runtime image content"
say "runtime image: Node 24+, no TypeScript, Nest CLI, jest, swc or eslint"

# --- the fake upstream, reachable from containers through the bridge gateway only -----------------
gateway="$(docker network inspect bridge -f '{{range .IPAM.Config}}{{.Gateway}}{{end}}')"
# Docker 20.10 leaves the default bridge's gateway out of IPAM: take docker0's own address.
[ -n "$gateway" ] || gateway="$(ip -4 -o addr show docker0 2>/dev/null | awk '{print $4}' | cut -d/ -f1 | head -n1)"
[ -n "$gateway" ] || fail "cannot find the Docker bridge's gateway address"
node -r @swc-node/register test/support/fake-nominatim-bridge.ts --bind "$gateway" --count-file "$tmp/upstream.count" \
  >"$tmp/bridge.out" 2>"$tmp/bridge.err" &
bridge_pid=$!
for _ in $(seq 1 100); do [ -s "$tmp/bridge.out" ] && break; sleep 0.2; done
[ -s "$tmp/bridge.out" ] || { cat "$tmp/bridge.err" >&2; fail "the fake upstream did not start"; }
upstream="http://$gateway:$(head -n1 "$tmp/bridge.out")"
upstream_count() { cat "$tmp/upstream.count"; }

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# X-Cache of one GET (empty when nothing answers).
x_cache() {
  curl -s -m 15 -D - -o /dev/null "$1" | tr -d '\r' | awk 'tolower($1)=="x-cache:"{print $2}'
}

wait_ready() { # url, container-for-logs
  for _ in $(seq 1 120); do
    if curl -sf -m 2 "$1/health/ready" >"$tmp/ready.json" 2>/dev/null && grep -q '"redis":{"state":"ready"' "$tmp/ready.json"; then
      return 0
    fi
    sleep 0.5
  done
  docker logs "$2" >&2 2>&1 || true
  fail "$1/health/ready did not report Redis up within 60 s: $(cat "$tmp/ready.json" 2>/dev/null)"
}

miss_then_hit() { # base url, question
  local before first second after
  before="$(upstream_count)"
  first="$(x_cache "$1/api?q=$2")"
  second="$(x_cache "$1/api?q=$2")"
  after="$(upstream_count)"
  [ "$first" = MISS ] && [ "$second" = HIT ] || fail "expected MISS then HIT, got '${first}' then '${second}'"
  [ "$((after - before))" -eq 1 ] || fail "expected one upstream request, the fake saw $((after - before))"
  say "MISS then HIT, one upstream request"
}

# --- 2. as Heroku runs it ------------------------------------------------------------------------
t=$SECONDS
password="pw-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$run_id-redis" \
  -keyout "$tmp/redis.key" -out "$tmp/redis.crt" >/dev/null 2>&1
chmod 0644 "$tmp/redis.key" "$tmp/redis.crt" && chmod 0755 "$tmp"
docker network create "$run_id-net" >/dev/null
docker run -d --name "$run_id-redis" --network "$run_id-net" -v "$tmp/redis.crt:/tls/redis.crt:ro" \
  -v "$tmp/redis.key:/tls/redis.key:ro" redis:7-alpine redis-server --port 0 --tls-port 6380 \
  --tls-cert-file /tls/redis.crt --tls-key-file /tls/redis.key --tls-auth-clients no --requirepass "$password" >/dev/null
heroku_port="$(free_port)"
app_port=$((20000 + RANDOM % 20000))
# Heroku runs the image with an arbitrary non-root uid and ignores USER/EXPOSE; so does this run.
docker run -d --name "$run_id-web" --network "$run_id-net" --user 54321:54321 -p "127.0.0.1:$heroku_port:$app_port" \
  -e PORT="$app_port" -e REDIS_URL="rediss://:$password@$run_id-redis:6380" -e NOMINATIM_URL="$upstream" \
  -e NOMINATIM_USER_AGENT="places-cache-ci/1.0 (ci@example.org)" -e TRUST_PROXY=true "$IMAGE" >/dev/null
base_url="http://127.0.0.1:$heroku_port"
wait_ready "$base_url" "$run_id-web"
say "Heroku-style run: PORT=$app_port, rediss:// with a self-signed certificate, Redis up"
uid="$(docker exec "$run_id-web" awk '/^Uid:/{print $2}' /proc/1/status)"
[ "$uid" != 0 ] || fail "the service runs as root"
say "PID 1 runs as uid $uid"
miss_then_hit "$base_url" "berlin"
keys="$(docker exec "$run_id-redis" redis-cli --tls --insecure -p 6380 --no-auth-warning -a "$password" --scan --pattern 'places:v1:*' | wc -l)"
[ "$keys" -ge 1 ] || fail "no places:v1: key in Redis"
say "$keys answer key(s) in the TLS Redis"
t_stop=$SECONDS
docker stop -t "$GRACE" "$run_id-web" >/dev/null
stop_s=$((SECONDS - t_stop))
code="$(docker inspect -f '{{.State.ExitCode}}' "$run_id-web")"
docker logs "$run_id-web" >"$tmp/web.log" 2>&1
[ "$code" = 0 ] || { cat "$tmp/web.log" >&2; fail "docker stop: exit code $code"; }
[ "$stop_s" -lt "$GRACE" ] || fail "docker stop took ${stop_s} s (grace ${GRACE} s)"
say "docker stop: exit 0 after ${stop_s} s (grace ${GRACE} s)"
if grep -qF "$password" "$tmp/web.log"; then fail "the Redis password appears in the service's logs"; fi
grep -q '\*\*\*' "$tmp/web.log" || fail "the logs never show the masked Redis URL (was Redis logged at all?)"
say "the password appears nowhere in $(wc -l <"$tmp/web.log") log lines"
docker rm -f "$run_id-web" "$run_id-redis" >/dev/null
heroku_s=$((SECONDS - t))

# --- the image's HEALTHCHECK where HOST names one address --------------------------------------
# HOST set to the container's own name binds its network address only (not loopback): Docker's own
# health probe, run every second here, must still find the service (no Redis needed: in-memory).
t=$SECONDS
docker run -d --name "$run_id-host" --network "$run_id-net" --hostname places-web -e HOST=places-web \
  -e NOMINATIM_URL="$upstream" --health-interval 1s --health-start-period 0s "$IMAGE" >/dev/null
# Probes before the app listens fail, so "unhealthy" may come first; it must turn healthy once it serves.
health=""
for _ in $(seq 1 60); do
  health="$(docker inspect -f '{{.State.Health.Status}}' "$run_id-host")"
  [ "$health" != healthy ] || break
  sleep 0.5
done
[ "$health" = healthy ] || { docker logs "$run_id-host" >&2 2>&1; fail "HEALTHCHECK with HOST=places-web: $health"; }
docker exec "$run_id-host" node -e "require('http').get('http://127.0.0.1:8080/health/live',()=>process.exit(1)).on('error',()=>process.exit(0))" \
  || fail "HOST=places-web also served loopback: the HEALTHCHECK test proved nothing"
say "HEALTHCHECK healthy with HOST=places-web (the container's address, not loopback) in $(elapsed "$t")"
docker rm -f "$run_id-host" >/dev/null
docker network rm "$run_id-net" >/dev/null

# --- the heap limit: npm start's by default, an operator's NODE_OPTIONS over it -------------------
# Seen through the service's own start-up warning for an L1 (200 MiB) above half the heap limit.
t=$SECONDS
docker run -d --name "$run_id-heap" -e L1_MAX_BYTES=209715200 -e NOMINATIM_URL="$upstream" "$IMAGE" >/dev/null
docker run -d --name "$run_id-heap2" -e L1_MAX_BYTES=209715200 -e NOMINATIM_URL="$upstream" \
  -e NODE_OPTIONS=--max-old-space-size=1024 "$IMAGE" >/dev/null
for c in "$run_id-heap" "$run_id-heap2"; do
  for _ in $(seq 1 60); do logs_have "$c" 'places-cache listening' && break; sleep 0.5; done
  logs_have "$c" 'places-cache listening' || { docker logs "$c" >&2 2>&1; fail "$c did not start"; }
done
logs_have "$run_id-heap" 'is more than half the V8 heap limit (304 MiB)' \
  || fail "the default heap limit is not npm start's 256 MB (+ 3 x 16 MB semi-space): $(docker logs "$run_id-heap" 2>&1 | grep -i heap)"
if logs_have "$run_id-heap2" 'more than half the V8 heap limit'; then
  fail "NODE_OPTIONS=--max-old-space-size=1024 did not raise the heap limit: $(docker logs "$run_id-heap2" 2>&1 | grep -i heap)"
fi
docker rm -f "$run_id-heap" "$run_id-heap2" >/dev/null
say "heap limit: npm start's by default, NODE_OPTIONS raises it ($(elapsed "$t"))"

# --- 3. docker-compose ---------------------------------------------------------------------------
t=$SECONDS
if docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose_cmd=(docker-compose)
else
  fail "neither docker compose (v2) nor docker-compose (v1) is installed"
fi
say "compose: $("${compose_cmd[@]}" version --short 2>/dev/null || "${compose_cmd[@]}" version | head -n1)"
# Set nowhere, NODE_OPTIONS is compose's default for it, the image's heap flags: not passed through empty.
image_node_options="$(docker image inspect -f '{{range .Config.Env}}{{println .}}{{end}}' "$IMAGE" | sed -n 's/^NODE_OPTIONS=//p')"
: >"$tmp/empty.env"
compose_node_options="$(env -u NODE_OPTIONS "${compose_cmd[@]}" --env-file "$tmp/empty.env" -f docker-compose.yml config \
  | sed -n 's/^ *NODE_OPTIONS: *//p' | tr -d "'\"" | sort -u)"
[ -n "$image_node_options" ] && [ "$compose_node_options" = "$image_node_options" ] \
  || fail "compose's NODE_OPTIONS when unset is '$compose_node_options', not the image's '$image_node_options'"
say "NODE_OPTIONS unset: compose gives the image's ($image_node_options)"
compose_port="$(free_port)"
cat >"$tmp/compose.ci.yml" <<EOF
services:
  web:
    environment:
      NOMINATIM_URL: "$upstream"
  web-cluster:
    environment:
      NOMINATIM_URL: "$upstream"
EOF
cluster_port="$(free_port)"
export WEB_HOST_PORT="$compose_port" WEB_CLUSTER_HOST_PORT="$cluster_port" NOMINATIM_USER_AGENT="places-cache-ci/1.0 (ci@example.org)"
# An env file as an operator writes .env from .env.example: every setting, each of which must reach both
# gateways, except those compose wires itself (here set to values that would break the stack if they
# got through). NOMINATIM_URL and NOMINATIM_USER_AGENT come from the override and the shell.
wired='^(PORT|HOST|REDIS_URL|REDIS_TLS_URL|REDIS_CLUSTER_NODES|NOMINATIM_URL|NOMINATIM_USER_AGENT)='
sed -n 's/^# \([A-Z0-9_]*=\)/\1/p' .env.example | grep -Ev "$wired" \
  | sed -e 's/^CACHE_TTL_SECONDS=.*/CACHE_TTL_SECONDS=1234/' -e 's/^NOMINATIM_EMAIL=$/NOMINATIM_EMAIL=ci@example.org/' \
    -e 's/^ADMIN_TOKEN=$/ADMIN_TOKEN=ci-admin-token-0123456789/' -e 's/^METRICS_TOKEN=$/METRICS_TOKEN=ci-metrics-token-0123456789/' \
    >"$tmp/compose.env"
# Node's own NODE_OPTIONS reaches both gateways too (checked with the settings, by settings_reached).
echo NODE_OPTIONS=--max-old-space-size=384 >>"$tmp/compose.env"
if grep -q '=$' "$tmp/compose.env"; then fail "a setting in the compose env file has no value: $(grep '=$' "$tmp/compose.env" | tr '\n' ' ')"; fi
printf '%s\n' PORT=9 HOST=127.0.0.1 REDIS_URL=redis://127.0.0.1:1 REDIS_TLS_URL=rediss://127.0.0.1:1 \
  REDIS_CLUSTER_NODES=redis://127.0.0.1:1 >>"$tmp/compose.env"
# The cluster profile too, as the README's quick start runs it (stop and down then include its services).
# Without this shell's own NODE_OPTIONS, which would win over the env file's.
compose=(env -u NODE_OPTIONS "${compose_cmd[@]}" -p "$run_id" --env-file "$tmp/compose.env" --profile cluster -f docker-compose.yml -f "$tmp/compose.ci.yml")
"${compose[@]}" up -d --build >"$tmp/compose-up.log" 2>&1 || { cat "$tmp/compose-up.log" >&2; fail "compose up"; }
web_id="$("${compose[@]}" ps -q web)"
redis_id="$("${compose[@]}" ps -q redis)"
web_started="$(docker inspect -f '{{.State.StartedAt}}' "$web_id")"
redis_healthy="$(docker inspect -f '{{range .State.Health.Log}}{{if eq .ExitCode 0}}{{.End}}{{"\n"}}{{end}}{{end}}' "$redis_id" | head -n1)"
[ -n "$redis_healthy" ] || fail "redis has no successful healthcheck"
node -e 'const [h, w] = process.argv.slice(1).map((s) => Date.parse(s)); process.exit(h <= w ? 0 : 1)' "$redis_healthy" "$web_started" \
  || fail "web started ($web_started) before redis was healthy ($redis_healthy)"
say "redis healthy at $redis_healthy, web started after it at $web_started"
compose_url="http://127.0.0.1:$compose_port"
wait_ready "$compose_url" "$web_id"
grep -q '"redis":{"state":"ready"' "$tmp/ready.json"
say "web reaches Redis at redis:6379"
# Every setting of the env file reached the gateway with its value (a variable is one line of `env`).
settings_reached() { # container id
  docker exec "$1" env >"$tmp/env.out"
  grep -Ev '^(PORT|HOST|REDIS_URL|REDIS_TLS_URL|REDIS_CLUSTER_NODES)=' "$tmp/compose.env" | while IFS= read -r line; do
    grep -qxF "$line" "$tmp/env.out" || { echo "$line"; return 1; }
  done
}
missing="$(settings_reached "$web_id")" || fail "web did not get $missing from the env file"
say "web got all $(grep -cEv '^(PORT|HOST|REDIS_URL|REDIS_TLS_URL|REDIS_CLUSTER_NODES)=' "$tmp/compose.env") settings of the env file, compose's own wiring kept"
miss_then_hit "$compose_url" "hamburg"
keys="$("${compose[@]}" exec -T redis redis-cli --scan --pattern 'places:v1:*' | wc -l)"
[ "$keys" -ge 1 ] || fail "no places:v1: key in the compose Redis"
say "$keys answer key(s) in the compose Redis"

cluster_web_id="$("${compose[@]}" ps -q web-cluster)"
[ -n "$cluster_web_id" ] || fail "the cluster profile started no web-cluster"
cluster_url="http://127.0.0.1:$cluster_port"
wait_ready "$cluster_url" "$cluster_web_id"
grep -q '"mode":"cluster"' "$tmp/ready.json" || fail "web-cluster is not on the Redis Cluster: $(cat "$tmp/ready.json")"
# redis-cluster-init ends when the slots are assigned; every node then takes a moment to agree that
# the cluster is up (until then a command may be refused, and the service answers BYPASS).
cluster_ok() {
  for n in 1 2 3 4 5 6; do
    "${compose[@]}" exec -T "redis-node-$n" redis-cli cluster info | tr -d '\r' | grep -qx 'cluster_state:ok' || return 1
  done
}
for _ in $(seq 1 60); do cluster_ok && break; sleep 0.5; done
cluster_ok || fail "the Redis Cluster's nodes did not all report cluster_state:ok within 30 s"
"${compose[@]}" exec -T redis-node-1 redis-cli cluster info | tr -d '\r' | grep -qx 'cluster_known_nodes:6' \
  || fail "the Redis Cluster does not know its six nodes"
say "web-cluster reaches the six-node Redis Cluster"
missing="$(settings_reached "$cluster_web_id")" || fail "web-cluster did not get $missing from the env file"
miss_then_hit "$cluster_url" "bremen"
# Every node's keys (a replica repeats its master's): the answer lives on one master and its replica.
cluster_keys="$(for n in 1 2 3 4 5 6; do "${compose[@]}" exec -T "redis-node-$n" redis-cli --scan --pattern 'places:v1:*'; done | tr -d '\r' | sort -u | wc -l)"
[ "$cluster_keys" -ge 1 ] || fail "no places:v1: key in the Redis Cluster"
say "$cluster_keys answer key(s) in the Redis Cluster"

"${compose[@]}" stop >/dev/null 2>&1 || fail "compose stop"
for id in "$web_id" "$redis_id" "$cluster_web_id"; do
  code="$(docker inspect -f '{{.State.ExitCode}}' "$id")"
  [ "$code" = 0 ] || { docker logs "$id" >&2 2>&1; fail "$(docker inspect -f '{{.Name}}' "$id") exited $code on stop"; }
done
"${compose[@]}" down -v --remove-orphans >"$tmp/compose-down.log" 2>&1 || { cat "$tmp/compose-down.log" >&2; fail "compose down"; }
compose=()
left="$(docker ps -aq --filter "label=com.docker.compose.project=$run_id"; docker network ls -q --filter "label=com.docker.compose.project=$run_id"; docker volume ls -q --filter "label=com.docker.compose.project=$run_id")"
[ -z "$left" ] || fail "compose down left: $left"
say "compose: web, redis and web-cluster exit 0 on stop; down removed containers, network and volume"
compose_s=$((SECONDS - t))

say "timings: build ${build_s} s, Heroku-style run ${heroku_s} s, compose ${compose_s} s, total $(elapsed "$t_start")"
say "IMAGE SIZE: ${size_mb} MB (base: $base)"
say "all Docker checks passed"
