#!/usr/bin/env bash
# depfw side by side with Verdaccio and devpi-server (issue #17): one recorded upstream (the
# proxy benchmark's mirror of real npm packuments and tarballs and PyPI pages and files,
# benches/support/mirror.rs) served to depfw, to Verdaccio (npm) and to devpi-server (PyPI),
# and, when nginx is installed, the bytes depfw answers with as static files from nginx, as the limit.
# Prints one markdown table:
#   - cached metadata at 32 connections, req/s and p50/p99 with the clients' real headers:
#     the lodash packument as full JSON and with npm's headers (corgi, gzip), the PyPI
#     `requests` page with pip's headers (PEP 691 JSON preferred, gzip), and serde's
#     sparse-index file with cargo's (text/plain, gzip);
#   - warm `npm install` of a ~340-package project (express + jest, as proxy-bench.sh) through
#     depfw and Verdaccio against the same install straight from the mirror, warm
#     `pip install` of ~37 packages through depfw and devpi against straight, and warm
#     `cargo fetch --locked` of benches/cargo-project (57 crates, its committed Cargo.lock)
#     through depfw against straight;
#   - resident memory (VmRSS from /proc) of depfw and Verdaccio idle and after warming every
#     recorded packument in both forms;
# with ratios, the date, the CPU and the load average. Every measurement is interleaved
# (upstream, nginx, depfw, Verdaccio/devpi, then again) so that load on a shared machine
# hits every side alike; figures are medians over the rounds.
#
# Installs, once, under target/side-by-side/: verdaccio@6.10.4 (6.8.0 on Node.js < 22) and
# devpi-server==6.20.3 + devpi-client==7.3.0 (a venv, with uv
# when it is on PATH). nginx is not installed by the script (`apt-get install nginx-light`);
# without it the limit column is left out. Needs node/npm, python3 (pip >= 22.2), cargo,
# curl. The first run records what is missing from the mirror (registry.npmjs.org, pypi.org,
# files.pythonhosted.org, index.crates.io, static.crates.io); later runs are offline. depfw
# runs with its default config (default policy, bundled advisory snapshot): the 48-hour
# cooldown stays on, so a version published less than 48 hours before the run is held by
# depfw and the installer takes the one before it, which the mirror records on a miss; the
# table prints each side's package count so that a difference shows.
#
# Usage: benches/side-by-side.sh
# Environment: DEPFW_BIN (default: builds target/release/depfw), PROXY_BENCH_BIN (default:
# builds the proxy_bench harness, release profile, which is the mirror and the load
# generator), SIDE_BY_SIDE_RUNS (rounds, default 3), SIDE_BY_SIDE_REQUESTS (requests per
# connection per load, default 100: Verdaccio and devpi answer ~100-200 req/s here),
# SIDE_BY_SIDE_ONLY=nginx (only the cached-metadata rows of the mirror, nginx and depfw: no
# Verdaccio or devpi, no installs, no memory rows; for iterating on depfw's hot path),
# SIDE_BY_SIDE_ONLY=installs (only the warm installs, straight from the mirror and through
# depfw, and through the baseline depfw when there is one: no metadata loads, no Verdaccio
# or devpi, no memory rows; for iterating on what a warm install spends in depfw; every round
# then also fetches the install's cached npm tarballs again, over 1 and over 15 connections,
# straight and through depfw: the latency of a cached artifact, without npm's own work),
# SIDE_BY_SIDE_CLIENTS (which installs, default "npm pip cargo"), SIDE_BY_SIDE_CLIENT_DIR
# (where the clients install to: the npm project's node_modules and npm's cache, pip's
# target and each `cargo fetch`'s fresh CARGO_HOME; default
# target/side-by-side. The clients write thousands of files per install, the same on every
# side, and on a slow or shared disk that work swamps the proxy's part: e.g. /dev/shm, a
# tmpfs, to measure the proxy; the servers' own data stays in target/side-by-side),
# DEPFW_BASELINE_BIN (a second depfw, e.g. a build of main, served beside DEPFW_BIN with the
# same config and measured in the same interleaved rounds as `depfw-baseline`).
# All servers it starts are stopped when it exits.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
work="$root/target/side-by-side"
mirror_dir="$root/target/proxy-bench/mirror"
runs="${SIDE_BY_SIDE_RUNS:-3}"
requests="${SIDE_BY_SIDE_REQUESTS:-100}"
conns=32
only="${SIDE_BY_SIDE_ONLY:-}"
case "$only" in
    "" | nginx | installs) ;;
    *) echo "SIDE_BY_SIDE_ONLY: nginx, installs or unset, not $only" >&2; exit 2 ;;
