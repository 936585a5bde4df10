#!/usr/bin/env bash
# Memory benchmark of `depfw serve`'s metadata caches (issues #11, #17): resident memory
# after warming N npm packuments, against their raw size.
#
# Starts a fixture upstream on 127.0.0.1 (python3's http.server over generated packuments
# shaped like the registry's: many versions, each with dependencies, scripts, maintainers,
# dist with sha512 integrity and signatures, a `time` entry, a long readme), starts the
# release `depfw serve` in front of it with the default cache bounds, and prints:
#   idle RSS; RSS after warming every packument once in the full form (plain JSON, what
#   `curl` and `npm view` ask for); RSS after also warming the abbreviated form with gzip
#   (what npm, pnpm, yarn and bun install with); the raw upstream bytes; and
#   (RSS - idle) / raw for both.
# No network needed. Usage:
#   benches/memory.sh                      # builds target/release/depfw, 40 packuments, ~160 MB
#   DEPFW_BIN=path/to/depfw benches/memory.sh
#   MEMBENCH_N=12 MEMBENCH_MB=60 benches/memory.sh   # twelve 60 MB packuments
# MEMBENCH_N: how many packuments (default 40); MEMBENCH_MB: size of each in MB (default: a
# mix from 0.5 to 16 MB, ~4 MB on average); MEMBENCH_EXTRA_TOML: appended to the [upstream]
# table of depfw's config (e.g. "render-cache-bytes = 1048576"); MEMBENCH_CORGI_FIRST=1:
# warm the abbreviated form first (what an install alone leaves behind).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
if [[ -z "${DEPFW_BIN:-}" ]]; then
    cargo build --release --bin depfw
    DEPFW_BIN="$target/release/depfw"
fi
n="${MEMBENCH_N:-40}"
mb="${MEMBENCH_MB:-mix}"
work="$target/memory-bench"
fixture="$work/fixture-$n-$mb"
mkdir -p "$work"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
up_port="$(free_port)"
upstream="http://127.0.0.1:$up_port"

if [[ ! -f "$fixture/.done" ]]; then
    rm -rf "$fixture" && mkdir -p "$fixture"
    python3 - "$fixture" "$n" "$mb" <<'PY'
import base64, hashlib, json, os, random, sys
out, n, mb = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(17)
MIX = [0.5, 1, 2, 4, 8, 16, 1, 2, 3, 4]
words = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
         "incididunt ut labore et dolore magna aliqua parser stream buffer async promise "
         "module export import config plugin loader transform bundle runtime").split()
def sentence(k): return " ".join(rng.choice(words) for _ in range(k))
def dep(): return "dep-" + "".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(3, 10)))
def person(): 
    u = "".join(rng.choice("abcdefghij") for _ in range(rng.randint(4, 9)))
    return {"name": u, "email": u + "@example.com"}
