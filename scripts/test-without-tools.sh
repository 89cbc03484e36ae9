#!/usr/bin/env bash
# Runs `npm test` as on a machine with only Node.js: Prometheus, promtool, Chromium and script(1)
# are hidden (bind-mounted over by an empty, non-executable file in a private mount namespace), so
# the tests that need them must skip with a reason and everything else must pass. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
exec unshare --mount --propagation private bash -c '
  set -euo pipefail
  empty=$(mktemp)
  chmod 0644 "$empty"
  for tool in /usr/bin/prometheus /usr/bin/promtool /usr/bin/chromium /usr/bin/script; do
    if [ -e "$tool" ]; then mount --bind "$empty" "$tool"; echo "hidden: $tool"; fi
  done
  unset GA_COLLECTOR_TEST_REQUIRE_TOOLS
  npm test
'
