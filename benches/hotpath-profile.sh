#!/usr/bin/env bash
# Where depfw's CPU goes on a cached metadata request (issue #17 item 3): `depfw serve` under
# callgrind, answering N cached requests for the lodash packument with npm's headers (corgi,
# gzip) from 8 connections; prints the user-space instructions per request and the share of
# the parts the README names (access log line, spans, `format!`, name check, URL parse,
# malloc/free, render cache). Instruction counts do not depend on the machine's load.
#
# Needs valgrind, nginx (the upstream: the recorded packument as a static file), curl, and the
# proxy bench's recorded mirror (target/proxy-bench/mirror, made by benches/side-by-side.sh or
# benches/proxy-bench.sh).
#
# Usage: DEPFW_BIN=target/release/depfw benches/hotpath-profile.sh [N, default 2000]
# The callgrind file is left in target/hotpath-profile/ for callgrind_annotate.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
n="${1:-2000}"
bin="${DEPFW_BIN:?set DEPFW_BIN to a release build of depfw}"
work="$root/target/hotpath-profile"
packument="$root/target/proxy-bench/mirror/packuments/lodash.json"
[[ -f "$packument" ]] || { echo "no recorded $packument: run benches/side-by-side.sh once" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work/root" "$work/tmp"
cp "$packument" "$work/root/lodash"
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
up_port="$(free_port)"
cat >"$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $work/tmp; proxy_temp_path $work/tmp; fastcgi_temp_path $work/tmp;
    uwsgi_temp_path $work/tmp; scgi_temp_path $work/tmp;
    server { listen 127.0.0.1:$up_port; root $work/root; default_type application/json; }
}
EOF
nginx -p "$work" -c "$work/nginx.conf" -g 'daemon off;' &
pids+=($!)
port="$(free_port)"
cat >"$work/depfw.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
data-dir = "$work/data"
[upstream.npm]
registry = "http://127.0.0.1:$up_port/"
EOF
valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" \
    "$bin" --config "$work/depfw.toml" serve >"$work/depfw.log" 2>&1 &
pids+=($!)
vg=$!
for _ in $(seq 1 300); do
    curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" && break
    sleep 0.5
done
accept='Accept: application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*'
url="http://127.0.0.1:$port/npm/lodash"
# Warm: upstream fetch, parse, render, gzip.
for _ in 1 2 3; do curl -fs -o /dev/null -H "$accept" -H 'Accept-Encoding: gzip,deflate' "$url"; done
for _ in $(seq 1 "$n"); do printf 'url = "%s"\noutput = "/dev/null"\n' "$url"; done >"$work/urls"
callgrind_control -z "$vg" >/dev/null
curl -fs -Z --parallel-max 8 -H "$accept" -H 'Accept-Encoding: gzip,deflate' -K "$work/urls"
callgrind_control -d "$vg" >/dev/null
sleep 1
dump="$(ls "$work"/callgrind.out.* | sort | tail -1)"
total=$(callgrind_annotate "$dump" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "depfw: $("$bin" --version 2>/dev/null || echo "$bin"); $n cached requests (lodash, npm's headers)"
echo "user-space instructions per request: $((total / n))"
echo "share of those (inclusive, callgrind):"
callgrind_annotate --inclusive=yes "$dump" | awk -v total="$total" '
    function share(label, pattern) {
        if (!(label in seen) && $0 ~ pattern) {
            v = $1; gsub(",", "", v); seen[label] = 1
            printf "  %-52s %5.1f%%\n", label, 100 * v / total
        }
    }
    {
        share("access log line (tracing Event::dispatch)", "tracing_core::event::Event::dispatch( \\[|$)")
        share("tracing dispatch, all (spans and events)", "tracing_core::dispatcher::get_default( \\[|$)")
        share("span creation (Span::new)", "tracing::span::Span::new( \\[|$)")
        share("format! (alloc::fmt::format::format_inner)", "alloc::fmt::format::format_inner( \\[|$)")
        share("Gate::check_name (name-level policy)", "pipeline.rs:depfw::server::pipeline::Gate::check_name( \\[|$)")
        share("upstream URL (Protocol::metadata_url)", "npm.rs:<depfw::registry::npm::Npm as depfw::registry::Protocol>::metadata_url( \\[|$)")
        share("upstream URL kept per name (Served::metadata_url)", "pipeline.rs:depfw::server::pipeline::Served<P>::metadata_url( \\[|$)")
        share("render cache lookup (RenderCache::rendered)", "render_cache.rs:depfw::server::render_cache::RenderCache::rendered( \\[|$)")
        share("response (RenderCache::response)", "render_cache.rs:depfw::server::render_cache::RenderCache::response( \\[|$)")
        share("malloc", "malloc.c:malloc( \\[|$)")
        share("free", "malloc.c:free( \\[|$)")
    }'
echo "callgrind file: $dump"