esac
full() { [[ -z "$only" ]]; }
with_installs() { [[ -z "$only" || $only == installs ]]; }
clients=" ${SIDE_BY_SIDE_CLIENTS:-npm pip cargo} "
installs_of() { [[ $clients == *" $1 "* ]]; }
# The newest Verdaccio 6 (6.9 and later) needs Node.js 22; on an older Node.js the newest
# that runs, 6.8.0 (engines: node >= 20), stands in.
if (( $(node -p 'process.versions.node.split(".")[0]') >= 22 )); then
    VERDACCIO_VERSION=6.10.4
else
    VERDACCIO_VERSION=6.8.0
fi
DEVPI_SERVER_VERSION=6.20.3
DEVPI_CLIENT_VERSION=7.3.0
mkdir -p "$work" "$mirror_dir"

if [[ -z "${DEPFW_BIN:-}" ]]; then
    cargo build --release --bin depfw
    DEPFW_BIN="$target/release/depfw"
fi
if [[ -z "${PROXY_BENCH_BIN:-}" ]]; then
    PROXY_BENCH_BIN="$(cargo build --release --bench proxy_bench --message-format=json-render-diagnostics |
        python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "proxy_bench" and m.get("executable"):
        print(m["executable"])')"
fi

# --- installs (once) -------------------------------------------------------------------
verdaccio_dir="$work/verdaccio-$VERDACCIO_VERSION"
if full && [[ ! -f "$verdaccio_dir/.installed" ]]; then
    npm install --prefix "$verdaccio_dir" --no-audit --no-fund --loglevel=error \
        "verdaccio@$VERDACCIO_VERSION"
    touch "$verdaccio_dir/.installed"
fi
devpi_venv="$work/devpi-$DEVPI_SERVER_VERSION"
if full && [[ ! -f "$devpi_venv/.installed" ]]; then
    if command -v uv >/dev/null; then
        uv venv -q "$devpi_venv"
        uv pip install -q --python "$devpi_venv/bin/python" \
            "devpi-server==$DEVPI_SERVER_VERSION" "devpi-client==$DEVPI_CLIENT_VERSION"
    else
        python3 -m venv "$devpi_venv"
        "$devpi_venv/bin/pip" install -q \
            "devpi-server==$DEVPI_SERVER_VERSION" "devpi-client==$DEVPI_CLIENT_VERSION"
    fi
    touch "$devpi_venv/.installed"
fi

