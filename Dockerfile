# ga-collector image: build with TypeScript, run with production dependencies only.
#   docker build -t ga-collector .
#   docker run --rm -p 127.0.0.1:9464:9464 -e DATABASE_URL=... \
#     -v /path/config.yaml:/etc/ga-collector/config.yaml:ro \
#     -v /path/google-key.json:/run/secrets/google-key.json:ro -e CREDENTIALS_DIRECTORY=/run/secrets \
#     ga-collector run --config /etc/ga-collector/config.yaml
# See deploy/README.md and deploy/docker-compose.yml.

# Pinned: Node.js 20 LTS on Debian 12. Override with --build-arg NODE_IMAGE=...
ARG NODE_IMAGE=node:20.20.2-bookworm-slim

# --- Stage 1: compile TypeScript ----------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# the workspace package's manifest too, so that npm ci links it (the build type-checks the demo
# against the fake Google, packages/fake-google, and builds that first)
COPY package.json package-lock.json ./
COPY packages/fake-google/package.json ./packages/fake-google/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY packages ./packages
COPY src ./src
RUN npm run build

# --- Stage 2: runtime ------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# --omit=optional leaves out what only `ga-collector demo` needs (the embedded PostgreSQL and the
# fake Google, a workspace package not copied here); in this image the demo says so and exits 1.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY migrations ./migrations

# In a container the metrics/health server must listen beyond loopback;
# publish the port only where Prometheus can reach it. The server caps its
# connections and times out idle and slow ones; for HTTPS and basic
# authentication mount a web config file (as Prometheus exporters take it) and
# set GA_COLLECTOR_WEB_CONFIG_FILE to it (README: "HTTPS and basic authentication").
ENV GA_COLLECTOR_HTTP_HOST=0.0.0.0 \
    GA_COLLECTOR_HTTP_PORT=9464
EXPOSE 9464

# The image's unprivileged user (uid 1000). Nothing is written to disk.
USER node

# The slim image has no curl: ask /healthz with node itself. /healthz needs no
# credentials; with HTTPS on (a web config file), plain HTTP is refused and the
# check asks again over HTTPS (its own certificate, on loopback: not verified).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const o={host:'127.0.0.1',port:process.env.GA_COLLECTOR_HTTP_PORT||9464,path:'/healthz',timeout:2000};const ok=r=>process.exit(r.statusCode===200?0:1);const no=()=>process.exit(1);require('http').get(o,ok).on('timeout',no).on('error',()=>require('https').get({...o,rejectUnauthorized:false},ok).on('error',no).on('timeout',no))"]

# node runs as PID 1: the daemon handles SIGTERM/SIGINT itself (graceful
# shutdown within shutdown.graceSeconds) and starts no child processes, so no
# init for signal forwarding or zombie reaping is needed. Give `docker stop`
# more than the grace: `docker stop -t 45` / compose `stop_grace_period: 45s`.
# --max-semi-space-size=2: as dist/main.js's first line (README, Performance)
ENTRYPOINT ["node", "--max-semi-space-size=2", "dist/main.js"]
CMD ["run"]
