#!/usr/bin/env bash
# Builds the lockfile- and SBOM-parser fuzz targets (fuzz/) and runs each briefly, seeded with the
# test fixtures. A crash, panic, timeout or OOM fails the script; artifacts land in
# fuzz/artifacts/<target>/.
#
#   .ci/fuzz-smoke.sh                 # every target, 5 s each
#   FUZZ_SECONDS=60 .ci/fuzz-smoke.sh uv_lock requirements
#
# Installs cargo-fuzz (pinned below) when it is missing. Only stable Rust is assumed:
# RUSTC_BOOTSTRAP=1 lets cargo-fuzz use the nightly-only sanitizer flags. FUZZ_SANITIZER defaults to `none`:
# depfw forbids unsafe code, so what is hunted is panics, hangs and runaway memory, and
# skipping ASan roughly halves build time; set FUZZ_SANITIZER=address for a deeper run.
set -euo pipefail

cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1
seconds="${FUZZ_SECONDS:-5}"
# A fixed seed and run count make the CI smoke reproducible: the same build explores the
# same inputs, so a red run can be replayed. Longer hunts: FUZZ_RUNS=-1 FUZZ_SECONDS=600.
fuzz_seed="${FUZZ_SEED:-1}"
runs="${FUZZ_RUNS:-20000}"
sanitizer="${FUZZ_SANITIZER:-none}"
fixtures="$PWD/tests/fixtures/lockfiles"

all_targets=(cargo_lock package_lock npm_shrinkwrap yarn_lock pnpm_lock bun_lock
  requirements poetry_lock uv_lock pipfile_lock pdm_lock pylock cyclonedx spdx)
targets=("${@:-${all_targets[@]}}")

# Seeds: fixture files whose name matches the target's format.
seed_pattern() {
  case "$1" in
    cargo_lock) echo 'Cargo.lock' ;;
    package_lock) echo 'package-lock.json' ;;
    npm_shrinkwrap) echo 'npm-shrinkwrap.json' ;;
    yarn_lock) echo 'yarn.lock' ;;
    pnpm_lock) echo 'pnpm-lock.yaml' ;;
    bun_lock) echo 'bun.lock' ;;
    requirements) echo '*.txt' ;;
    poetry_lock) echo 'poetry.lock' ;;
    uv_lock) echo 'uv.lock' ;;
    pipfile_lock) echo 'Pipfile.lock' ;;
    pdm_lock) echo 'pdm.lock' ;;
    pylock) echo 'pylock*.toml' ;;
    cyclonedx) echo '*.cdx.json' ;;
    spdx) echo '*.spdx.json' ;;
  esac
}

# Pinned like every tool CI installs; upgrade on purpose.
CARGO_FUZZ_VERSION=0.13.2
if [ "$(cargo fuzz --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+')" != "$CARGO_FUZZ_VERSION" ]; then
  echo "fuzz-smoke: installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --version "=$CARGO_FUZZ_VERSION" --locked
fi

start=$(date +%s)
cargo fuzz build --sanitizer "$sanitizer"
built=$(date +%s)
echo "fuzz-smoke: built in $((built - start)) s"

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  n=0
  while IFS= read -r -d '' seed; do
    n=$((n + 1))
    cp "$seed" "$corpus/seed-$n"
  done < <(find "$fixtures" -type f -name "$(seed_pattern "$target")" -size -64k -print0 2>/dev/null)
  if ! cargo fuzz run --sanitizer "$sanitizer" "$target" "$corpus" -- \
      -seed="$fuzz_seed" -runs="$runs" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz-smoke: $target FAILED (input in fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  echo "fuzz-smoke: $target ok ($n seeds): $(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1)"
done
echo "fuzz-smoke: ${#targets[@]} targets in $(( $(date +%s) - start )) s"
