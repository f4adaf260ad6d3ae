#!/usr/bin/env bash
# Builds the reference OpenTelemetry Collector (tests/reference/manifest.yaml) into
# $TOOLS/otelcol-ref with the collector's builder, both pinned at v0.162.0. Idempotent: does nothing
# when the binary exists and is newer than the manifest. Needs Go and the Go module proxy; takes
# about two minutes on two cores the first time.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TOOLS="${TOOLS:-$ROOT/.tools}"
BUILDER_VER="${BUILDER_VER:-v0.162.0}"
OUT="$TOOLS/otelcol-ref"
MANIFEST="$HERE/manifest.yaml"

if [ -x "$OUT" ] && [ "$OUT" -nt "$MANIFEST" ]; then
  echo "reference collector up to date: $OUT"
  exit 0
fi

mkdir -p "$TOOLS"
if [ ! -x "$TOOLS/builder" ]; then
  echo "installing the collector builder $BUILDER_VER into $TOOLS"
  GOBIN="$TOOLS" go install "go.opentelemetry.io/collector/cmd/builder@$BUILDER_VER"
fi

# The builder writes its generated sources under dist.output_path, relative to the current
# directory: keep them out of the tree in a scratch directory that is removed afterwards.
WORK="$(mktemp -d "${TMPDIR:-/tmp}/otelcol-ref.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
echo "building the reference collector (about two minutes the first time)"
"$TOOLS/builder" --config "$MANIFEST"
install -m 0755 "$WORK/otelcol-ref-build/otelcol-ref" "$OUT.tmp"
mv -f "$OUT.tmp" "$OUT"
"$OUT" --version
