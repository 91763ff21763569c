#!/usr/bin/env bash
# Pull benchmark: sregistry vs curl against the bundled GitLab emulator on
# loopback. Builds the binaries into a temp dir, then runs bench/pullbench,
# which writes bench/RESULTS.md and prints the tables.
#
#   bench/run.sh                 # 256 MiB and 2 GiB, 3 rounds, throttled table, startup, search scale
#   bench/run.sh -quick          # smoke run (64 MiB, 1 round)
#   bench/run.sh -sizes 512 -rounds 5 -throttle 20 -out /tmp/r.md
#
# All flags go to pullbench (go run ./bench/pullbench -h lists them). Needs
# curl and ~3x the largest size free in $TMPDIR (source image, zip, output).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v curl >/dev/null || { echo "bench/run.sh: curl is required" >&2; exit 1; }
bin=$(mktemp -d "${TMPDIR:-/tmp}/sregistry-bench-bin.XXXXXX")
trap 'rm -rf "$bin"' EXIT
echo "# building sregistry and gitlab-emulator into $bin" >&2
CGO_ENABLED=0 go build -trimpath -o "$bin/sregistry" ./cmd/sregistry
go build -o "$bin/gitlab-emulator" ./cmd/gitlab-emulator
echo "# $(go version); $(nproc) CPUs; free space in ${TMPDIR:-/tmp}: $(df -h --output=avail "${TMPDIR:-/tmp}" | tail -1 | tr -d ' ')" >&2
go run ./bench/pullbench -sregistry "$bin/sregistry" -emulator "$bin/gitlab-emulator" "$@"
