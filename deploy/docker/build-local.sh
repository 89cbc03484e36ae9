#!/usr/bin/env bash
# Builds the ga-collector image where no base image can be pulled, and tries it.
#
# The Dockerfile's base is node:20.20.2-bookworm-slim from Docker Hub. Here a
# stand-in is made instead: a debootstrapped Debian 12 (minbase) with this
# machine's node and npm and a `node` user (uid 1000), as the official image
# has, imported as ga-collector-base:local and passed as NODE_IMAGE. The build
# itself is the real Dockerfile, run by a Docker engine (Debian's docker.io)
# that this script starts with its own data root and socket and stops again.
# Then the image is run against the fake Google and the local PostgreSQL: it
# must turn healthy (HEALTHCHECK), answer /readyz, fetch, run as uid 1000, and
# exit 0 on `docker stop`.
#
#   bash deploy/docker/build-local.sh       (from the repository root, as root)
#
# Needs: Debian packages docker.io and debootstrap, the Debian archive for the
# first run, the npm registry (npm ci inside the build), node/npm, and
# PostgreSQL at $TEST_DATABASE_ADMIN_URL (default postgresql://postgres@127.0.0.1:5432/postgres).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
DIR="${GA_DOCKER_TEST_DIR:-/var/tmp/ga-collector-docker}"
ADMIN_URL="${TEST_DATABASE_ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
BASE=ga-collector-base:local
IMAGE=ga-collector:local
SOCK="$DIR/docker.sock"
DB="ga_docker_test_$$"
NAME="ga-collector-test-$$"

say() { printf '%s\n' "$*"; }
die() { say "FAIL  $*"; exit 1; }
for tool in dockerd debootstrap node npm psql; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install -y docker.io debootstrap postgresql-client)"
done
[[ $(id -u) -eq 0 ]] || die "must run as root"
mkdir -p "$DIR"
docker() { command docker -H "unix://$SOCK" "$@"; }

dockerd_pid="" fake_pid=""
cleanup() {
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  [[ -n "$fake_pid" ]] && kill "$fake_pid" 2>/dev/null || true
  psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
  if [[ -n "$dockerd_pid" ]]; then
    kill "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.2; done
    umount "$DIR/exec/netns/default" 2>/dev/null || true
  fi
  rm -rf "$DIR/build"
}
trap cleanup EXIT

# --- a Docker engine of our own ----------------------------------------------------
# No bridge and no iptables (none may exist here): builds and the test run use
# the host's network.
# Where overlay mounts are not allowed (nested containers), the vfs storage
# driver (plain copies: slower, bigger) is tried next.
start_dockerd() {
  dockerd --data-root "$DIR/data$1" --exec-root "$DIR/exec" --pidfile "$DIR/dockerd.pid" \
    -H "unix://$SOCK" --bridge=none --iptables=false --ip-masq=false ${1:+--storage-driver=$1} >"$DIR/dockerd.log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 1 100); do
    docker info >/dev/null 2>&1 && return 0
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.2
  done
  kill "$dockerd_pid" 2>/dev/null; wait "$dockerd_pid" 2>/dev/null || true
  dockerd_pid=""
  umount "$DIR/exec/netns/default" 2>/dev/null || true
  return 1
}
start_dockerd "" || start_dockerd vfs || { tail -n 20 "$DIR/dockerd.log"; die "dockerd did not start (overlay2 nor vfs)"; }
say "PASS  dockerd $(docker version --format '{{.Server.Version}}') started (storage driver $(docker info --format '{{.Driver}}'))"

# --- the stand-in base image -----------------------------------------------------------
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  if [[ ! -f "$DIR/rootfs/.complete" ]]; then
    rm -rf "$DIR/rootfs"
    debootstrap --variant=minbase --include=ca-certificates,libstdc++6 bookworm "$DIR/rootfs" "$MIRROR" \
      >"$DIR/debootstrap.log" 2>&1 || { tail -n 20 "$DIR/debootstrap.log"; die "debootstrap"; }
    touch "$DIR/rootfs/.complete"
  fi
  R="$DIR/rootfs"
  install -m 0755 "$(command -v node)" "$R/usr/local/bin/node"
  npm_dir="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
  rm -rf "$R/usr/local/lib/node_modules/npm" && mkdir -p "$R/usr/local/lib/node_modules"
  cp -a "$npm_dir" "$R/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$R/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$R/usr/local/bin/npx"
  chroot "$R" sh -c 'getent passwd node >/dev/null || { groupadd -g 1000 node && useradd -u 1000 -g node -m -s /bin/bash node; }'
  # Where this machine reaches the npm registry through a TLS-inspecting
  # proxy, its extra CAs (/usr/local/share/ca-certificates) must be trusted
  # in the build too; node reads them from NODE_EXTRA_CA_CERTS.
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$R/usr/local/share/ca-certificates/"
    chroot "$R" update-ca-certificates >/dev/null 2>&1
  fi
  tar -C "$R" --exclude=./.complete -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt' -c 'CMD ["node"]' - "$BASE" >/dev/null
fi
say "PASS  base $BASE: $(docker run --rm --network=host "$BASE" sh -c 'node --version; npm --version' | tr '\n' ' ')"

# --- the real Dockerfile ---------------------------------------------------------------------
# The classic builder: BuildKit in this engine would try to resolve the base
# image on a registry.
if DOCKER_BUILDKIT=0 docker build --network=host --build-arg "NODE_IMAGE=$BASE" -t "$IMAGE" . >"$DIR/build.log" 2>&1; then
  say "PASS  docker build ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
