#!/usr/bin/env bash
# Boots a Debian 12 container (systemd-nspawn) with real systemd, installs
# ga-collector as deploy/README.md says (/opt/ga-collector, /etc/ga-collector,
# the unit from deploy/systemd/), and checks the unit for real against the
# fake Google of packages/fake-google and the local PostgreSQL:
#   it starts and gets ready; runs as a dynamic non-root user with no
#   capabilities, seccomp and no_new_privs; the key arrives by LoadCredential=;
#   it fetches every configured property; `systemctl reload` (SIGHUP) reloads
#   the config in the same process; a SIGKILL is followed by a restart; `systemctl
#   stop` ends it cleanly (exit 0); `systemd-run ... check` works as README says.
#
#   bash deploy/systemd/test-unit.sh        (from the repository root, as root)
#
# Needs: Debian packages debootstrap and systemd-container, network access to
# the Debian archive for the first run (the base root file system is then kept
# in $GA_UNIT_TEST_DIR), node/npm, and PostgreSQL at $TEST_DATABASE_ADMIN_URL
# (default postgresql://postgres@127.0.0.1:5432/postgres). The container shares
# the host's network, so it reaches the fake Google and PostgreSQL on 127.0.0.1.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO="$PWD"
DIR="${GA_UNIT_TEST_DIR:-/var/tmp/ga-collector-unit-test}"
ADMIN_URL="${TEST_DATABASE_ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DB="ga_unit_test_$$"

say() { printf '%s\n' "$*"; }
die() { say "FAIL  $*"; exit 1; }

for tool in systemd-nspawn debootstrap node npm psql; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install -y debootstrap systemd-container postgresql-client)"
done
[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap, systemd-nspawn)"

fake_pid=""
cleanup() {
  [[ -n "$fake_pid" ]] && kill "$fake_pid" 2>/dev/null || true
  psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
  rm -rf "$DIR/root" "$DIR/build"
}
trap cleanup EXIT

# --- base root file system (kept between runs) --------------------------------
mkdir -p "$DIR"
if [[ ! -f "$DIR/base/.complete" ]]; then
  say "..    debootstrap bookworm into $DIR/base (first run only)"
  rm -rf "$DIR/base"
  debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,libnss-systemd,procps,libstdc++6 \
    bookworm "$DIR/base" "$MIRROR" >"$DIR/debootstrap.log" 2>&1 \
    || { tail -n 20 "$DIR/debootstrap.log"; die "debootstrap"; }
  touch "$DIR/base/.complete"
fi
rm -rf "$DIR/root"
cp -a "$DIR/base" "$DIR/root"
ROOT="$DIR/root"

# --- build and install as README.md says -----------------------------------------
[[ -d node_modules ]] || npm ci --no-audit --no-fund >/dev/null
rm -rf "$DIR/build"
# the fake Google (a workspace package) first: the demo is type-checked against it
npm run build --workspace=@ga-collector/fake-google >/dev/null
npx tsc -p tsconfig.json --outDir "$DIR/build/dist"
install -d "$ROOT/opt/ga-collector" "$ROOT/etc/ga-collector"
cp -r "$DIR/build/dist" migrations package.json package-lock.json "$ROOT/opt/ga-collector/"
(cd "$ROOT/opt/ga-collector" && npm ci --omit=dev --no-audit --no-fund >/dev/null)
install -m 0755 "$(command -v node)" "$ROOT/usr/bin/node"

# the fake Google on a free port; it writes the service account's key
node packages/fake-google/dist/cli.js --port 0 --key-out "$DIR/google-key.json" \
  --property 123456789:UTC --property 987654321:America/Los_Angeles >"$DIR/fake.out" 2>&1 &
fake_pid=$!
for _ in $(seq 1 50); do grep -q tokenUrl "$DIR/fake.out" 2>/dev/null && break; sleep 0.2; done
fake_url="$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1],"utf8").split("\n")[0]).url)' "$DIR/fake.out")" \
  || { cat "$DIR/fake.out"; die "fake Google did not start"; }
http_port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"

psql -q "$ADMIN_URL" -c "CREATE DATABASE $DB" >/dev/null
db_url="$(node -e 'const u=new URL(process.argv[1]);u.pathname="/"+process.argv[2];console.log(u.href)' "$ADMIN_URL" "$DB")"

install -m 0644 deploy/config.example.yaml "$ROOT/etc/ga-collector/config.yaml"
install -m 0600 "$DIR/google-key.json" "$ROOT/etc/ga-collector/google-key.json"
install -m 0600 /dev/null "$ROOT/etc/ga-collector/ga-collector.env"
cat >"$ROOT/etc/ga-collector/ga-collector.env" <<EOF
DATABASE_URL=$db_url
GA_COLLECTOR_TOKEN_URL=$fake_url/token
GA_COLLECTOR_API_ROOT_URL=$fake_url/
GA_COLLECTOR_HTTP_PORT=$http_port
EOF
install -m 0644 deploy/systemd/ga-collector.service "$ROOT/etc/systemd/system/"
ln -s /etc/systemd/system/ga-collector.service "$ROOT/etc/systemd/system/multi-user.target.wants/"

