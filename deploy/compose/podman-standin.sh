#!/usr/bin/env bash
# Runs the Dockerfile's final stage for real, under podman, where no registry is reachable:
#
#   source /path/to/pg.env   # DEPFW_TEST_POSTGRES_URL from `bash .ci/postgres.sh start`
#   cargo build --release && bash deploy/compose/podman-standin.sh [path/to/depfw]
#
# The build stage (rust image) and the distroless base cannot be pulled on the machine this
# was written on, so the base is a stand-in made of this Debian 12 host's own glibc, libgcc
# and CA certificates (the files distroless cc-debian12 ships) and the binary is the one
# given. Everything after the final FROM is the Dockerfile's, as written. Two containers then
# run as docker-compose.yml runs its replicas (read-only root, tmpfs /tmp, no capabilities,
# no-new-privileges, env file, config, admin token and signing key mounted as secrets, one
# named volume each) on the PostgreSQL of DEPFW_TEST_POSTGRES_URL; each must turn healthy
# through the image's HEALTHCHECK, run as uid 65532 with no capabilities, share agents, and
# stop cleanly. Everything it makes is removed at the end. Needs podman, runc, slirp4netns.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-$repo/target/release/depfw}
: "${DEPFW_TEST_POSTGRES_URL:?start PostgreSQL with .ci/postgres.sh first}"
grep -q '^VERSION_ID="12"' /etc/os-release || { echo "needs a Debian 12 host (the base's files)" >&2; exit 2; }

work=$(mktemp -d)
tag=$(basename "$work" | tr 'A-Z.' 'a-z-')
db="standin_${tag//-/_}"
# crun refuses hybrid cgroups and podman's default ulimits here: runc, no default ulimits.
export CONTAINERS_CONF=$work/containers.conf
printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' > "$CONTAINERS_CONF"
cleanup() {
  podman rm -f "$tag-1" "$tag-2" >/dev/null 2>&1 || true
  podman volume rm "$tag-1-state" "$tag-2-state" >/dev/null 2>&1 || true
  podman rmi "localhost/$tag-depfw" "localhost/$tag-base" >/dev/null 2>&1 || true
  psql "$DEPFW_TEST_POSTGRES_URL" -qc "drop database if exists $db" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The stand-in base.
mkdir -p "$work/base/lib/x86_64-linux-gnu" "$work/base/lib64" "$work/base/etc/ssl/certs" "$work/base/tmp"
cp /lib/x86_64-linux-gnu/{libgcc_s.so.1,libm.so.6,libc.so.6} "$work/base/lib/x86_64-linux-gnu/"
cp /lib64/ld-linux-x86-64.so.2 "$work/base/lib64/"
cp /etc/ssl/certs/ca-certificates.crt "$work/base/etc/ssl/certs/"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n' > "$work/base/etc/passwd"
chmod 1777 "$work/base/tmp"
printf 'FROM scratch\nCOPY . /\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n' > "$work/base/Containerfile"
podman build -q --isolation=chroot -t "localhost/$tag-base" "$work/base" >/dev/null

# The Dockerfile's final stage on it, with the build stage's /out made here.
mkdir -p "$work/ctx/out/usr/local/bin" "$work/ctx/out/var/lib/depfw"
install -m 0755 "$bin" "$work/ctx/out/usr/local/bin/depfw"
chmod 0700 "$work/ctx/out/var/lib/depfw"
awk '/^FROM gcr.io\/distroless/{p=1} p' "$repo/Dockerfile" |
  sed -e "s|^FROM gcr.io/distroless.*|FROM localhost/$tag-base|" -e 's|--from=build \(.*\)/out/|\1out/|' \
  > "$work/ctx/Containerfile"
podman build -q --isolation=chroot --format docker -t "localhost/$tag-depfw" "$work/ctx" >/dev/null

# The secrets, as README "Container" makes them; the database through slirp4netns's
# host-loopback address.
psql "$DEPFW_TEST_POSTGRES_URL" -qc "create database $db"
s=$work/secrets
mkdir -m 700 "$s" "$s/keygen"
echo "DEPFW_STORE=$(echo "${DEPFW_TEST_POSTGRES_URL%/*}/$db" | sed 's|@127.0.0.1:|@10.0.2.2:|')" > "$s/depfw-store.env"
head -c 32 /dev/urandom | base64 > "$s/depfw-admin-token"
chmod 600 "$s/depfw-store.env" "$s/depfw-admin-token"
chown 65532:65532 "$s/depfw-admin-token" "$s/keygen"
net=(--network slirp4netns:allow_host_loopback=true)
podman run --rm "${net[@]}" --env-file "$s/depfw-store.env" -v "$s/keygen:/keygen" \
  "localhost/$tag-depfw" --data-dir /keygen log public-key > "$work/depfw.pub" 2>/dev/null
mv "$s/keygen/signing-key" "$s/depfw-signing-key"

for n in 1 2; do
  podman run -d --name "$tag-$n" "${net[@]}" -p "127.0.0.1::7878" -p "127.0.0.1::7879" \
    --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
    --env-file "$s/depfw-store.env" -e DEPFW_LOG_FORMAT=json \
    -v "$repo/deploy/compose/depfw.toml:/etc/depfw/depfw.toml:ro" -v "$tag-$n-state:/var/lib/depfw" \
    -v "$s/depfw-admin-token:/run/secrets/depfw-admin-token:ro" \
    -v "$s/depfw-signing-key:/var/lib/depfw/signing-key:ro" \
    "localhost/$tag-depfw" >/dev/null 2>&1
done
for n in 1 2; do
  for _ in $(seq 120); do
    podman healthcheck run "$tag-$n" >/dev/null 2>&1 && break
    sleep 1
  done
  podman healthcheck run "$tag-$n" >/dev/null 2>&1 || { podman logs "$tag-$n" >&2; echo "replica $n never healthy" >&2; exit 1; }
  top=$(podman top "$tag-$n" huser capeff | tail -1)
  [ "$(echo "$top" | awk '{print $1, $2}')" = "65532 none" ] || { echo "replica $n runs as: $top" >&2; exit 1; }
done
admin() { podman port "$tag-$1" 7879/tcp; }
token=$(cat "$s/depfw-admin-token")
curl -sf -X POST -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  -d '{"name":"standin-bot"}' "http://$(admin 1)/admin/api/agents" >/dev/null
curl -sf -H "Authorization: Bearer $token" "http://$(admin 2)/admin/api/agents" | grep -q '"standin-bot"' ||
  { echo "replica 2 does not list the agent added on replica 1" >&2; exit 1; }
podman stop -t 30 "$tag-1" "$tag-2" >/dev/null 2>&1
for n in 1 2; do
  code=$(podman inspect "$tag-$n" --format '{{.State.ExitCode}}')
  [ "$code" = 0 ] || { echo "replica $n exited $code on SIGTERM" >&2; exit 1; }
done
echo "ok: the final stage ran as uid 65532 without capabilities on a read-only root; both replicas healthy, sharing agents, stopped cleanly"
