# depfw as a container image (issue #16): built from this repository, run as a non-root user
# on a distroless base (no shell, no package manager: the glibc and CA certificates depfw
# needs, and nothing else). See README "Deployment" → "Container".
#
#   docker build -t depfw .
#   docker run -d -p 7878:7878 -v depfw-state:/var/lib/depfw \
#     -v "$PWD/deploy/compose/depfw.toml:/etc/depfw/depfw.toml:ro" \
#     -v "$PWD/secrets/admin-token:/run/secrets/depfw-admin-token:ro" depfw
#
# Base images are pinned by tag and digest: a tag can be re-pushed, a digest cannot
# (`docker buildx imagetools inspect <tag>` prints the current one when bumping).
# `integration/container.rs` checks that every FROM stays pinned, that the final stage runs
# as a non-root user, and runs this file's HEALTHCHECK against real depfw processes.

# The toolchain CI builds with (the locked dependencies need 1.88 or newer); bookworm so
# that the binary's glibc is the runtime's (distroless cc-debian12).
FROM docker.io/library/rust:1.95-slim-bookworm@sha256:d7482085ff5b415f84dba5647ae71606650bdef00db7aeb69f4b3d170c3e4082 AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin depfw \
 && install -D -m 0755 target/release/depfw /out/usr/local/bin/depfw \
 && install -d -m 0700 /out/var/lib/depfw

FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f
COPY --from=build /out/usr/local/bin/depfw /usr/local/bin/depfw
# The state directory (sled store or, with PostgreSQL, the signing key, synced feeds and
# the artifact cache), owned by the runtime user so that a fresh named volume is too.
COPY --from=build --chown=65532:65532 /out/var/lib/depfw /var/lib/depfw
VOLUME ["/var/lib/depfw"]
# distroless's `nonroot` user, by number so that a runtime can check it without /etc/passwd.
USER 65532:65532
# The mirror (agents' package managers) and the admin page/API.
EXPOSE 7878 7879
# No curl in the image: the binary probes itself (`depfw probe`, exit 0 on a 2xx answer).
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/depfw", "probe", "--timeout-secs", "3", "http://127.0.0.1:7878/readyz"]
ENTRYPOINT ["/usr/local/bin/depfw"]
# The admin token is a file (a Docker secret), never an environment variable.
CMD ["--config", "/etc/depfw/depfw.toml", "--data-dir", "/var/lib/depfw", "serve"]
