#!/usr/bin/env bash
# Where depfw's CPU goes on a cached metadata request (issue #17 item 3): `depfw serve` under
# callgrind, answering N cached requests for one metadata document with its client's real
# headers from 8 connections; prints the user-space instructions and allocations per request
# and the share of the parts the README names (access log line, spans, `format!`, name check,
# URL parse, malloc/free, render cache). Instruction counts do not depend on
# the machine's load.
#
# The row (HOTPATH_ROW), as in benches/side-by-side.sh:
#   npm   (default) the lodash packument with npm's headers (corgi, gzip)
#   pip   the PyPI `requests` page with pip's headers (PEP 691 JSON preferred, gzip)
#   cargo serde's sparse-index file with cargo's headers (gzip, `cargo-protocol`, its user-agent)
#
# Needs valgrind, nginx (the upstream: the recorded document as a static file), curl, and the
# proxy bench's recorded mirror (target/proxy-bench/mirror, made by benches/side-by-side.sh or
# benches/proxy-bench.sh).
#
# Usage: [HOTPATH_ROW=npm|pip|cargo] DEPFW_BIN=target/release/depfw benches/hotpath-profile.sh [N, default 2000]
# The callgrind file is left in target/hotpath-profile/<row>/ for callgrind_annotate.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
n="${1:-2000}"
bin="${DEPFW_BIN:?set DEPFW_BIN to a release build of depfw}"
row="${HOTPATH_ROW:-npm}"
work="$root/target/hotpath-profile/$row"
mirror="$root/target/proxy-bench/mirror"
rm -rf "$work" && mkdir -p "$work/root" "$work/tmp"
need() { [[ -f "$1" ]] || { echo "no recorded $1: run benches/side-by-side.sh once" >&2; exit 1; }; }
# Each row's client headers are benches/proxy_bench.rs's (NPM, PIP, CARGO).
case $row in
    npm)
        need "$mirror/packuments/lodash.json"
        cp "$mirror/packuments/lodash.json" "$work/root/lodash"
        path="npm/lodash"
        headers=(-H 'Accept: application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*'
            -H 'Accept-Encoding: gzip,deflate') ;;
    pip)
        need "$mirror/pypi/requests.json"
        mkdir -p "$work/root/pypi/simple/requests"
        cp "$mirror/pypi/requests.json" "$work/root/pypi/simple/requests/index.json"
        path="pypi/simple/requests/"
        headers=(-H 'Accept: application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01'
            -H 'Accept-Encoding: gzip, deflate') ;;
    cargo)
        need "$mirror/cargo/serde"
        mkdir -p "$work/root/cargo-index/se/rd"
        cp "$mirror/cargo/serde" "$work/root/cargo-index/se/rd/serde"
        path="cargo/index/se/rd/serde"
        headers=(-H 'Accept: text/plain' -H 'Accept-Encoding: deflate, gzip'
            -H 'cargo-protocol: version=1' -H 'User-Agent: cargo/1.95.0 (f2d3ce0bd 2026-03-21)') ;;
    *) echo "HOTPATH_ROW must be npm, pip or cargo" >&2; exit 1 ;;
esac
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
up_port="$(free_port)"
# As the bench mirror serves it: the page's file URLs on the upstream, where depfw's
# `upstream.pypi.files` says they are (a file elsewhere is left out of the page).
if [[ $row == pip ]]; then
    sed -i "s#https://files.pythonhosted.org/#http://127.0.0.1:$up_port/pypi-files/#g" \
        "$work/root/pypi/simple/requests/index.json"
fi
cat >"$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $work/tmp; proxy_temp_path $work/tmp; fastcgi_temp_path $work/tmp;
    uwsgi_temp_path $work/tmp; scgi_temp_path $work/tmp;
    server {
        listen 127.0.0.1:$up_port; root $work/root; default_type application/json;
        location /pypi/simple/ { index index.json; default_type application/vnd.pypi.simple.v1+json; }
        location /cargo-index/ { default_type text/plain; }
        location = /cargo-index/config.json {
            return 200 '{"dl":"http://127.0.0.1:$up_port/cargo-dl/{crate}/{version}/download"}';
        }
    }
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
[upstream.pypi]
index = "http://127.0.0.1:$up_port/pypi/simple/"
files = "http://127.0.0.1:$up_port/pypi-files/"
[upstream.cargo]
index = "http://127.0.0.1:$up_port/cargo-index/"
EOF
valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" \
    "$bin" --config "$work/depfw.toml" serve >"$work/depfw.log" 2>&1 &
pids+=($!)
vg=$!
for _ in $(seq 1 300); do
    curl -fs -o /dev/null "http://127.0.0.1:$port/healthz" && break
    sleep 0.5
done
url="http://127.0.0.1:$port/$path"
# Warm: upstream fetch, parse, render, gzip.
for _ in 1 2 3; do curl -fs -o /dev/null "${headers[@]}" "$url"; done
for _ in $(seq 1 "$n"); do printf 'url = "%s"\noutput = "/dev/null"\n' "$url"; done >"$work/urls"
callgrind_control -z "$vg" >/dev/null
curl -fs --no-progress-meter -Z --parallel-max 8 "${headers[@]}" -K "$work/urls"
callgrind_control -d "$vg" >/dev/null
sleep 1
dump="$(ls "$work"/callgrind.out.* | sort | tail -1)"
total=$(callgrind_annotate "$dump" | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "depfw: $("$bin" --version 2>/dev/null || echo "$bin"); $n cached requests, row $row (/$path)"
echo "user-space instructions per request: $((total / n))"
# Calls into malloc, from the call counts callgrind records per call site (`calls=` lines
# whose callee is malloc), including the few of depfw's background threads in that time.
mallocs=$(awk '
    # Names are compressed: `(id) name` the first time, `(id)` after; fn= and cfn= share ids.
    /^c?fn=/ {
        name = $0; sub(/^c?fn=/, "", name)
        if (match(name, /^\([0-9]+\)/)) {
            id = substr(name, 1, RLENGTH); rest = substr(name, RLENGTH + 2)
            if (rest != "") names[id] = rest
            name = names[id]
        }
        if ($0 ~ /^cfn=/) to_malloc = (name == "malloc")
        next
    }
    /^calls=/ { if (to_malloc) { split(substr($0, 7), c, " "); calls += c[1] } }
    END { print calls + 0 }' "$dump")
echo "allocations (calls to malloc) per request: $((mallocs / n))"
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
