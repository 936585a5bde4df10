#!/usr/bin/env bash
# depfw audit vs cargo-audit on the same Cargo.lock files and the same RustSec data, offline,
# like for like.
#
#   benches/audit-vs-cargo-audit.sh [Cargo.lock ...]
#
# Default: the real lockfiles under benches/lockfiles/cargo/ (49 to 395 crates; provenance in
# benches/lockfiles/README.md). Needs a release build (`cargo build --release --bin depfw`),
# hyperfine (else a plain timing loop, mean only) and the shared data set (DEPFW_SHARED_DATA,
# default ../shared/data beside the repository). cargo-audit is the pinned version below,
# installed on first use into a directory of this script's own under the target dir
# (`cargo install --locked`, several minutes); CARGO_AUDIT=path uses another binary.
#
# Like for like: both sides read the same advisories, offline, and do the same work.
# - Data. cargo-audit reads the RustSec advisory database in its native layout
#   ($DEPFW_SHARED_DATA/advisories/rustsec-db, `--db … --no-fetch --stale`: no git fetch,
#   no staleness error), ~900 crates/*.md files per run. depfw reads its bundled snapshot
#   (no data dir, the default), built from the OSV export of the same database at the same
#   commit (feeds/snapshot.json: rustsec/advisory-db `osv` 7fa931c = `main` bf5c0d2, the
#   rustsec-db folder's commit), plus OSSF's malicious-crate records, and also runs its
#   typosquat and other policy checks: if anything, depfw does more.
# - Yanked crates. cargo-audit's yanked-crate check is switched off (`[yanked] enabled =
#   false` in a `.cargo/audit.toml` in the working directory; 0.22.1 has no command-line flag
#   for it, `--no-yanked` does not exist): depfw's audit does not ask whether a crate was
#   yanked, and cargo-audit's check reads the local crates.io index, which tripled its time.
#   The script checks that cargo-audit reported no yanked warnings, i.e. the switch held.
# - Same process shape: no shell in between (hyperfine -N), cargo-audit run as its own binary
#   (no `cargo` dispatch), JSON output on both sides, exit code 1 (findings) not a failure
#   (-i), both commands measured in the same hyperfine run per lockfile.
# depfw also runs with a data dir holding the RustSec feed (`feeds import`: per-package store
# lookups; opening sled is most of it), for reference.
#
# Statistics: hyperfine's min and mean wall time per command, and the mean CPU time (user +
# system). The machine this runs on is often shared: the min is what each side costs with
# the least interference, the more robust wall figure under load; the mean shows the load;
# CPU time is what each side spends whatever the load (it does not count waiting for a
# core). Ratios are cargo-audit / depfw.
# DEPFW_BASELINE=path/to/another/depfw adds that binary (e.g. main's release build) as one
# more command in the same hyperfine run, or one more count under CALLGRIND=1, so that a
# change is compared with its baseline under the same load rather than in a later run
# (the store command is left out of such a run).
# CALLGRIND=1 instead counts the instructions of one run of each (valgrind's callgrind,
# user space only, dynamic loader included): the same on a loaded machine as on an idle
# one. It leaves out kernel work (cargo-audit opening and reading ~900 advisory files,
# depfw's process start faulting in its binary), so it is not a wall-time ratio.
set -euo pipefail

cargo_audit_version=0.22.1
root="$(cd "$(dirname "$0")/.." && pwd)"
shared="${DEPFW_SHARED_DATA:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}"
target="${CARGO_TARGET_DIR:-$root/target}"
depfw="$target/release/depfw"
runs="${RUNS:-30}"
[ -x "$depfw" ] || { echo "build first: cargo build --release --bin depfw" >&2; exit 2; }
baseline="${DEPFW_BASELINE:-}"
[ -z "$baseline" ] || [ -x "$baseline" ] || { echo "DEPFW_BASELINE=$baseline is not executable" >&2; exit 2; }
[ -d "$shared/advisories/rustsec-db/crates" ] || { echo "no RustSec database under $shared/advisories/rustsec-db (set DEPFW_SHARED_DATA)" >&2; exit 2; }

tools="$target/bench-tools/cargo-audit-$cargo_audit_version"
cargo_audit="${CARGO_AUDIT:-$tools/bin/cargo-audit}"
if [ ! -x "$cargo_audit" ]; then
  [ -z "${CARGO_AUDIT:-}" ] || { echo "CARGO_AUDIT=$CARGO_AUDIT is not executable" >&2; exit 2; }
  echo "installing cargo-audit $cargo_audit_version into $tools (once; takes minutes)" >&2
  cargo install --locked cargo-audit --version "$cargo_audit_version" --root "$tools" >&2
fi
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

db="$shared/advisories/rustsec-db"
echo "cargo-audit $("$cargo_audit" --version | awk '{print $2}') (yanked check off), depfw $("$depfw" --version | awk '{print $2}') ($(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
if [ -n "${CALLGRIND:-}" ]; then
  echo "instructions of one run (callgrind, user space), millions; ratio = cargo-audit / depfw (bundled)"
  if [ -n "$baseline" ]; then
    echo "baseline: $baseline"
    echo "| lockfile | crates | depfw (bundled) | cargo-audit | ratio | baseline | baseline ratio | depfw / baseline |"
    echo "|---|---|---|---|---|---|---|---|"
  else
    echo "| lockfile | crates | depfw (bundled) | cargo-audit | ratio |"
    echo "|---|---|---|---|---|"
  fi
