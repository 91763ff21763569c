#!/usr/bin/env bash
# The project's test command (README "Run the tests"; .ci/run runs exactly this).
# Installs what the tests need when it can (squashfs-tools for generated
# images), checks formatting and vet, runs the whole suite with the race
# detector, then runs each fuzz target briefly.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v mksquashfs >/dev/null 2>&1 || need+=(squashfs-tools)
command -v mkfs.ext3 >/dev/null 2>&1 || need+=(e2fsprogs)
command -v curl >/dev/null 2>&1 || need+=(curl)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing test tools: ${need[*]}"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "note: ${need[*]} missing and cannot be installed here; tests that need them will skip" >&2
  fi
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
echo "== go vet"
go vet ./...
echo "== go test -race"
go test -race -count=1 -timeout 20m ./...
echo "== fuzz (brief)"
# Execution-count budgets, not durations: Go 1.26's fuzz coordinator can fail
# a duration-bounded run at the deadline with no crasher (golang/go#75804,
# fixed in Go 1.27). Counts are sized to a few seconds per target here;
# FUZZSCALE multiplies them for a longer local run.
scale=${FUZZSCALE:-1}
budget() {
  case "$1" in
    FuzzDetect|FuzzParse) echo $((100000 * scale)) ;;
    *) echo $((30000 * scale)) ;;
  esac
}
for pkgdir in $(grep -rl --include='*_test.go' '^func Fuzz' internal | xargs -n1 dirname | sort -u); do
  for target in $(grep -h '^func Fuzz' "$pkgdir"/*_test.go | sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/'); do
    n=$(budget "$target")
    echo "-- $pkgdir $target (${n} executions)"
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="${n}x" -fuzzminimizetime=100x -timeout 5m "./$pkgdir"
  done
done
echo "all checks passed"
