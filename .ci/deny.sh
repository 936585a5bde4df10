#!/usr/bin/env bash
# depfw's own supply chain: `cargo deny check` (deny.toml) with no network. The RustSec
# advisories come from the shared data set (../shared/data/advisories/rustsec-db, or
# $DEPFW_SHARED_DATA), the same data depfw's bundled snapshot is built from; cargo-deny reads
# its advisory database only as a git checkout under `db-path`, so the copy is committed into
# a throwaway repository there first.
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned like every tool CI installs; upgrade on purpose.
CARGO_DENY_VERSION=0.20.2
if [ "$(cargo deny --version 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+')" != "$CARGO_DENY_VERSION" ]; then
  echo "deny: installing cargo-deny $CARGO_DENY_VERSION"
  cargo install cargo-deny --version "=$CARGO_DENY_VERSION" --locked
fi

shared="${DEPFW_SHARED_DATA:-../shared/data}"
source_db="$shared/advisories/rustsec-db"
[ -d "$source_db/crates" ] || { echo "deny: no RustSec database at $source_db" >&2; exit 1; }
# cargo-deny 0.20 keeps the default database (github.com/rustsec/advisory-db) in this
# directory under db-path (deny.toml: target/advisory-dbs).
db=target/advisory-dbs/advisory-db-3157b0e258782691
rm -rf target/advisory-dbs
mkdir -p "$db"
cp -R "$source_db/." "$db/"
git -C "$db" init -q
git -C "$db" add -A
git -C "$db" -c user.name=depfw -c user.email=ci@depfw.invalid commit -q -m "RustSec advisory-db from $source_db"

# cargo-deny reads `cargo metadata` for every platform, which needs the manifests of crates
# that are built only elsewhere (fiat-crypto, for instance): fetch them all first, so that
# the check itself runs offline.
cargo fetch --locked
cargo deny --offline --locked check