# --- the checks, run inside the container after boot ----------------------------
cat >"$ROOT/root/get.js" <<'EOF'
const [path, port] = process.argv.slice(2);
require('http').get({ host: '127.0.0.1', port, path, timeout: 3000 }, (r) => {
  let b = ''; r.on('data', (d) => (b += d));
  r.on('end', () => { process.stdout.write(b); process.exit(r.statusCode === 200 ? 0 : 1); });
}).on('error', () => process.exit(1));
EOF
cat >"$ROOT/root/unit-test.sh" <<EOF
#!/bin/bash
PORT=$http_port
EOF
cat >>"$ROOT/root/unit-test.sh" <<'EOF'
out=/root/result.txt; : >"$out"
ok() { echo "PASS  $*" >>"$out"; }
bad() { echo "FAIL  $*" >>"$out"; }
t() { local name="$1"; shift; if "$@" >>/root/detail.txt 2>&1; then ok "$name"; else bad "$name"; fi; }
prop() { systemctl show -p "$1" --value ga-collector; }
ready() { for _ in $(seq 1 90); do node /root/get.js /readyz "$PORT" >/dev/null && return 0; sleep 1; done; return 1; }

t "unit starts and /readyz answers 200" ready
pid="$(prop MainPID)"
t "runs as a non-root dynamic user" bash -c "awk '/^Uid:/ { exit !(\$2 >= 61184 && \$2 <= 65519) }' /proc/$pid/status"
t "no capabilities, no_new_privs, seccomp filter" bash -c "grep -q '^CapEff:[[:space:]]*0000000000000000' /proc/$pid/status && grep -q '^NoNewPrivs:[[:space:]]*1' /proc/$pid/status && grep -q '^Seccomp:[[:space:]]*2' /proc/$pid/status"
t "key handed over by LoadCredential= (0400, service user)" bash -c "stat -c '%a %U' /run/credentials/ga-collector.service/google-key.json | grep -qx '400 ga-collector'"
fetched() {
  local m; m="$(node /root/get.js /metrics "$PORT")" || return 1
  for p in 123456789 987654321; do grep -q "^ga_collector_fetch_runs_total{property=\"$p\",report=\"daily\",outcome=\"success\"} [1-9]" <<<"$m" || return 1; done
  grep -q '^ga_collector_token_refreshes_total{.*outcome="success"} [1-9]' <<<"$m"
}
wait_fetched() { for _ in $(seq 1 60); do fetched && return 0; sleep 1; done; return 1; }
t "fetches every property (fetch_runs_total success, token refreshed)" wait_fetched
t "systemd-analyze security (live) <= 2.0" bash -c "systemd-analyze security ga-collector | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' | awk '{ exit !(\$1 <= 2.0) }'"
t "systemctl reload: SIGHUP reloads the config in the same process" bash -c "systemctl reload ga-collector && sleep 2 && [ \"\$(systemctl show -p MainPID --value ga-collector)\" = $pid ] && journalctl -u ga-collector -o cat | grep -q '\"event\":\"reloaded\"'"
kill -KILL "$pid"
restarted() { for _ in $(seq 1 30); do [ "$(prop NRestarts)" = 1 ] && [ "$(prop ActiveState)" = active ] && return 0; sleep 1; done; return 1; }
t "Restart=on-failure: restarted after SIGKILL" restarted
t "ready again after the restart" ready
start="$(date +%s)"
systemctl stop ga-collector
t "systemctl stop: clean exit 0, within TimeoutStopSec" bash -c "[ \"\$(systemctl show -p Result --value ga-collector)\" = success ] && [ \"\$(systemctl show -p ExecMainStatus --value ga-collector)\" = 0 ] && [ \$((\$(date +%s) - $start)) -lt 45 ] && journalctl -u ga-collector -o cat | grep -q '\"event\":\"stopped\"'"
t "systemd-run ... check (README) exits 0" systemd-run --pipe --wait -q -p DynamicUser=yes \
  -p LoadCredential=google-key.json:/etc/ga-collector/google-key.json \
  -p EnvironmentFile=/etc/ga-collector/ga-collector.env \
  /usr/bin/node /opt/ga-collector/dist/main.js check --config /etc/ga-collector/config.yaml
journalctl -u ga-collector -o cat --no-pager >/root/journal.txt 2>&1
echo DONE >>"$out"
systemctl poweroff
EOF
chmod 0755 "$ROOT/root/unit-test.sh"
cat >"$ROOT/etc/systemd/system/unit-test.service" <<'EOF'
[Unit]
After=ga-collector.service
[Service]
Type=oneshot
ExecStart=/root/unit-test.sh
[Install]
WantedBy=multi-user.target
EOF
ln -s /etc/systemd/system/unit-test.service "$ROOT/etc/systemd/system/multi-user.target.wants/"

say "..    booting the container"
rc=0
timeout 600 systemd-nspawn -q --register=no --keep-unit -D "$ROOT" --boot --console=passive \
  </dev/null >"$DIR/nspawn.log" 2>&1 || rc=$?
if ! grep -q '^DONE' "$ROOT/root/result.txt" 2>/dev/null; then
  tail -n 30 "$DIR/nspawn.log"
  die "the container did not finish its checks (systemd-nspawn exit $rc)"
fi
grep -v '^DONE' "$ROOT/root/result.txt"
cp "$ROOT/root/journal.txt" "$ROOT/root/detail.txt" "$DIR/" 2>/dev/null || true
if grep -q '^FAIL' "$ROOT/root/result.txt"; then
  say "      (journal of the service: $DIR/journal.txt, command output: $DIR/detail.txt)"
  exit 1
fi
say "deploy/systemd/test-unit.sh: the unit works under systemd"