# --- processes -------------------------------------------------------------------------
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    # What the clients installed (hundreds of MB, in RAM on a tmpfs).
    if [[ -n "${client_dir:-}" ]]; then rm -rf "$client_dir"/depfw-side-by-side-*; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_http() { # url, log
    for _ in $(seq 1 600); do
        curl -fs -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.2
    done
    echo "no answer from $1; see $2" >&2
    exit 1
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

rm -f "$work/mirror.url"
"$PROXY_BENCH_BIN" mirror "$mirror_dir" "$work/mirror.url" >"$work/mirror.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do [[ -s "$work/mirror.url" ]] && break; sleep 0.1; done
mirror="$(cat "$work/mirror.url")"

depfw_port="$(free_port)"
rm -rf "$work/depfw-data"
cat >"$work/depfw.toml" <<EOF
[server]
listen = "127.0.0.1:$depfw_port"
data-dir = "$work/depfw-data"
[upstream.npm]
registry = "$mirror/"
[upstream.pypi]
index = "$mirror/pypi/simple/"
files = "$mirror/pypi-files/"
[upstream.cargo]
index = "$mirror/cargo-index/"
EOF
RUST_LOG=warn "$DEPFW_BIN" --config "$work/depfw.toml" serve >"$work/depfw.log" 2>&1 &
depfw_pid=$!
declare -A side_pid=([upstream]=${pids[0]} [depfw]=$depfw_pid)
pids+=("$depfw_pid")
depfw="http://127.0.0.1:$depfw_port"
baseline=""
if [[ -n "${DEPFW_BASELINE_BIN:-}" ]]; then
    baseline_port="$(free_port)"
    rm -rf "$work/depfw-baseline-data"
    sed -e "s#^listen = .*#listen = \"127.0.0.1:$baseline_port\"#" \
        -e "s#^data-dir = .*#data-dir = \"$work/depfw-baseline-data\"#" \
        "$work/depfw.toml" >"$work/depfw-baseline.toml"
    RUST_LOG=warn "$DEPFW_BASELINE_BIN" --config "$work/depfw-baseline.toml" serve \
        >"$work/depfw-baseline.log" 2>&1 &
    pids+=($!)
    side_pid[depfw-baseline]=$!
    baseline="http://127.0.0.1:$baseline_port"
fi

verdaccio="" devpi=""
if full; then
# Verdaccio keeps a packument for `maxage` before asking its uplink again: 30 minutes, so
# that a warm request is served from its cache as depfw's is.
verdaccio_port="$(free_port)"
rm -rf "$work/verdaccio-storage"
cat >"$work/verdaccio.yaml" <<EOF
storage: $work/verdaccio-storage
auth:
  htpasswd:
    file: $work/verdaccio-htpasswd
    max_users: -1
uplinks:
  mirror:
    url: $mirror/
    maxage: 30m
    timeout: 60s
packages:
  '@*/*':
    access: \$all
    proxy: mirror
  '**':
    access: \$all
    proxy: mirror
server:
  keepAliveTimeout: 60
max_body_size: 100mb
log: { type: stdout, format: pretty, level: warn }
EOF
node "$verdaccio_dir/node_modules/verdaccio/bin/verdaccio" --config "$work/verdaccio.yaml" \
    --listen "127.0.0.1:$verdaccio_port" >"$work/verdaccio.log" 2>&1 &
verdaccio_pid=$!
pids+=("$verdaccio_pid")
verdaccio="http://127.0.0.1:$verdaccio_port"

# devpi: a fresh server dir, and a mirror index `root/mirror` on the recorded PyPI pages.
devpi_port="$(free_port)"
rm -rf "$work/devpi-server" "$work/devpi-client"
"$devpi_venv/bin/devpi-init" --serverdir "$work/devpi-server" --no-root-pypi \
    --root-passwd bench >"$work/devpi.log" 2>&1
"$devpi_venv/bin/devpi-server" --serverdir "$work/devpi-server" --host 127.0.0.1 \
    --port "$devpi_port" >>"$work/devpi.log" 2>&1 &
devpi_pid=$!
pids+=("$devpi_pid")
devpi_root="http://127.0.0.1:$devpi_port"

fi
wait_http "$depfw/healthz" "$work/depfw.log"
if [[ -n "$baseline" ]]; then wait_http "$baseline/healthz" "$work/depfw-baseline.log"; fi
if full; then
wait_http "$verdaccio/-/ping" "$work/verdaccio.log"
wait_http "$devpi_root/+api" "$work/devpi.log"
devpi_cli() { "$devpi_venv/bin/devpi" --clientdir "$work/devpi-client" "$@" >>"$work/devpi.log" 2>&1; }
devpi_cli use "$devpi_root"
devpi_cli login root --password bench
devpi_cli index -c root/mirror type=mirror "mirror_url=$mirror/pypi/simple/"
devpi="$devpi_root/root/mirror/+simple"
fi

# nginx, when installed: the documents the metadata rows ask for, as static files with
# precompressed gzip copies (the cheapest a server can answer them), and the very bytes
# depfw answers each row with: its policy leaves out refused versions (lodash: 10 of 117),
# so its documents are smaller than upstream's, and the limit is measured on the same bytes
# (identity and gzip alike, so the bytes/response column matches depfw's).
nginx=""
if command -v nginx >/dev/null; then
    ngx="$work/nginx"
    rm -rf "$ngx" && mkdir -p "$ngx/root/corgi" "$ngx/root/pypi/simple/requests" \
        "$ngx/root/cargo-index/se/rd" "$ngx/tmp"
    as_depfw() { # path on depfw, Accept, file under nginx's root
        local out="$ngx/root/$3"
        curl -fs -H "Accept: $2" -H 'Accept-Encoding: identity' "$depfw/$1" -o "$out"
        curl -fs -H "Accept: $2" -H 'Accept-Encoding: gzip' "$depfw/$1" -o "$out.gz"
        # A body too small for depfw to compress comes back as is: no .gz for nginx either.
        [[ "$(head -c 2 "$out.gz" | od -An -tx1 | tr -d ' ')" == 1f8b ]] || rm -f "$out.gz"
    }
    as_depfw npm/lodash 'application/json' lodash
    as_depfw npm/lodash 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*' \
        corgi/lodash
    as_depfw pypi/simple/requests/ 'application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01' \
        pypi/simple/requests/index.json
    as_depfw cargo/index/se/rd/serde 'text/plain' cargo-index/se/rd/serde
    nginx_port="$(free_port)"
    cat >"$ngx/nginx.conf" <<EOF
worker_processes auto;
pid $ngx/nginx.pid;
error_log $ngx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $ngx/tmp; proxy_temp_path $ngx/tmp; fastcgi_temp_path $ngx/tmp;
    uwsgi_temp_path $ngx/tmp; scgi_temp_path $ngx/tmp;
    keepalive_requests 1000000;
    sendfile on; tcp_nopush on;
    gzip_static on;
    server {
        listen 127.0.0.1:$nginx_port;
        root $ngx/root;
        default_type application/json;
        location /pypi/ { index index.json; default_type application/vnd.pypi.simple.v1+json; }
        location /cargo-index/ { default_type text/plain; }
    }
}
EOF
    nginx -p "$ngx" -c "$ngx/nginx.conf" -g 'daemon off;' 2>>"$ngx/error.log" &
    pids+=($!)
    side_pid[nginx]=$!
    nginx="http://127.0.0.1:$nginx_port"
    wait_http "$nginx/lodash" "$ngx/error.log"
