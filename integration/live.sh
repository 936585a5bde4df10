#!/usr/bin/env bash
# Opt-in, not run in CI: depfw against the PUBLIC registries (npm, PyPI, crates.io),
# installing real packages with the real npm, pip and cargo clients. Needs network access to
# the registries and python3 (to read `cargo metadata`). Usage: integration/live.sh [port]
#
# On failure the scratch directory, with depfw's own log, is kept and its path printed.
set -euo pipefail
port="${1:-17878}"
root="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d)"
pid=""

finish() {
  local status=$?
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  if [ "$status" -eq 0 ]; then
    rm -rf "$tmp"
  else
    echo "live.sh: FAILED (exit $status); depfw's log, last lines:" >&2
    tail -n 40 "$tmp/depfw.log" >&2 2>/dev/null || true
    echo "live.sh: everything is kept in $tmp" >&2
  fi
}
trap finish EXIT

cat > "$tmp/depfw.toml" <<TOML
[server]
listen = "127.0.0.1:$port"
data-dir = "$tmp/data"
TOML

# Wherever cargo puts its build (CARGO_TARGET_DIR, build.target-dir or ./target).
cargo build --quiet --manifest-path "$root/Cargo.toml" --bin depfw
target_dir="$(cargo metadata --quiet --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
depfw="$target_dir/debug/depfw"
[ -x "$depfw" ] || { echo "live.sh: no depfw binary at $depfw" >&2; exit 1; }

"$depfw" serve --config "$tmp/depfw.toml" > "$tmp/depfw.log" 2>&1 &
pid=$!
up=""
for _ in $(seq 100); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "live.sh: depfw serve exited before it came up" >&2
    exit 1
  fi
  if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
    up=yes
    break
  fi
  sleep 0.2
done
[ -n "$up" ] || { echo "live.sh: depfw serve did not answer /healthz on port $port within 20 s" >&2; exit 1; }
echo "live.sh: depfw serve is up on 127.0.0.1:$port (log: $tmp/depfw.log)"

mkdir "$tmp/project" && cd "$tmp/project"
echo '{"name":"live","version":"1.0.0","private":true}' > package.json
: > "$tmp/globalnpmrc"
npm install is-odd@3 @isaacs/string-locale-compare \
  --registry="http://127.0.0.1:$port/npm/" --cache="$tmp/npm-cache" \
  --userconfig=/dev/null --globalconfig="$tmp/globalnpmrc" --no-audit --no-fund
node -e 'console.log(require("is-odd")(3) ? "is-odd works" : "FAIL")'
grep -q "\"resolved\": \"http://127.0.0.1:$port/npm/is-odd/-/" package-lock.json
echo "live npm install through depfw: OK"

# PyPI: pip from depfw's simple index; files come through depfw, hash-checked.
python3 -m pip install --no-cache-dir --disable-pip-version-check --quiet \
  --index-url "http://127.0.0.1:$port/pypi/simple/" --target "$tmp/site" six==1.16.0
PYTHONPATH="$tmp/site" python3 -c 'import six; assert six.__version__ == "1.16.0"'
echo "live pip install through depfw: OK"

# crates.io: cargo with crates-io replaced by depfw's sparse index, fresh CARGO_HOME.
mkdir -p "$tmp/crate/src" && cd "$tmp/crate"
printf '[package]\nname = "live"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\nitoa = "1"\n' > Cargo.toml
echo 'fn main() { println!("{}", itoa::Buffer::new().format(42)); }' > src/main.rs
CARGO_HOME="$tmp/cargo-home" cargo fetch --quiet \
  --config 'source.crates-io.replace-with="depfw"' \
  --config "source.depfw.registry=\"sparse+http://127.0.0.1:$port/cargo/index/\""
grep -q 'name = "itoa"' Cargo.lock
echo "live cargo fetch through depfw: OK"
