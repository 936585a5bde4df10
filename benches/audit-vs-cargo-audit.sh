#!/usr/bin/env bash
# depfw audit vs cargo-audit on the same Cargo.lock and the same RustSec data, offline.
#
#   benches/audit-vs-cargo-audit.sh [Cargo.lock]
#
# Needs a release build (`cargo build --release --bin depfw`), cargo-audit, and the shared
# data set (DEPFW_SHARED_DATA, default /work/shared/data). depfw runs twice: with a data dir
# holding the RustSec feed (`feeds import`, per-package store lookup) and with no data dir
# (bundled snapshot, decoded whole). Uses hyperfine when installed, else a timing loop.
# Prints the mean times and the ratio cargo-audit / depfw.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${DEPFW_SHARED_DATA:-/work/shared/data}"
lock="${1:-$root/tests/fixtures/lockfiles/public/cargo/advent-of-code-2020/Cargo.lock}"
depfw="$root/target/release/depfw"
runs="${RUNS:-20}"
[ -x "$depfw" ] || { echo "build first: cargo build --release --bin depfw" >&2; exit 2; }

data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT
"$depfw" --data-dir "$data" feeds import "$shared/advisories/rustsec/crates" --name rustsec >/dev/null

# Exit code 1 means findings: not a failure here.
depfw_store="$depfw --data-dir $data audit --format json $lock >/dev/null || true"
depfw_bundled="env -u DEPFW_DATA_DIR $depfw audit --format json $lock >/dev/null || true"
cargo_audit="cargo audit --db $shared/advisories/rustsec-db --no-fetch --stale --json -f $lock >/dev/null 2>&1 || true"

mean_ms() { # command -> mean wall time in ms over $runs runs
  if command -v hyperfine >/dev/null; then
    hyperfine --warmup 2 --runs "$runs" --export-json "$data/h.json" -N "sh -c '$1'" >/dev/null 2>&1 \
      || hyperfine --warmup 2 --runs "$runs" --export-json "$data/h.json" "$1" >/dev/null
    python3 -c "import json;r=json.load(open('$data/h.json'))['results'][0];print(round(r['mean']*1000,1), round((r['user']+r['system'])*1000,1))"
  else
    local start end
    sh -c "$1"
    start=$(date +%s%N)
    for _ in $(seq "$runs"); do sh -c "$1"; done
    end=$(date +%s%N)
    echo $(( (end - start) / runs / 1000000 )) "?"
  fi
}

packages=$(grep -c '^\[\[package\]\]' "$lock")
echo "lockfile: $lock ($packages packages), $runs runs each"
echo "mean wall time, and CPU time (user + system) in parentheses:"
read -r s sc < <(mean_ms "$depfw_store");   echo "depfw (store, per-package lookup): ${s} ms (${sc} ms)"
read -r b bc < <(mean_ms "$depfw_bundled"); echo "depfw (bundled snapshot):          ${b} ms (${bc} ms)"
read -r c cc < <(mean_ms "$cargo_audit");   echo "cargo-audit $(cargo audit --version | awk '{print $2}'):                ${c} ms (${cc} ms)"
python3 -c "print(f'cargo-audit / depfw, wall: {$c/$s:.1f}x (store), {$c/$b:.1f}x (bundled)')"
[ "$cc" = "?" ] || python3 -c "print(f'cargo-audit / depfw, CPU:  {$cc/$sc:.1f}x (store), {$cc/$bc:.1f}x (bundled)')"