fi

idle_depfw=$(rss_kib "$depfw_pid")
if full; then idle_verdaccio=$(rss_kib "$verdaccio_pid"); fi

# --- installs ----------------------------------------------------------------------------
client_dir="${SIDE_BY_SIDE_CLIENT_DIR:-$work}"
mkdir -p "$client_dir"
project="$client_dir/depfw-side-by-side-npm"
mkdir -p "$project"
cat >"$project/package.json" <<'EOF'
{"name":"depfw-bench","version":"1.0.0","private":true,
"dependencies":{"express":"4.21.2","jest":"29.7.0"}}
EOF
: >"$project/.bench-globalnpmrc"
results="$work/results.tsv"
: >"$results"
now() { date +%s.%N; }
# CPU time (user + system, clock ticks) of a server: the process and its children (nginx's
# workers). Divided by the requests of a load it is the server's CPU per request, which
# depends far less on what else the machine runs than req/s does.
cpu_ticks() { # pid
    local t=0 p
    for p in "$1" $(pgrep -P "$1" || true); do
        [[ -r /proc/$p/stat ]] || continue
        t=$((t + $(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$p/stat")))
    done
    echo "$t"
}
# The CPU time, in ms so far, of the server an install goes through (the mirror for direct
# installs; empty for Verdaccio and devpi): after minus before is what one install cost it.
server_ms() { # side
    local side=$1 pid
    [[ $side == direct ]] && side=upstream
    pid="${side_pid[$side]:-}"
    if [[ -n "$pid" ]]; then echo $(($(cpu_ticks "$pid") * 1000 / $(getconf CLK_TCK))); fi
}
# One install's line of the results: kind, side, seconds, packages, server CPU ms.
record_install() { # kind, side, t0, t1, packages, server ms before
    local after cpu=""
    after=$(server_ms "$2")
    if [[ -n "$6" && -n "$after" ]]; then cpu=$((after - $6)); fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$(awk -v a="$3" -v b="$4" 'BEGIN{print b-a}')" "$5" "$cpu" >>"$results"
}
npm_install() { # side, registry
    rm -rf "$project/node_modules" "$project/package-lock.json" "$client_dir/depfw-side-by-side-npm-cache"
    local t0 t1 c0
    c0=$(server_ms "$1")
    t0=$(now)
    (cd "$project" && npm install "--registry=$2" "--cache=$client_dir/depfw-side-by-side-npm-cache" \
        --userconfig=/dev/null "--globalconfig=$project/.bench-globalnpmrc" \
        --no-audit --no-fund --ignore-scripts --update-notifier=false --loglevel=error >"$work/npm-$1.log" 2>&1) ||
        { echo "npm install through $1 failed; see $work/npm-$1.log" >&2; exit 1; }
    t1=$(now)
    local n
    n=$(python3 -c 'import json,sys; print(sum(1 for k in json.load(open(sys.argv[1]))["packages"] if k))' \
        "$project/package-lock.json")
    record_install npm "$1" "$t0" "$t1" "$n" "$c0"
    if [[ $1 == depfw ]]; then cp "$project/package-lock.json" "$client_dir/depfw-side-by-side-npm-depfw.lock"; fi
}
# ~37 packages with their dependencies; wheels only (nothing is built).
cat >"$work/requirements.txt" <<'EOF'
flask==3.0.3
requests==2.32.3
boto3==1.34.0
pydantic==2.9.2
rich==13.9.4
pyyaml==6.0.2
attrs==24.2.0
httpx==0.27.2
sqlalchemy==2.0.36
pytest==8.3.3
EOF
pip_install() { # side, index
    local dir="$client_dir/depfw-side-by-side-pip"
    rm -rf "$dir"
    local t0 t1 c0
    c0=$(server_ms "$1")
    t0=$(now)
    python3 -m pip install --isolated --disable-pip-version-check --no-cache-dir --no-compile \
        --only-binary=:all: --index-url "$2" --target "$dir" -r "$work/requirements.txt" \
        >"$work/pip-$1.log" 2>&1 ||
        { echo "pip install through $1 failed; see $work/pip-$1.log" >&2; exit 1; }
    t1=$(now)
    local n
    n=$(find "$dir" -maxdepth 1 -name '*.dist-info' | wc -l)
    record_install pip "$1" "$t0" "$t1" "$n" "$c0"
}

# The crates of benches/cargo-project (its committed Cargo.lock, so every side fetches the
# same set) into an empty CARGO_HOME, a fresh one per run like the npm cache, whose
# config.toml replaces crates.io with the side's sparse index (the mirror's config.json sends
# downloads to the mirror, depfw's to depfw). cargo's defaults otherwise. The real cargo
# binary, not rustup's proxy: the proxy's toolchain lookup is not the client's work.
cargo_bin="$(rustup which cargo 2>/dev/null || command -v cargo)"
cargo_project="$root/benches/cargo-project"
cargo_crates=$(grep -c '^source = "registry+' "$cargo_project/Cargo.lock")
cargo_fetch() { # side, sparse index URL
    local home="$client_dir/depfw-side-by-side-cargo-home"
    rm -rf "$home" && mkdir -p "$home"
    cat >"$home/config.toml" <<EOF
[source.crates-io]
replace-with = "bench"
[source.bench]
registry = "sparse+$2"
[net]
offline = false
EOF
    local t0 t1 c0
    c0=$(server_ms "$1")
    t0=$(now)
    CARGO_HOME="$home" "$cargo_bin" fetch --locked --manifest-path "$cargo_project/Cargo.toml" \
        >"$work/cargo-$1.log" 2>&1 ||
        { echo "cargo fetch through $1 failed; see $work/cargo-$1.log" >&2; exit 1; }
    t1=$(now)
    local n
    n=$(find "$home/registry/cache" -name '*.crate' | wc -l)
    if (( n != cargo_crates )); then
        echo "cargo fetch through $1 fetched $n crates, the lock has $cargo_crates" >&2
        exit 1
    fi
    # Not left behind: ~80 MB, in RAM when SIDE_BY_SIDE_CLIENT_DIR is a tmpfs.
    rm -rf "$home"
    record_install cargo "$1" "$t0" "$t1" "$n" "$c0"
}

# The cached npm tarballs of the install, fetched again with nothing else running: once over
# one connection (the latency of a cached artifact) and over 15 (npm's default maxsockets),
# straight from the mirror and through depfw (and the baseline), in the same round. The
# paths come from the lockfile of the round's install through depfw: the mirror has every
# version in it, while depfw refuses some the direct install may take (a release inside the
# 48-hour cooldown).
artifacts() {
    python3 - "$client_dir/depfw-side-by-side-npm-depfw.lock" "$mirror" "$depfw/npm" "$baseline" >>"$results" <<'PY'
import http.client, json, statistics, sys, threading, time
from urllib.parse import urlsplit
lock, mirror, depfw, baseline = sys.argv[1:]
paths = [urlsplit(v["resolved"]).path for k, v in json.load(open(lock))["packages"].items()
         if k and "resolved" in v]
prefix = "/npm/"
paths = [p[len(prefix) - 1:] if p.startswith(prefix) else p for p in paths]
sides = [("direct", mirror), ("depfw", depfw)] + ([("depfw-baseline", baseline + "/npm")] if baseline else [])
def fetch_all(base, conns):
    u = urlsplit(base)
    todo, lock_, lat, failed = iter(paths), threading.Lock(), [], []
    def worker():
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        while True:
            with lock_:
                p = None if failed else next(todo, None)
            if p is None:
                return
            t = time.perf_counter()
            try:
                c.request("GET", u.path.rstrip("/") + p)
                r = c.getresponse()
                r.read()
                status = r.status
            except (OSError, http.client.HTTPException) as e:
                status = e
            with lock_:
                if status != 200:
                    failed.append(f"{base}{p}: {status}")
                else:
                    lat.append(time.perf_counter() - t)
    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker) for _ in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    # A thread's sys.exit ends only that thread: a failed fetch is reported from here.
    if failed or not lat:
        sys.exit(f"fetching the install's tarballs again failed: {failed[0] if failed else 'no tarballs in the lockfile'}")
    return time.perf_counter() - t0, statistics.median(lat)
for conns in (1, 15):
    for side, base in sides:
        total, median = fetch_all(base, conns)
        print(f"art\t{conns}\t{side}\t{total:.4f}\t{median:.6f}\t{len(paths)}")
PY
}

# Every side's install, npm, pip then cargo, each straight from the mirror and through the proxies.
installs() {
    if installs_of npm; then
        npm_install direct "$mirror/"
        npm_install depfw "$depfw/npm/"
        if [[ -n "$baseline" ]]; then npm_install depfw-baseline "$baseline/npm/"; fi
        if full; then npm_install verdaccio "$verdaccio/"; fi
    fi
    if installs_of pip; then
        pip_install direct "$mirror/pypi/simple/"
        pip_install depfw "$depfw/pypi/simple/"
        if [[ -n "$baseline" ]]; then pip_install depfw-baseline "$baseline/pypi/simple/"; fi
        if full; then pip_install devpi "$devpi/"; fi
    fi
    if installs_of cargo; then
        cargo_fetch direct "$mirror/cargo-index/"
        cargo_fetch depfw "$depfw/cargo/index/"
        if [[ -n "$baseline" ]]; then cargo_fetch depfw-baseline "$baseline/cargo/index/"; fi
    fi
}

# Cold installs first (they also record whatever the mirror is missing, and fill the
# proxies' caches), not counted.
if with_installs; then
    echo "cold installs (recording misses into $mirror_dir)..." >&2
    installs
fi
: >"$results"

# What each side serves for the measured documents: depfw's default policy leaves out the
# versions it refuses (e.g. those with known advisories), so its documents can be smaller.
count_versions() { # side, url
    curl -fs -H 'Accept: application/json' "$2" | python3 -c 'import json, sys
d = json.load(sys.stdin)
print(len(d["versions"]))' |
        sed "s#^#versions\t$1\tnpm\t#" >>"$results"
}

# --- interleaved rounds ------------------------------------------------------------------
hz=$(getconf CLK_TCK)
load() { # case, side, url, headers
    local out before cpu_us="" pid="${side_pid[$2]:-}"
    [[ -n "$pid" ]] && before=$(cpu_ticks "$pid")
    out=$("$PROXY_BENCH_BIN" load "$3" "$4" "$conns" "$requests") ||
        { echo "load on $3 failed" >&2; exit 1; }
    # The load's 3 warm-up requests are counted in; at conns x requests they are noise.
    [[ -n "$pid" ]] && cpu_us=$(awk -v a="$before" -v b="$(cpu_ticks "$pid")" -v hz="$hz" \
        -v n="$((conns * requests))" 'BEGIN{printf "%.1f", (b - a) * 1e6 / hz / n}')
    printf 'meta\t%s\t%s\t%s\t%s\n' "$1" "$2" "$out" "${cpu_us:--}" | tr ' ' '\t' >>"$results"
}
cases=(lodash-full lodash-npm requests-pip serde-cargo)
if [[ $only == installs ]]; then cases=(); fi
for round in $(seq 1 "$runs"); do
    echo "round $round of $runs..." >&2
    for c in "${cases[@]}"; do
        # `p`: the path on depfw, and on the baseline depfw when there is one.
        case $c in
            lodash-full) h=full up="$mirror/lodash" ng="$nginx/lodash" p="npm/lodash"
                other=verdaccio o="$verdaccio/lodash" ;;
            lodash-npm) h=npm up="$mirror/lodash" ng="$nginx/corgi/lodash" p="npm/lodash"
                other=verdaccio o="$verdaccio/lodash" ;;
            requests-pip) h=pip up="$mirror/pypi/simple/requests/" ng="$nginx/pypi/simple/requests/"
                p="pypi/simple/requests/" other=devpi o="$devpi/requests/" ;;
            serde-cargo) h=cargo up="$mirror/cargo-index/se/rd/serde" ng="$nginx/cargo-index/se/rd/serde"
                p="cargo/index/se/rd/serde" other="" o="" ;;
        esac
        load "$c" upstream "$up" "$h"
        if [[ -n "$nginx" ]]; then load "$c" nginx "$ng" "$h"; fi
        load "$c" depfw "$depfw/$p" "$h"
        if [[ -n "$baseline" ]]; then load "$c" depfw-baseline "$baseline/$p" "$h"; fi
        if full && [[ -n "$other" ]]; then load "$c" "$other" "$o" "$h"; fi
    done
    if with_installs; then
        installs
        if installs_of npm; then artifacts; fi
    fi
