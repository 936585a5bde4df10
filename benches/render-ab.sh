#!/usr/bin/env bash
# Warm cached-metadata throughput of two `depfw serve` builds side by side (issue #17: a
# change to how rendered packuments are kept must not cost requests per second). Both
# builds run at once in front of one recorded mirror (benches/support/mirror.rs, the proxy
# benchmark's), and the load rounds alternate between them (A B, then B A, ...) so that
# load from elsewhere on a shared machine falls on both alike.
#
# Cases: each packument in RENDER_AB_PACKAGES, with npm's headers (abbreviated form, gzip)
# and with full JSON, no compression (curl). Prints one line per round and side ("case
# side rps p50_ms p99_ms bytes cpu_us", cpu_us being depfw's own CPU time per request),
# then the medians per case and side and B/A. Requests per second swing by a third from
# round to round on a loaded 2-core machine; depfw's CPU time per request does not. The first run records the packuments from registry.npmjs.org; later runs are offline.
# Usage:
#   A=path/to/depfw-before B=path/to/depfw-after benches/render-ab.sh
# Environment: RENDER_AB_PACKAGES (default "express lodash debug"), RENDER_AB_ROUNDS
# (default 5), RENDER_AB_CONNS (default 8), RENDER_AB_REQUESTS (per connection, default
# 300), PROXY_BENCH_BIN (default: builds the proxy_bench harness, release profile).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
: "${A:?A=path to the baseline depfw}" "${B:?B=path to the changed depfw}"
if [[ -z "${PROXY_BENCH_BIN:-}" ]]; then
    cargo bench --bench proxy_bench --no-run
    PROXY_BENCH_BIN="$(ls -t "$target"/release/deps/proxy_bench-* | grep -v '\.d$' | head -1)"
fi
packages="${RENDER_AB_PACKAGES:-express lodash debug}"
rounds="${RENDER_AB_ROUNDS:-5}"
conns="${RENDER_AB_CONNS:-8}"
requests="${RENDER_AB_REQUESTS:-300}"
work="$target/render-ab"
mirror_dir="$target/proxy-bench/mirror"
mkdir -p "$work" "$mirror_dir"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
rm -f "$work/mirror.url"
"$PROXY_BENCH_BIN" mirror "$mirror_dir" "$work/mirror.url" >"$work/mirror.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [[ -s "$work/mirror.url" ]] && break; sleep 0.1; done
mirror="$(cat "$work/mirror.url")"

declare -A url pid
for side in A B; do
    port="$(free_port)"
    rm -rf "$work/data-$side"
    cat >"$work/depfw-$side.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
data-dir = "$work/data-$side"
[upstream.npm]
registry = "$mirror/"
EOF
    RUST_LOG=warn "${!side}" --config "$work/depfw-$side.toml" serve >"$work/depfw-$side.log" 2>&1 &
    pids+=($!)
    pid[$side]=$!
    url[$side]="http://127.0.0.1:$port"
done
for side in A B; do
    for _ in $(seq 1 300); do
        curl -fs -o /dev/null "${url[$side]}/healthz" 2>/dev/null && break
        sleep 0.2
    done
done

# utime + stime of a process, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
results="$work/results.tsv"
: >"$results"
echo "A: $A"
echo "B: $B"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
    for p in $packages; do
        for h in npm full; do
            # ABBA: whichever side goes second in a pair runs slower here (the first
            # one's load is still winding down), so the order alternates by round.
            order="A B"; (( round % 2 == 0 )) && order="B A"
            for side in $order; do
                before=$(cpu_ticks "${pid[$side]}")
                out=$("$PROXY_BENCH_BIN" load "${url[$side]}/npm/$p" "$h" "$conns" "$requests")
                after=$(cpu_ticks "${pid[$side]}")
                # CPU time depfw spent per request, in microseconds: far less sensitive
                # to the machine's load than requests per second.
                us=$(( (after - before) * 1000000 / $(getconf CLK_TCK) / (conns * requests) ))
                line="$p-$h $side $out $us"
                echo "$line"
                echo "$line" >>"$results"
            done
        done
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    rows.setdefault(f[0], {}).setdefault(f[1], []).append((float(f[2]), float(f[6])))
med = lambda xs, i: statistics.median(x[i] for x in xs)
n = len(next(iter(rows.values()))["A"])
print(f"{'case':<16}{'A req/s':>9}{'B req/s':>9}{'B/A':>6}{'A cpu_us':>10}{'B cpu_us':>10}{'B/A':>6}"
      f"   (medians of {n} rounds)")
for case, s in rows.items():
    ra, rb, ca, cb = med(s["A"], 0), med(s["B"], 0), med(s["A"], 1), med(s["B"], 1)
    print(f"{case:<16}{ra:>9.0f}{rb:>9.0f}{rb / ra:>6.2f}{ca:>10.0f}{cb:>10.0f}{cb / max(ca, 1):>6.2f}")
PY
