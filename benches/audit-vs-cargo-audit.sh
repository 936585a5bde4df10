#!/usr/bin/env bash
# depfw audit vs cargo-audit on the same Cargo.lock and the same RustSec data, offline.
#
#   benches/audit-vs-cargo-audit.sh [Cargo.lock]
#
# Needs a release build (`cargo build --release --bin depfw`), cargo-audit, and the shared
# data set (DEPFW_SHARED_DATA, default ../shared/data beside the repository). depfw runs
# twice: with a data dir holding the RustSec feed (`feeds import`, per-package store
# lookup; opening sled is most of it) and with no data dir (the default: the bundled
# snapshot, only the scanned crates' advisories decoded). Uses hyperfine when installed,
# else a timing loop.
# Prints the mean times and the ratio cargo-audit / depfw.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${DEPFW_SHARED_DATA:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}"
lock="$(realpath "${1:-$root/tests/fixtures/lockfiles/public/cargo/advent-of-code-2020/Cargo.lock}")"
depfw="$root/target/release/depfw"
runs="${RUNS:-20}"
[ -x "$depfw" ] || { echo "build first: cargo build --release --bin depfw" >&2; exit 2; }

data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT
# Bundled run: no DEPFW_DATA_DIR, and no default `.depfw` store in the working directory.
unset DEPFW_DATA_DIR
cd "$data"
"$depfw" --data-dir "$data" feeds import "$shared/advisories/rustsec/crates" --name rustsec >/dev/null

# Exit code 1 means findings: not a failure here (hyperfine -i). No shell in between
# (hyperfine -N): a shell's start-up would add the same ~2 ms to both sides. cargo-audit
# runs as its own binary, without `cargo`'s dispatch in front of it.
depfw_store="$depfw --data-dir $data audit --format json $lock"
depfw_bundled="$depfw audit --format json $lock"
cargo_audit="cargo-audit audit --db $shared/advisories/rustsec-db --no-fetch --stale --json -f $lock"

mean_ms() { # command -> mean wall time and CPU time in ms over $runs runs
  if command -v hyperfine >/dev/null; then
    hyperfine -N -i --output=null --warmup 3 --runs "$runs" --export-json "$data/h.json" "$1" >/dev/null 2>&1
    python3 -c "import json;r=json.load(open('$data/h.json'))['results'][0];print(round(r['mean']*1000,1), round((r['user']+r['system'])*1000,1))"
  else
    local start end
    $1 >/dev/null 2>&1 || true
    start=$(date +%s%N)
    for _ in $(seq "$runs"); do $1 >/dev/null 2>&1 || true; done
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