done
count_versions upstream "$mirror/lodash"
count_versions depfw "$depfw/npm/lodash"
if full; then count_versions verdaccio "$verdaccio/lodash"; fi
curl_pypi() { curl -fs -H 'Accept: application/vnd.pypi.simple.v1+json' "$@"; }
for side in upstream depfw; do
    url="$mirror/pypi/simple/requests/"
    [[ $side == depfw ]] && url="$depfw/pypi/simple/requests/"
    curl_pypi "$url" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["files"]))' |
        sed "s#^#versions\t$side\tpypi\t#" >>"$results"
done

# --- memory: every recorded packument, both forms, through depfw and Verdaccio -------------
if full; then
names="$work/packuments.txt"
find "$mirror_dir/packuments" -name '*.json' -printf '%f\n' | sed 's/\.json$//; s#__#%2f#' >"$names"
warm() { # base url
    xargs -P 4 -I{} curl -s -o /dev/null -H 'Accept: application/json' "$1{}" <"$names"
    xargs -P 4 -I{} curl -s -o /dev/null --compressed \
        -H 'Accept: application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*' \
        "$1{}" <"$names"
}
warm "$depfw/npm/"
warm "$verdaccio/"
sleep 1
printf 'rss\tdepfw\t%s\t%s\t%s\n' "$idle_depfw" "$(rss_kib "$depfw_pid")" "$(wc -l <"$names")" >>"$results"
printf 'rss\tverdaccio\t%s\t%s\t%s\n' "$idle_verdaccio" "$(rss_kib "$verdaccio_pid")" "$(wc -l <"$names")" >>"$results"
printf 'rss\tdevpi\t\t%s\t\n' "$(rss_kib "$devpi_pid")" >>"$results"
fi

