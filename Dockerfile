# Kabar container image: the compiled single binary on a slim glibc base, run as a non-root user.
#
#   docker build -t kabar .
#   docker run -p 8000:8000 -v kabar-data:/data \
#     -e ENVIRONMENT=production -e SECRET_KEY=... -e FIRST_SUPERUSER_PASSWORD=... kabar
#
# Why three stages: the project's lockfile is npm's package-lock.json (there is no bun.lock), and
# the official Bun image has no npm. So
#   1. `deps`  runs `npm ci` in a Node image: the exact dependency tree the lockfile pins, the same
#              command CI uses, and it fails if package.json and the lockfile disagree. Only the
#              runtime dependencies (--omit=dev), no install scripts: they are plain JavaScript, so
#              this folder is the same on every CPU architecture.
#   2. `build` compiles with the official Bun image at the version package.json pins for `bun`
#              (1.4.4), using package.json's own `build` script, so the flags stay in one place.
#              (`bun install --frozen-lockfile` would have to migrate package-lock.json, and the
#              `bun` npm package needs an install script to fetch its platform binary: both are
#              avoided.)
#   3. runtime is debian slim with only the binary: glibc (the binary needs libc, libm, libdl,
#              libpthread), bash for the health check, no Bun, no Node, no node_modules.
# Keep the Bun tag in step with "bun" in package.json's devDependencies.

# ---- 1. dependencies, exactly as package-lock.json pins them
FROM node:22-bookworm-slim AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# ---- 2. compile the single binary
FROM oven/bun:1.4.4 AS build
WORKDIR /src
COPY --from=deps /src/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY src ./src
# `bun run build` = bun build src/main.ts --compile ... --outfile dist/kabar; then a smoke run.
RUN bun run build && ./dist/kabar --help > /dev/null

# ---- 3. runtime: the binary alone
FROM debian:bookworm-slim AS runtime
# A fixed numeric uid/gid (10001) so volume ownership and `runAsNonRoot` checks are predictable.
RUN groupadd --system --gid 10001 kabar \
  && useradd --system --uid 10001 --gid kabar --home-dir /data --no-create-home \
    --shell /usr/sbin/nologin kabar \
  && mkdir -p /data \
  && chown kabar:kabar /data \
  && chmod 0750 /data
# Owned by root and not writable by the service user.
COPY --from=build /src/dist/kabar /usr/local/bin/kabar

# DATA_DIR holds the SQLite database (DATA_DIR/kabar.db) and, in ENVIRONMENT=local, the generated
# secret key, so tokens survive restarts. ENVIRONMENT is not set here: it defaults to local like the
# binary; production deployments set ENVIRONMENT, SECRET_KEY and FIRST_SUPERUSER_PASSWORD.
ENV DATA_DIR=/data \
    HOST=0.0.0.0 \
    PORT=8000
WORKDIR /data
# Declared after the chown so a new named volume starts owned by the service user.
VOLUME ["/data"]
USER 10001:10001
EXPOSE 8000
# The server stops on SIGTERM: sockets closed with 1001, exit 0 within a few seconds.
STOPSIGNAL SIGTERM

# No curl in the image: bash's /dev/tcp sends one HTTP/1.1 request to the health route and the
# check passes only when the body says "healthy". ${PORT:-8000} follows a PORT override.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-8000} && printf 'GET /api/v1/ws/health HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && grep -q '\"status\":\"healthy\"' <&3"]

ENTRYPOINT ["/usr/local/bin/kabar"]