elif [ -n "$baseline" ]; then
  echo "baseline: $baseline"
  echo "hyperfine, $runs runs each; wall time in ms, min / mean; CPU = mean user + system ms; ratio = cargo-audit / depfw (bundled); baseline: the same for DEPFW_BASELINE (bundled), in the same run"
  echo "| lockfile | crates | depfw (bundled) | baseline | cargo-audit | ratio, min | baseline ratio, min | CPU depfw / baseline / cargo-audit | ratio, CPU | baseline ratio, CPU |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
else
  echo "hyperfine, $runs runs each; wall time in ms, min / mean; CPU = mean user + system ms; ratio = cargo-audit / depfw (bundled)"
  echo "| lockfile | crates | depfw (bundled) | depfw (store) | cargo-audit | ratio, min | ratio, mean | CPU depfw / cargo-audit | ratio, CPU | store: ratio, min |"
  echo "|---|---|---|---|---|---|---|---|---|---|"
fi
for lock in "${lockfiles[@]}"; do
  name="$(basename "$(dirname "$lock")")"
  lock="$(realpath "$lock")"
  crates=$(grep -c '^\[\[package\]\]' "$lock")
  bundled_cmd="$depfw audit --format json $lock"
  store_cmd="$depfw --data-dir $data/store audit --format json $lock"
  audit_cmd="$cargo_audit audit --db $db --no-fetch --stale --json -f $lock"
  # The switch held: cargo-audit's report has no yanked-crate warnings.
  { $audit_cmd || true; } | python3 -c "import json,sys;w=json.load(sys.stdin).get('warnings',{});sys.exit(1 if w.get('yanked') else 0)" \
    || { echo "cargo-audit checked yanked crates on $name: .cargo/audit.toml not applied" >&2; exit 1; }
  if [ -n "${CALLGRIND:-}" ]; then
    instructions() { # command -> instructions executed by one run, in millions
      valgrind --tool=callgrind --callgrind-out-file="$data/cg.out" $1 >/dev/null 2>"$data/cg.log" || true
      awk '/Collected :/ {printf "%.1f", $NF / 1e6}' "$data/cg.log"
    }
    b=$(instructions "$bundled_cmd"); c=$(instructions "$audit_cmd")
    if [ -n "$baseline" ]; then
      a=$(instructions "$baseline audit --format json $lock")
      python3 -c "print(f'| $name | $crates | {$b} | {$c} | {$c/$b:.1f}x | {$a} | {$c/$a:.1f}x | {$b/$a:.3f} |')"
    else
      python3 -c "print(f'| $name | $crates | {$b} | {$c} | {$c/$b:.1f}x |')"
    fi
  elif command -v hyperfine >/dev/null && [ -n "$baseline" ]; then
    hyperfine -N -i --output=null --warmup 3 --runs "$runs" --export-json "$data/h.json" \
      "$bundled_cmd" "$baseline audit --format json $lock" "$audit_cmd" >/dev/null 2>&1
    python3 - "$data/h.json" "$name" "$crates" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
(b, a, c) = ((x["min"] * 1000, x["mean"] * 1000, (x["user"] + x["system"]) * 1000) for x in r)
print(f"| {sys.argv[2]} | {sys.argv[3]} | {b[0]:.2f} / {b[1]:.2f} | {a[0]:.2f} / {a[1]:.2f} "
      f"| {c[0]:.2f} / {c[1]:.2f} | {c[0] / b[0]:.1f}x | {c[0] / a[0]:.1f}x "
      f"| {b[2]:.2f} / {a[2]:.2f} / {c[2]:.2f} | {c[2] / b[2]:.1f}x | {c[2] / a[2]:.1f}x |")
EOF
  elif command -v hyperfine >/dev/null; then
    hyperfine -N -i --output=null --warmup 3 --runs "$runs" --export-json "$data/h.json" \
      "$bundled_cmd" "$store_cmd" "$audit_cmd" >/dev/null 2>&1
    python3 - "$data/h.json" "$name" "$crates" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
(b, s, c) = ((x["min"] * 1000, x["mean"] * 1000, (x["user"] + x["system"]) * 1000) for x in r)
print(f"| {sys.argv[2]} | {sys.argv[3]} | {b[0]:.2f} / {b[1]:.2f} | {s[0]:.2f} / {s[1]:.2f} "
      f"| {c[0]:.2f} / {c[1]:.2f} | {c[0] / b[0]:.1f}x | {c[1] / b[1]:.1f}x "
      f"| {b[2]:.2f} / {c[2]:.2f} | {c[2] / b[2]:.1f}x | {c[0] / s[0]:.1f}x |")
EOF
  else
    mean_ms() { # command -> mean wall time in ms over $runs runs
      local start end
      $1 >/dev/null 2>&1 || true
      start=$(date +%s%N)
      for _ in $(seq "$runs"); do $1 >/dev/null 2>&1 || true; done
      end=$(date +%s%N)
      python3 -c "print(round(($end - $start) / $runs / 1e6, 2))"
    }
    b=$(mean_ms "$bundled_cmd"); s=$(mean_ms "$store_cmd"); c=$(mean_ms "$audit_cmd")
    python3 -c "print(f'| $name | $crates | - / $b | - / $s | - / $c | - | {$c/$b:.1f}x | - | - | - |')"
  fi
done
echo "load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
