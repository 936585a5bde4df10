#!/usr/bin/env bash
# depfw audit vs cargo-audit on the same Cargo.lock files and the same RustSec data, offline,
# like for like.
#
#   benches/audit-vs-cargo-audit.sh [Cargo.lock ...]
#
# Default: the real lockfiles under benches/lockfiles/cargo/ (49 to 395 crates; provenance in
# benches/lockfiles/README.md). Needs a release build (`cargo build --release --bin depfw`),
# cargo-audit (CARGO_AUDIT=path, else on the PATH; measured with 0.22.1), and the shared data
# set (DEPFW_SHARED_DATA, default ../shared/data beside the repository). Uses hyperfine when
# installed, else a timing loop.
#
# Like for like: both sides read the same advisories and do the same work, nothing else.
# - cargo-audit's yanked-crate check is switched off (`[yanked] enabled = false` in a
#   `.cargo/audit.toml` in the working directory; there is no command-line flag for it):
#   depfw's audit does not ask whether a crate was yanked, and cargo-audit's check reads the
#   local crates.io index, which tripled its time.
# - No shell in between (hyperfine -N), cargo-audit run as its own binary (no `cargo`
#   dispatch), JSON output on both sides, exit code 1 (findings) not a failure (-i).
# depfw runs twice: with no data dir (the default: the bundled snapshot, only the scanned
# crates' advisories decoded) and with a data dir holding the RustSec feed (`feeds import`,
# per-package store lookups; opening sled is most of it).
# Prints one row per lockfile: mean wall time of each, and cargo-audit / depfw.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${DEPFW_SHARED_DATA:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}"
target="${CARGO_TARGET_DIR:-$root/target}"
depfw="$target/release/depfw"
cargo_audit="${CARGO_AUDIT:-$(command -v cargo-audit || true)}"
runs="${RUNS:-20}"
[ -x "$depfw" ] || { echo "build first: cargo build --release --bin depfw" >&2; exit 2; }
[ -x "$cargo_audit" ] || { echo "cargo-audit not found: cargo install cargo-audit --version 0.22.1 --locked, or set CARGO_AUDIT" >&2; exit 2; }
if [ "$#" -gt 0 ]; then
  lockfiles=("$@")
else
  lockfiles=("$root"/benches/lockfiles/cargo/*/Cargo.lock)
fi

data="$(mktemp -d)"
trap 'rm -rf "$data"' EXIT
# Bundled run: no DEPFW_DATA_DIR, and no default `.depfw` store in the working directory.
unset DEPFW_DATA_DIR
cd "$data"
mkdir -p .cargo
printf '[yanked]\nenabled = false\nupdate_index = false\n' > .cargo/audit.toml
"$depfw" --data-dir "$data/store" feeds import "$shared/advisories/rustsec/crates" --name rustsec >/dev/null

mean_ms() { # command -> mean wall time in ms over $runs runs
  if command -v hyperfine >/dev/null; then
    hyperfine -N -i --output=null --warmup 3 --runs "$runs" --export-json "$data/h.json" "$1" >/dev/null 2>&1
    python3 -c "import json;r=json.load(open('$data/h.json'))['results'][0];print(round(r['mean']*1000,2))"
  else
    local start end
    $1 >/dev/null 2>&1 || true
    start=$(date +%s%N)
    for _ in $(seq "$runs"); do $1 >/dev/null 2>&1 || true; done
    end=$(date +%s%N)
    python3 -c "print(round(($end - $start) / $runs / 1e6, 2))"
  fi
}

echo "cargo-audit $("$cargo_audit" --version | awk '{print $2}') (yanked check off), depfw $("$depfw" --version | awk '{print $2}'); $runs runs each; mean wall time in ms"
echo "| lockfile | crates | depfw (bundled) | depfw (store) | cargo-audit | cargo-audit / depfw (bundled) | (store) |"
echo "|---|---|---|---|---|---|---|"
for lock in "${lockfiles[@]}"; do
  name="$(basename "$(dirname "$lock")")"
  lock="$(realpath "$lock")"
  crates=$(grep -c '^\[\[package\]\]' "$lock")
  b=$(mean_ms "$depfw audit --format json $lock")
  s=$(mean_ms "$depfw --data-dir $data/store audit --format json $lock")
  c=$(mean_ms "$cargo_audit audit --db $shared/advisories/rustsec-db --no-fetch --stale --json -f $lock")
  python3 -c "print(f'| $name | $crates | $b | $s | $c | {$c/$b:.1f}x | {$c/$s:.1f}x |')"
done