else
  tail -n 30 "$DIR/build.log"; die "docker build (log: $DIR/build.log)"
fi
[[ "$(docker image inspect -f '{{.Config.User}}' "$IMAGE")" == node ]] && say "PASS  image user is node" || die "image user is not node"
# .dockerignore keeps sources, tests, deploy files and keys out of the build context
leftovers="$(docker run --rm --network=host --entrypoint sh "$IMAGE" -c \
  'ls -d /app/src /app/test /app/deploy /app/.git /app/packages /app/node_modules/@ga-collector 2>/dev/null; find / -xdev \( -name "google-key*.json" -o -name "*.pem" -path "/app/*" \) 2>/dev/null' || true)"
[[ -z "$leftovers" ]] && say "PASS  no sources, tests, deploy files or keys in the image" || die "in the image: $leftovers"

# --- run it ----------------------------------------------------------------------------------
rm -rf "$DIR/build" && mkdir -p "$DIR/build/secrets"
[[ -d node_modules ]] || npm ci --no-audit --no-fund >/dev/null
# the fake Google (a workspace package) first: the demo is type-checked against it
npm run build --workspace=@ga-collector/fake-google >/dev/null
npx tsc -p tsconfig.json --outDir "$DIR/build/dist"
node packages/fake-google/dist/cli.js --port 0 --key-out "$DIR/build/secrets/google-key.json" \
  --property 123456789:UTC --property 987654321:America/Los_Angeles >"$DIR/build/fake.out" 2>&1 &
fake_pid=$!
for _ in $(seq 1 50); do grep -q tokenUrl "$DIR/build/fake.out" 2>/dev/null && break; sleep 0.2; done
fake_url="$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8").split("\n")[0]).url)' "$DIR/build/fake.out")"
chmod 0444 "$DIR/build/secrets/google-key.json"   # as README says: readable by uid 1000
http_port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
psql -q "$ADMIN_URL" -c "CREATE DATABASE $DB" >/dev/null
db_url="$(node -e 'const u=new URL(process.argv[1]);u.pathname="/"+process.argv[2];console.log(u.href)' "$ADMIN_URL" "$DB")"

docker run -d --name "$NAME" --network=host \
  -e "DATABASE_URL=$db_url" -e CREDENTIALS_DIRECTORY=/run/secrets \
  -e "GA_COLLECTOR_TOKEN_URL=$fake_url/token" -e "GA_COLLECTOR_API_ROOT_URL=$fake_url/" \
  -e "GA_COLLECTOR_HTTP_PORT=$http_port" \
  -v "$PWD/deploy/config.example.yaml:/etc/ga-collector/config.yaml:ro" \
  -v "$DIR/build/secrets/google-key.json:/run/secrets/google-key.json:ro" \
  "$IMAGE" run --config /etc/ga-collector/config.yaml >/dev/null

health=""
for _ in $(seq 1 90); do
  health="$(docker inspect -f '{{.State.Health.Status}}' "$NAME" 2>/dev/null || echo gone)"
  [[ "$health" == healthy || "$health" == gone ]] && break
  sleep 1
done
[[ "$health" == healthy ]] || { docker logs "$NAME" 2>&1 | tail -n 20; die "container is $health, not healthy"; }
say "PASS  HEALTHCHECK: healthy"
curl_like() { node -e 'require("http").get(process.argv[1],r=>{let b="";r.on("data",d=>b+=d);r.on("end",()=>{process.stdout.write(b);process.exit(r.statusCode===200?0:1)})}).on("error",()=>process.exit(1))' "$1"; }
curl_like "http://127.0.0.1:$http_port/healthz" >/dev/null && say "PASS  /healthz 200" || die "/healthz"
curl_like "http://127.0.0.1:$http_port/readyz" >/dev/null && say "PASS  /readyz 200" || die "/readyz"
fetched=false
for _ in $(seq 1 60); do
  if curl_like "http://127.0.0.1:$http_port/metrics" | grep -q '^ga_collector_fetch_runs_total{property="987654321",report="daily",outcome="success"} [1-9]'; then fetched=true; break; fi
  sleep 1
done
$fetched && say "PASS  fetched (ga_collector_fetch_runs_total success)" || die "no successful fetch"
uid="$(docker exec "$NAME" id -u)"
[[ "$uid" == 1000 ]] && say "PASS  runs as uid 1000" || die "runs as uid $uid"
pid1="$(docker exec "$NAME" cat /proc/1/cmdline | tr '\0' ' ')"
[[ "$pid1" == "node --max-semi-space-size=2 dist/main.js run "* ]] && say "PASS  PID 1 is the daemon ($pid1)" || die "PID 1 is $pid1"
# SIGTERM goes to PID 1: an idle daemon has nothing in flight and must be gone
# in a few seconds, far below the 30 s grace.
t0="$(date +%s%N)"
docker stop -t 45 "$NAME" >/dev/null
stop_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
code="$(docker inspect -f '{{.State.ExitCode}}' "$NAME")"
[[ "$code" == 0 ]] || { docker logs "$NAME" 2>&1 | tail -n 10; die "exit code $code after docker stop"; }
((stop_ms < 10000)) || die "docker stop took $stop_ms ms"
docker logs "$NAME" 2>&1 | grep -q '"event":"shutdown","signal":"SIGTERM"' || die "no shutdown log line for SIGTERM"
say "PASS  docker stop: exit 0 in $stop_ms ms ($(docker logs "$NAME" 2>&1 | grep -c '"event":"stopped"') stopped event)"
say "deploy/docker/build-local.sh: image built and working (base: a local stand-in for node:20.20.2-bookworm-slim)"
