#!/usr/bin/env bash
# Opt-in, not run in CI: depfw against the PUBLIC npm registry, installing real packages
# with the real npm client. Needs network access and the `depfw serve` command wired.
# Usage: integration/live.sh [port]
set -euo pipefail
port="${1:-17878}"
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$tmp"' EXIT

cat > "$tmp/depfw.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
data-dir = "$tmp/data"
TOML

cargo build --quiet --manifest-path "$root/Cargo.toml" --bin depfw
"$root/target/debug/depfw" serve --config "$tmp/depfw.toml" > "$tmp/depfw.log" 2>&1 &
pid=$!
for _ in $(seq 50); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done

mkdir "$tmp/project" && cd "$tmp/project"
echo '{"name":"live","version":"1.0.0","private":true}' > package.json
: > "$tmp/globalnpmrc"
npm install is-odd@3 @isaacs/string-locale-compare \
  --registry="http://127.0.0.1:$port/npm/" --cache="$tmp/npm-cache" \
  --userconfig=/dev/null --globalconfig="$tmp/globalnpmrc" --no-audit --no-fund
node -e 'console.log(require("is-odd")(3) ? "is-odd works" : "FAIL")'
grep -q "\"resolved\": \"http://127.0.0.1:$port/npm/is-odd/-/" package-lock.json
echo "live npm install through depfw: OK"
