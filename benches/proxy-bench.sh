#!/usr/bin/env bash
# End-to-end proxy benchmark (see benches/proxy_bench.rs): cached-metadata req/s and
# p50/p99 for npm packuments, PyPI project pages and crates.io index files (straight vs
# through depfw, with the added latency), and a warm ~300-package npm install through depfw
# vs straight from the fixture mirror. Needs node/npm; the first run needs
# registry.npmjs.org, pypi.org and index.crates.io to record the mirror
# (target/proxy-bench/mirror), later runs are offline. Usage: benches/proxy-bench.sh
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build --release --bin depfw
DEPFW_BIN="${CARGO_TARGET_DIR:-$root/target}/release/depfw" cargo bench --bench proxy_bench
