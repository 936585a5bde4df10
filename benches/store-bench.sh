#!/usr/bin/env bash
# The storage backends side by side: decision appends/s (sled vs PostgreSQL, group commit),
# cached-metadata req/s on each, and how long an override takes to reach another replica.
# Starts a throwaway PostgreSQL (.ci/postgres.sh) unless DEPFW_TEST_POSTGRES_URL is set.
# Figures: README "Deployment".
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${DEPFW_TEST_POSTGRES_URL:-}" ]; then
  # An assignment, so that a failed start stops the script (set -e).
  postgres_env=$(bash .ci/postgres.sh start)
  eval "$postgres_env"
  trap 'bash .ci/postgres.sh stop "$DEPFW_TEST_POSTGRES_DIR"' EXIT
fi
cargo bench --locked --bench store
