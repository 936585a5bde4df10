#!/usr/bin/env bash
# The content rules over real artifacts: downloads the latest tarball of the top N npm
# packages (feeds/popular/npm.txt) plus known install-script and native-binary packages,
# and a wheel of the top M PyPI projects (feeds/popular/pypi.txt) plus known .pth shippers,
# from the live registries, then runs `cargo bench --bench content` over them: every
# finding it prints on these legitimate artifacts is a false positive, and it prints the
# scan's throughput against the hashing every served download already pays.
#
#   bash benches/content-sample.sh [DIR] [N_NPM] [M_PYPI]
#
# DIR defaults to target/content-sample (kept between runs: files already there are not
# downloaded again).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-target/content-sample}"
n_npm="${2:-50}"
m_pypi="${3:-30}"
mkdir -p "$dir/npm" "$dir/pypi"

# Packages with install scripts or native binaries, the shapes the rules must not flag.
npm_extra="esbuild @esbuild/linux-x64 sharp bcrypt puppeteer electron core-js protobufjs
@swc/core @swc/core-linux-x64-gnu node-sass sqlite3 canvas @sentry/cli @vscode/ripgrep
es5-ext fsevents husky nx @parcel/watcher"
# Wheels that ship .pth files (setuptools' distutils-precedence.pth, pytest-cov's).
pypi_extra="setuptools pytest-cov pywin32 virtualenv coverage typeguard"

fetch_npm() {
  local name="$1" url out
  out="$dir/npm/$(echo "$name" | tr '/@' '__').tgz"
  [ -s "$out" ] && return 0
  url=$(curl -fsS --max-time 30 "https://registry.npmjs.org/${name/\//%2f}/latest" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["dist"]["tarball"])') || return 0
  curl -fsS --max-time 120 -o "$out" "$url" || rm -f "$out"
}

fetch_pypi() {
  local name="$1" url out
  url=$(curl -fsS --max-time 30 "https://pypi.org/pypi/$name/json" | python3 -c '
import json, sys, urllib.parse
# Wheels only, and none over 100 MB (torch and the CUDA wheels would dominate the sample).
files = [u for u in json.load(sys.stdin)["urls"]
         if u["filename"].endswith(".whl") and u.get("size", 0) < 100_000_000]
def rank(u):
    f = u["filename"]
    return (0 if "manylinux" in f and "x86_64" in f else 1 if "none-any" in f else 2, f)
files.sort(key=rank)
# Some mirrors answer with URLs relative to the JSON document.
base = "https://pypi.org/pypi/%s/json" % sys.argv[1]
print(urllib.parse.urljoin(base, files[0]["url"]) if files else "")' "$name") || return 0
  [ -n "$url" ] || return 0
  out="$dir/pypi/$(basename "$url")"
  [ -s "$out" ] && return 0
  curl -fsS --max-time 300 -o "$out" "$url" || rm -f "$out"
}

for name in $(grep -v '^#' feeds/popular/npm.txt | head -n "$n_npm") $npm_extra; do
  fetch_npm "$name"
done
for name in $(grep -v '^#' feeds/popular/pypi.txt | head -n "$m_pypi") $pypi_extra; do
  fetch_pypi "$name"
done
echo "sample: $(ls "$dir/npm" | wc -l) npm tarballs, $(ls "$dir/pypi" | wc -l) wheels, $(du -sh "$dir" | cut -f1)"
[ -n "${DEPFW_SAMPLE_ONLY:-}" ] && exit 0
cargo bench --bench content -- "$dir"