# --- the table ---------------------------------------------------------------------------
python3 - "$results" "$runs" "$conns" "$requests" "$DEPFW_BIN" \
    "$("$DEPFW_BIN" --version 2>/dev/null || echo depfw)" "verdaccio $VERDACCIO_VERSION" \
    "devpi-server $DEVPI_SERVER_VERSION" "$(nginx -v 2>&1 | sed 's#.*/##' || true)" \
    "$(npm --version), node $(node --version)" "$(python3 -m pip --version | cut -d' ' -f2)" "$nginx" \
    "$("$cargo_bin" --version | cut -d' ' -f2)" "$(df --output=fstype "$client_dir" | tail -1)" <<'PY'
import statistics, sys, datetime, os, platform
path, runs, conns, reqs, _bin, v_depfw, v_verd, v_devpi, v_nginx, v_npm, v_pip, nginx, v_cargo, client_fs = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
med = statistics.median
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.machine())
load = " ".join(open("/proc/loadavg").read().split()[:3])
print(f"## depfw side by side ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC)\n")
print(f"{os.cpu_count()} CPUs ({cpu}), load average at the end {load}; {v_depfw}, {v_verd}, {v_devpi}"
      + (f", nginx {v_nginx}" if nginx else ", no nginx") + f"; npm {v_npm}, pip {v_pip}, cargo {v_cargo}; the clients install on {client_fs}")