for i in range(n):
    name = f"membench-pkg-{i:03d}"
    target = float(mb if mb != "mix" else MIX[i % len(MIX)]) * 1e6
    readme = "\n\n".join(sentence(40) for _ in range(60))
    maintainers = [person() for _ in range(rng.randint(1, 6))]
    deps = [dep() for _ in range(40)]
    doc = {"_id": name, "_rev": f"{i}-{hashlib.md5(name.encode()).hexdigest()}", "name": name,
           "description": sentence(12), "dist-tags": {}, "versions": {}, "time": {},
           "maintainers": maintainers, "author": person(), "repository":
           {"type": "git", "url": f"git+https://github.com/example/{name}.git"},
           "homepage": f"https://github.com/example/{name}#readme", "keywords": sentence(8).split(),
           "bugs": {"url": f"https://github.com/example/{name}/issues"}, "license": "MIT",
           "readme": readme, "readmeFilename": "README.md"}
    doc["time"]["created"] = "2015-03-01T10:00:00.000Z"
    size, v = len(json.dumps(doc)), 0
    while size < target:
        major, minor, patch = v // 400, (v // 20) % 20, v % 20
        ver = f"{major}.{minor}.{patch}" + ("-beta.%d" % (v % 7) if v % 13 == 5 else "")
        v += 1
        tgz = os.urandom(16)
        vdoc = {"name": name, "version": ver, "description": doc["description"],
                "main": "index.js", "types": "index.d.ts",
                "scripts": {"test": "jest", "build": "tsc -p .", "lint": "eslint ."},
                "repository": doc["repository"], "keywords": doc["keywords"], "author": doc["author"],
                "license": "MIT", "bugs": doc["bugs"], "homepage": doc["homepage"],
                "dependencies": {d: f"^{rng.randint(0, 9)}.{rng.randint(0, 20)}.0" for d in rng.sample(deps, rng.randint(2, 12))},
                "devDependencies": {d: f"^{rng.randint(0, 9)}.{rng.randint(0, 20)}.0" for d in rng.sample(deps, rng.randint(5, 20))},
                "engines": {"node": ">=14"}, "gitHead": hashlib.sha1(tgz).hexdigest(),
                "_id": f"{name}@{ver}", "_nodeVersion": "20.11.1", "_npmVersion": "10.2.4",
                "dist": {"integrity": "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode(),
                         "shasum": hashlib.sha1(tgz).hexdigest(),
                         "tarball": f"UPSTREAM/{name}/-/{name}-{ver}.tgz",
                         "fileCount": rng.randint(5, 400), "unpackedSize": rng.randint(5000, 5000000),
                         "signatures": [{"keyid": "SHA256:jl3bwswu80PjjokCgh0o2w5c2U4LhQAE57gj9cz1kzA",
                                         "sig": base64.b64encode(os.urandom(70)).decode()}]},
                "_npmUser": maintainers[0], "directories": {}, "maintainers": maintainers,
                "_npmOperationalInternal": {"host": "s3://npm-registry-packages", "tmp": f"tmp/{name}_{v}"},
                "_hasShrinkwrap": False}
        if v % 5 == 0:
            vdoc["peerDependencies"] = {"react": "^18.0.0"}
        doc["versions"][ver] = vdoc
        doc["time"][ver] = "20%02d-%02d-%02dT10:00:00.000Z" % (16 + (v // 4000) % 8, 1 + v % 12, 1 + v % 28)
        size += len(json.dumps(vdoc)) + len(ver) + 40
    doc["time"]["modified"] = "2024-01-01T00:00:00.000Z"
    doc["dist-tags"]["latest"] = ver
    with open(os.path.join(out, name), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
PY
    touch "$fixture/.done"
fi
# Tarball URLs name the fixture's port, which changes per run: served with it filled in.
served="$work/served"
rm -rf "$served" && mkdir -p "$served"
for f in "$fixture"/membench-pkg-*; do
    sed "s#UPSTREAM#$upstream#g" "$f" > "$served/$(basename "$f")"
done
raw=$(cat "$served"/membench-pkg-* | wc -c)

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
python3 -m http.server "$up_port" --bind 127.0.0.1 --directory "$served" >"$work/upstream.log" 2>&1 &
pids+=($!)

port="$(free_port)"
data="$work/depfw-data"
rm -rf "$data"
cat >"$work/depfw.toml" <<EOF
[server]
listen = "127.0.0.1:$port"
data-dir = "$data"
[upstream.npm]
registry = "$upstream/"
[upstream]
${MEMBENCH_EXTRA_TOML:-}
EOF
RUST_LOG=warn "$DEPFW_BIN" --config "$work/depfw.toml" serve >"$work/depfw.log" 2>&1 &
depfw_pid=$!
pids+=("$depfw_pid")
for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fs "http://127.0.0.1:$port/healthz" >/dev/null || { echo "depfw did not start; see $work/depfw.log"; exit 1; }

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$depfw_pid/status"; }
sleep 1
idle=$(rss_kib)
warm() { # accept, accept-encoding
    for f in "$served"/membench-pkg-*; do
        code=$(curl -s -o /dev/null -w '%{http_code}' -H "Accept: $1" -H "Accept-Encoding: $2" \
            "http://127.0.0.1:$port/npm/$(basename "$f")")
        [[ "$code" == 200 ]] || { echo "GET $(basename "$f"): HTTP $code; see $work/depfw.log"; exit 1; }
    done
}
full_form() { warm "application/json" "identity"; }
corgi_form() { warm "application/vnd.npm.install-v1+json" "gzip"; }
if [[ -n "${MEMBENCH_CORGI_FIRST:-}" ]]; then
    first_label="abbreviated/gz" second_label="+ full form"
    corgi_form; sleep 1; first=$(rss_kib)
    full_form; sleep 1; both=$(rss_kib)
else
    first_label="full form" second_label="+ abbrev./gz"
    full_form; sleep 1; first=$(rss_kib)
    corgi_form; sleep 1; both=$(rss_kib)
fi

mib() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$idle" -v r="$raw" 'BEGIN { printf "%.2f", (a - b) * 1024 / r }'; }
echo "depfw:             $DEPFW_BIN"
echo "packuments:        $n (${mb} MB each; mix = 0.5 to 16 MB)"
echo "raw upstream:      $(mib $((raw / 1024)))"
echo "idle RSS:          $(mib "$idle")"
printf 'after %-15s %s   (RSS - idle) / raw = %s\n' "$first_label:" "$(mib "$first")" "$(ratio "$first")"
printf 'after %-15s %s   (RSS - idle) / raw = %s\n' "$second_label:" "$(mib "$both")" "$(ratio "$both")"
