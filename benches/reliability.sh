#!/usr/bin/env bash
# depfw under abuse (issue #11), end to end on loopback against a generated upstream (see
# benches/reliability.rs): 500-connection load on a cached packument (one peer, five
# peers), slow-header clients and the latency of a normal request, /healthz and the admin
# endpoint meanwhile, and a 190,000-version (~62 MB) packument: cold time, peak memory,
# /healthz latency meanwhile. Offline; Linux (127.0.0.0/8 on lo, /proc for memory).
# Usage: benches/reliability.sh   (RELIABILITY_SLOW=1000 RELIABILITY_VERSIONS=190000
# RELIABILITY_SECS=5 to change the sizes)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
# The load generator holds a few thousand sockets.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
cargo build --release --bin depfw
echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
DEPFW_BIN="$target/release/depfw" cargo bench --bench reliability