print(f"medians of {runs} interleaved rounds; metadata: {conns} connections x {reqs} requests each\n")
labels = {"lodash-full": "lodash packument, full JSON", "lodash-npm": "lodash packument, npm's headers (corgi, gzip)",
          "requests-pip": "PyPI `requests` page, pip's headers (JSON, gzip)",
          "serde-cargo": "crates.io `serde` index file, cargo's headers (gzip)"}
sides = ["upstream", "nginx", "depfw", "depfw-baseline", "verdaccio", "devpi"]
if not any(x[0] == "meta" for x in rows):
    labels = {}
else:
    print("| cached metadata, c" + conns + " | server | req/s | p50 | p99 | bytes/response | req/s vs " + ("nginx" if nginx else "upstream") + " | req/s vs depfw | server CPU/request |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for case, label in labels.items():
    got = {}
    for side in sides:
        r = [x for x in rows if x[0] == "meta" and x[1] == case and x[2] == side]
        if r:
            cpu = [float(x[7]) for x in r if len(x) > 7 and x[7] != "-"]
            got[side] = (med(float(x[3]) for x in r), med(float(x[4]) for x in r), med(float(x[5]) for x in r), r[-1][6],
                         f"{med(cpu):.1f} µs" if cpu else "")
    ref = got.get("nginx" if nginx else "upstream")
    for side, (rps, p50, p99, size, cpu) in got.items():
        vs_ref = f"{rps / ref[0]:.2f}x" if ref else ""
        vs_depfw = f"{rps / got['depfw'][0]:.2f}x" if "depfw" in got and side != "depfw" else ""
        print(f"| {label} | {side} | {rps:,.0f} | {p50:.2f} ms | {p99:.2f} ms | {int(size):,} | {vs_ref} | {vs_depfw} | {cpu} |")
vers = [x for x in rows if x[0] == "versions"]
if vers:
    print("\nserved: lodash versions " + ", ".join(f"{x[1]} {x[3]}" for x in vers if x[2] == "npm")
          + "; `requests` files " + ", ".join(f"{x[1]} {x[3]}" for x in vers if x[2] == "pypi"))
if not any(x[0] in ("npm", "pip", "cargo", "rss") for x in rows):
    sys.exit(0)
# "vs direct": the ratio of the medians; "paired": the median of each round's ratio to the
# direct install of the same round (the rounds interleave, so a slow minute slows both).
print("\n| warm install, empty client cache | side | packages | median | runs | vs direct | paired | server CPU per install, median |")
print("|---|---|---:|---:|---|---:|---:|---:|")
for kind, label in (("npm", "`npm install` express + jest"), ("pip", "`pip install` 10 requirements (wheels)"),
                    ("cargo", "`cargo fetch --locked` 9 dependencies")):
    direct = None
    direct_runs = [float(x[2]) for x in rows if x[0] == kind and x[1] == "direct"]
    for side in ("direct", "depfw", "depfw-baseline", "verdaccio", "devpi"):
        r = [x for x in rows if x[0] == kind and x[1] == side]
        if not r:
            continue
        m = med(float(x[2]) for x in r)
        direct = direct or m
        paired = [float(x[2]) / d for x, d in zip(r, direct_runs)]
        paired_s = f"{med(paired):.3f}x" if paired else ""
        runs_s = ", ".join(f"{float(x[2]):.2f}" for x in r)
        cpus = [float(x[4]) for x in r if len(x) > 4 and x[4]]
        cpu_s = f"{med(cpus):.0f} ms" if cpus else ""
        print(f"| {label} | {side} | {r[-1][3]} | {m:.2f} s | {runs_s} | {m / direct:.3f}x | {paired_s} | {cpu_s} |")
art = [x for x in rows if x[0] == "art"]
if art:
    print(f"\n| cached npm tarballs of the install ({art[0][5]}), fetched again | connections | side | all, median | per tarball, median | vs direct |")
    print("|---|---:|---|---:|---:|---:|")
    for conns in ("1", "15"):
        direct = None
        for side in ("direct", "depfw", "depfw-baseline"):
            r = [x for x in art if x[1] == conns and x[2] == side]
            if not r:
                continue
            total, per = med(float(x[3]) for x in r), med(float(x[4]) for x in r)
            direct = direct or total
            print(f"| | {conns} | {side} | {total * 1000:.0f} ms | {per * 1000:.2f} ms | {total / direct:.2f}x |")
if any(x[0] == "rss" for x in rows):
    print("\n| resident memory (VmRSS) | idle | after | after - idle |")
    print("|---|---:|---:|---:|")
for x in rows:
    if x[0] != "rss":
        continue
    after = int(x[3]) / 1024
    if x[2]:
        idle = int(x[2]) / 1024
        print(f"| {x[1]}, after the installs and warming {x[4]} recorded packuments (full JSON, then corgi + gzip) | {idle:.1f} MiB | {after:.1f} MiB | {after - idle:.1f} MiB |")
    else:
        print(f"| {x[1]}, after the pip installs | | {after:.1f} MiB | |")
PY
