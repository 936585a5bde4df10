#!/usr/bin/env bash
# Installs the package-manager clients and the browser that the `integration` tests drive,
# at the exact versions below, so that a new client release cannot turn main red overnight.
# Upgrade a client on purpose: change its version here, run `cargo test --test integration`,
# and commit both.
#
# npm, pip and cargo are the machine's own. pnpm, yarn (berry) and bun come from the npm
# registry into $DEPFW_CLIENTS (default ~/.local/depfw-clients, whose bin/ .ci/run puts
# first on the PATH); uv and poetry from PyPI into a virtualenv there, linked into the same
# bin/. Chromium and chromedriver come from Debian (its current stable build: the browser
# test speaks plain WebDriver and does not depend on the version). Idempotent: a client
# already at its pinned version is left alone. Any failure stops the script.
set -euo pipefail

PNPM_VERSION=12.23.0
YARN_VERSION=4.18.1   # @yarnpkg/cli-dist, yarn berry
BUN_VERSION=1.4.5
UV_VERSION=0.13.9
POETRY_VERSION=2.5.1
MCP_SDK_VERSION=2.3.0   # the official MCP Python SDK (`mcp` on PyPI): `depfw mcp`'s test client

prefix="${DEPFW_CLIENTS:-$HOME/.local/depfw-clients}"
bin="$prefix/bin"
mkdir -p "$bin"
export PATH="$bin:$PATH"

# The version a client reports, or nothing.
version_of() { "$@" 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -n 1 || true; }

npm_pkgs=()
[ "$(version_of "$bin/pnpm" --version)" = "$PNPM_VERSION" ] || npm_pkgs+=("pnpm@$PNPM_VERSION")
[ "$(version_of "$bin/yarn" --version)" = "$YARN_VERSION" ] || npm_pkgs+=("@yarnpkg/cli-dist@$YARN_VERSION")
[ "$(version_of "$bin/bun" --version)" = "$BUN_VERSION" ] || npm_pkgs+=("bun@$BUN_VERSION")
if [ ${#npm_pkgs[@]} -gt 0 ]; then
  echo "install-clients: npm install ${npm_pkgs[*]}"
  npm install --global --prefix "$prefix" --no-audit --no-fund "${npm_pkgs[@]}"
fi

venv="$prefix/venv"
if [ "$(version_of "$bin/uv" --version)" != "$UV_VERSION" ] \
  || [ "$(version_of "$bin/poetry" --version)" != "$POETRY_VERSION" ]; then
  echo "install-clients: pip install uv==$UV_VERSION poetry==$POETRY_VERSION"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "uv==$UV_VERSION" "poetry==$POETRY_VERSION"
  ln -sf "$venv/bin/uv" "$bin/uv"
  ln -sf "$venv/bin/poetry" "$bin/poetry"
fi

# The MCP Python SDK in a virtualenv of its own (its dependencies stay apart from uv's
# and poetry's), its interpreter started by bin/mcp-python for integration/mcp.rs.
mcp_venv="$prefix/mcp-venv"
mcp_sdk_version() { "$bin/mcp-python" -c 'import importlib.metadata as m; print(m.version("mcp"))' 2>/dev/null || true; }
if [ "$(mcp_sdk_version)" != "$MCP_SDK_VERSION" ]; then
  echo "install-clients: pip install mcp==$MCP_SDK_VERSION"
  [ -x "$mcp_venv/bin/python" ] || python3 -m venv "$mcp_venv"
  "$mcp_venv/bin/python" -m pip install --quiet --disable-pip-version-check "mcp==$MCP_SDK_VERSION"
  # A wrapper, not a link: Python finds its virtualenv next to the path it was started as.
  printf '#!/bin/sh\nexec "%s/bin/python" "$@"\n' "$mcp_venv" > "$bin/mcp-python"
  chmod 755 "$bin/mcp-python"
fi

have() { command -v "$1" >/dev/null 2>&1; }
if ! have chromedriver || ! { have chromium || have chromium-browser || have google-chrome; }; then
  echo "install-clients: apt-get install chromium chromium-driver"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# What the tests will run, checked against the pins.
check() {
  local name=$1 want=$2 got
  got=$(version_of "$bin/$name" --version)
  printf '%-8s %-10s %s\n' "$name" "${got:-missing}" "$bin/$name"
  if [ "$got" != "$want" ]; then
    echo "install-clients: $name is ${got:-missing}, want $want" >&2
    exit 1
  fi
}
check pnpm "$PNPM_VERSION"
check yarn "$YARN_VERSION"
check bun "$BUN_VERSION"
check uv "$UV_VERSION"
check poetry "$POETRY_VERSION"
got=$(mcp_sdk_version)
printf '%-8s %-10s %s\n' "mcp-sdk" "${got:-missing}" "$bin/mcp-python"
if [ "$got" != "$MCP_SDK_VERSION" ]; then
  echo "install-clients: the MCP Python SDK is ${got:-missing}, want $MCP_SDK_VERSION" >&2
  exit 1
fi
for c in npm pip cargo chromium chromedriver; do
  printf '%-8s %s\n' "$c" "$(command -v "$c" >/dev/null && "$c" --version 2>/dev/null | head -n 1 || echo missing)"
done
