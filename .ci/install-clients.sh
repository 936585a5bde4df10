#!/usr/bin/env bash
# Installs the package-manager clients the integration tests drive, where missing.
# npm, pip and cargo are on the machine; pnpm, yarn (berry) and bun come from the npm
# registry, uv and poetry from PyPI, chromium from Debian. Idempotent.
set -euo pipefail
have() { command -v "$1" >/dev/null 2>&1; }
NPM_PREFIX="${NPM_PREFIX:-$HOME/.local/depfw-clients}"
mkdir -p "$NPM_PREFIX"
export PATH="$NPM_PREFIX/bin:$HOME/.local/bin:$PATH"
missing=()
have pnpm || missing+=("pnpm@10")
have yarn || missing+=("@yarnpkg/cli-dist@4")
have bun || missing+=("bun@1")
if [ ${#missing[@]} -gt 0 ]; then
  npm install --global --prefix "$NPM_PREFIX" --no-audit --no-fund "${missing[@]}" || echo "warning: npm client install failed: ${missing[*]}"
fi
pymissing=()
have uv || pymissing+=("uv")
have poetry || pymissing+=("poetry")
if [ ${#pymissing[@]} -gt 0 ]; then
  pip install --quiet --user "${pymissing[@]}" || echo "warning: pip client install failed: ${pymissing[*]}"
fi
# Headless Chromium and its WebDriver for the admin page's browser test.
if ! have chromium || ! have chromedriver; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
    || echo "warning: chromium install failed"
fi
for c in chromium chromedriver; do printf '%-12s %s\n' "$c" "$(command -v $c || echo missing)"; done
for c in npm pnpm yarn bun pip uv poetry cargo; do
  printf '%-7s %s\n' "$c" "$(command -v $c >/dev/null 2>&1 && $c --version 2>/dev/null | head -1 || echo missing)"
done
