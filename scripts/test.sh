#!/usr/bin/env bash
# The whole test suite, on a fresh machine too: installs what is missing (npm packages; Redis, PHP and
# Chromium from Debian's packages when a suite needs them), builds, lints, and runs every suite.
# Usage: npm test            (what CI runs through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
ART="$ROOT/test-artifacts"
mkdir -p "$ART"
rm -f "$ART/vitest.json" "$ART/vitest-uws.json" "$ART/php-summary.json"

log() { printf '\n== %s\n' "$*"; }

apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "cannot install $* : apt-get is not available; install it by hand" >&2
    return 1
  fi
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  if [ -z "${APT_UPDATED:-}" ]; then
    $sudo apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_node_modules() {
  # npm ci when node_modules is missing or older than the lockfile.
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "installing npm packages (npm ci)"
    npm ci --no-audit --no-fund
  fi
}

ensure_redis() {
  export HERALD_TEST_REDIS_URL="${HERALD_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
  if command -v redis-cli >/dev/null 2>&1 && redis-cli -u "$HERALD_TEST_REDIS_URL" ping 2>/dev/null | grep -q PONG; then
    return
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    log "installing redis-server"
    apt_install redis-server
  fi
  log "starting redis-server on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 50); do
    redis-cli -u "$HERALD_TEST_REDIS_URL" ping 2>/dev/null | grep -q PONG && return
    sleep 0.1
  done
  echo "redis did not start" >&2
  exit 1
}

ensure_php() {
  local missing=()
  command -v php >/dev/null 2>&1 || missing+=(php-cli)
  command -v phpunit >/dev/null 2>&1 || missing+=(phpunit)
  # The PHP suite installs the SDK with Composer into a scratch project, offline (StandaloneInstallTest).
  command -v composer >/dev/null 2>&1 || missing+=(composer)
  # The static checks (php_checks below).
  command -v phpcs >/dev/null 2>&1 || missing+=(php-codesniffer)
  command -v phpmd >/dev/null 2>&1 || missing+=(phpmd)
  if command -v php >/dev/null 2>&1; then
    php -m | grep -qi '^curl$' || missing+=(php-curl)
    php -m | grep -qi '^redis$' || missing+=(php-redis)
  else
    missing+=(php-curl php-redis)
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    apt_install "${missing[@]}"
  fi
}

# Static checks of the PHP SDK, its tests and examples/php. PHPStan is not packaged for Debian (bookworm),
# so these are what Debian has: php -l on every file, PHP_CodeSniffer with PSR-12 (sdk/php/phpcs.xml.dist)
# and PHPMD (sdk/php/phpmd.xml.dist). Any violation fails npm test.
php_checks() {
  local failed=0 file out home
  while IFS= read -r -d '' file; do
    out=$(php -d display_errors=stderr -l "$file" 2>&1) || { printf '%s\n' "$out"; failed=1; }
  done < <(find sdk/php/src sdk/php/tests examples/php -name '*.php' -print0)
  (cd sdk/php && phpcs -q --standard=phpcs.xml.dist) || failed=1
  # PDepend (inside PHPMD) caches metrics in ~/.pdepend and can report a file's stale metrics: use a fresh home.
  home=$(mktemp -d)
  (cd sdk/php && HOME="$home" phpmd src,tests,../../examples/php text phpmd.xml.dist) || failed=1
  rm -rf "$home"
  return "$failed"
}

ensure_chromium() {
  export HERALD_CHROMIUM="${HERALD_CHROMIUM:-/usr/bin/chromium}"
  if [ ! -x "$HERALD_CHROMIUM" ]; then
    log "installing chromium"
    apt_install chromium
  fi
}

ensure_node_modules
ensure_redis
[ -d sdk/php ] && ensure_php
[ -d packages/client ] && ensure_chromium

log "build"
npm run build --silent

log "lint"
npm run lint --silent

log "unit and integration tests (vitest)"
status=0
npx vitest run --reporter=default --reporter=json --outputFile="$ART/vitest.json" || status=$?
reports=("$ART/vitest.json")

# README.md's commands as a new user types them, on a fresh clone of the committed tree (about 2 minutes).
log "README commands on a fresh clone (scripts/readme-check.mjs)"
node scripts/readme-check.mjs || status=$?

# The protocol suites again on the optional uWebSockets.js transport (see packages/server/test/helpers.ts).
# It is a devDependency of the bench workspace, so it is there in CI; a platform without a build skips it.
protocol_suites=()
for suite in connect channels heartbeat transport api recovery fanout race demo limits pusher-connect pusher-channels pusher-presence pusher-http pusher-echo pusher-cluster pusher-webhooks; do
  protocol_suites+=("packages/server/test/$suite.test.ts")
  # vitest reads file arguments as filters and ignores one that matches nothing: a renamed suite must not vanish.
  [ -f "packages/server/test/$suite.test.ts" ] || { echo "missing protocol suite $suite.test.ts" >&2; status=1; }
done
if node -e "require('uWebSockets.js')" >/dev/null 2>&1; then
  log "protocol suites on the uWebSockets.js transport (vitest, HERALD_TEST_TRANSPORT=uws)"
  HERALD_TEST_TRANSPORT=uws npx vitest run "${protocol_suites[@]}" \
    --reporter=default --reporter=json --outputFile="$ART/vitest-uws.json" || status=$?
  reports+=("$ART/vitest-uws.json")
else
  log "uWebSockets.js cannot be loaded here: the protocol suites run on the ws transport only"
fi

if [ -d sdk/php/tests ]; then
  log "PHP SDK static checks (php -l, phpcs PSR-12, phpmd)"
  if php_checks; then echo "PHP static checks: no violation"; else status=1; fi
  log "PHP SDK tests (phpunit)"
  node scripts/php-tests.mjs || status=$?
fi

node scripts/summary.mjs "${reports[@]}" || status=$?
exit $status
