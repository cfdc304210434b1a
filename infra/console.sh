#!/usr/bin/env bash
# The web console (console/): its npm packages and its build.
#   infra/console.sh install   npm ci, when package-lock.json changed (stamp)
#   infra/console.sh build     install, then `vite build` into console/dist,
#                              which the api function embeds when it is built
# The build is quick (seconds); the api's build script notices a new dist.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CONSOLE="$ROOT/console"

say() { printf 'console: %s\n' "$*"; }
die() { printf 'console: error: %s\n' "$*" >&2; exit 1; }

install() {
  command -v npm >/dev/null 2>&1 || die "npm not found (the console is built with Node.js)"
  local stamp="$CONSOLE/node_modules/.steward-installed" want
  want=$(sha256sum "$CONSOLE/package-lock.json" | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "installing the console's npm packages (npm ci)"
    (cd "$CONSOLE" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  fi
}

build() {
  install
  say "building console/dist"
  (cd "$CONSOLE" && npm run --silent build -- --logLevel warn)
  [ -f "$CONSOLE/dist/index.html" ] || die "console/dist/index.html missing after the build"
}

case "${1:-}" in
  install) install ;;
  build) build ;;
  *) die "usage: infra/console.sh install|build" ;;
esac
