# node:24-bookworm-slim (Node 24 LTS, as engines and .nvmrc say) rather than alpine: glibc and
# Debian 12 match the machines where CI and the tests run, so the image executes the same Node build
# and native-binary variants that were tested. Alpine would save ~40 MB but swaps in musl, which
# nothing here is tested against.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# No install scripts: the compiler needs none (the same dist/ comes out with and without them), and
# they would run third-party code (telemetry included) at build time.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY nest-cli.json tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Production dependencies in their own stage: it depends only on the lockfile, so a source change
# reuses this layer. No runtime dependency needs an install script, and skipping them keeps
# telemetry hooks (@scarf/scarf via swagger-ui-dist) out of the build. --omit=optional drops
# TypeScript (24 MB), which @nestjs/swagger names as an optional peer and npm would otherwise keep;
# no runtime dependency is optional otherwise (CI checks the image holds no build tool).
FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production
# npm start's heap flags: they keep RSS near what L1_MAX_BYTES counts (docs/l1-memory.md). In
# NODE_OPTIONS, not on the command line, where they would win over an operator's own NODE_OPTIONS:
# `heroku config:set NODE_OPTIONS="--max-semi-space-size=16 --max-old-space-size=512"` raises the heap.
ENV NODE_OPTIONS="--max-semi-space-size=16 --max-old-space-size=256"
# Heroku assigns $PORT at run time and overrides this; 8080 is the default for docker run/compose.
ENV PORT=8080
WORKDIR /app
# Files stay owned by root and only readable by `node`: the process cannot rewrite its own code.
COPY package.json package-lock.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
# Heroku ignores EXPOSE, HEALTHCHECK and STOPSIGNAL; they serve docker run, compose and orchestrators.
EXPOSE 8080
# The slim image has no curl or wget, so Node itself probes liveness where the app really listens:
# PORT, and HOST when it names one address (the container's own, say), else loopback.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "const e=process.env,h=e.HOST||'0.0.0.0';require('http').get({host:h==='0.0.0.0'||h==='::'?'127.0.0.1':h,port:e.PORT||8080,path:'/health/live'},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1)).setTimeout(4000,()=>process.exit(1))"]
STOPSIGNAL SIGTERM
# What `docker image inspect` tells an operator (the version is package.json's: a unit test holds it there).
LABEL org.opencontainers.image.title="places-cache" \
      org.opencontainers.image.description="A caching gateway in front of the OpenStreetMap Nominatim geocoding API" \
      org.opencontainers.image.version="1.0.0" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/places-cache/places-cache"
# Exec form, not `npm start`: node is PID 1 and receives SIGTERM itself, with no npm in between to
# relay it, so Nest's shutdown hooks close Redis and drain requests within Heroku's 30 s grace period.
CMD ["node", "dist/main.js"]
