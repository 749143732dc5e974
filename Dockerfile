# syntax=docker/dockerfile:1
# One image for every Vigil process: the distributed workers (`run`), the ClickHouse sink (`sink`), the device gateway
# (`gateway`), the audit checkpoint signer (`audit checkpoint --every S`), the drift guard (`models guard`) and the
# CLI. The command is the image's argument: `docker run IMAGE run pipelines/vitals.ts`.
#
# NOT BUILT IN CI: the project's machines have no Docker engine. infra/image.test.ts checks this file's properties
# statically (multi-stage, pinned bases, production dependencies only, non-root, healthcheck) on every `npm test`.
#
#   docker build -t vigil:dev .
#   docker run --rm --read-only --tmpfs /tmp -v vigil-data:/app/.vigil vigil:dev --help
#
# TypeScript runs as it is through tsx's loader (bin/vigil.js): tsx is a production dependency, there is no build
# step, and the runtime stage holds the source and the production node_modules only.

ARG NODE_VERSION=20.20.2
ARG NPM_VERSION=11.19.1

# --- build: production dependencies, with the native addons compiled (node-rdkafka builds its librdkafka) ---------
FROM node:${NODE_VERSION}-bookworm AS build
ARG NPM_VERSION
# librdkafka's TLS and SASL (SCRAM, OAUTHBEARER) link OpenSSL; compression links zlib.
RUN apt-get update \
  && apt-get install -y --no-install-recommends build-essential python3 libssl-dev zlib1g-dev \
  && rm -rf /var/lib/apt/lists/*
# npm 11 honours package.json's allowScripts (only node-rdkafka, esbuild and chdb run install scripts); onnxruntime-node
# ships its CPU binaries and must not fetch anything.
RUN npm install -g "npm@${NPM_VERSION}"
ENV ONNXRUNTIME_NODE_INSTALL=skip
WORKDIR /app
COPY package.json package-lock.json ./
# Left out of the image: librdkafka's source and objects (466 MB; the addon links build/deps/*.so only) and
# onnxruntime's macOS and Windows binaries (220 MB).
RUN npm ci --omit=dev --no-audit --no-fund \
  && rm -rf node_modules/node-rdkafka/deps node_modules/node-rdkafka/build/deps/*.a \
  && rm -rf node_modules/onnxruntime-node/bin/napi-v6/darwin node_modules/onnxruntime-node/bin/napi-v6/win32 \
  && npm cache clean --force
COPY . .

# --- runtime: the slim base, the source and the production node_modules, owned by root and run by a non-root user ---
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
# librdkafka's shared libraries need OpenSSL at run time; CA certificates for TLS to managed Kafka, registry, ClickHouse.
RUN apt-get update \
  && apt-get install -y --no-install-recommends libssl3 ca-certificates \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
  VIGIL_METRICS_HOST=0.0.0.0 \
  VIGIL_HEALTH_PORT=9464 \
  ONNXRUNTIME_NODE_INSTALL=skip
WORKDIR /app
# The code is root's and read-only to the process; only /tmp (tsx's compile cache) and /app/.vigil (default key and
# store folders) are written, so the container runs with a read-only root file system and these two as volumes.
COPY --from=build --chown=root:root /app /app
RUN mkdir -p /app/.vigil && chown 1000:1000 /app/.vigil
VOLUME ["/tmp", "/app/.vigil"]
# The node user of the base image, by number so an orchestrator can verify it is not root (runAsNonRoot).
USER 1000:1000
# Worker /metrics 9464, sink 9465, gateway HTTPS 8443 and /metrics 9466, drift guard 9467.
EXPOSE 8443 9464 9465 9466 9467
# /healthz on this process's metrics port (VIGIL_HEALTH_PORT: 9464 for a worker; set it per process).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.VIGIL_HEALTH_PORT}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# V8 flags as runtime/node-flags.ts states them (a larger young generation: see there); infra/image.test.ts checks.
ENTRYPOINT ["node", "--max-semi-space-size=64", "bin/vigil.js"]
CMD ["--help"]
