#!/usr/bin/env bash
# Re-vendors containerd 1.6's gRPC API definitions into proto/ from Debian's
# golang-github-containerd-containerd-dev, stripping gogo/protobuf code-generation
# annotations so that @grpc/proto-loader (protobufjs) can parse them.
# Usage: bash scripts/vendor-protos.sh   (from packages/containerd-client)
set -euo pipefail
cd "$(dirname "$0")/.."

GOCODE=/usr/share/gocode/src
GOGO_WKT=$GOCODE/github.com/gogo/protobuf/protobuf/google/protobuf
API=github.com/containerd/containerd/api

files=(
  "$API/services/content/v1/content.proto"
  "$API/services/images/v1/images.proto"
  "$API/services/leases/v1/leases.proto"
  "$API/services/snapshots/v1/snapshots.proto"
  "$API/services/diff/v1/diff.proto"
  "$API/services/namespaces/v1/namespace.proto"
  "$API/services/version/v1/version.proto"
  "$API/types/mount.proto"
  "$API/types/descriptor.proto"
)

strip_gogo() {
  # 1. drop the gogoproto import; 2. drop whole-line gogoproto options;
  # 3. drop bracketed field/enum-value options made only of gogoproto options.
  perl -0pe '
    s/^import weak "gogoproto\/gogo\.proto";\n//mg;
    s/^[ \t]*option \(gogoproto\.[^;]*;\n//mg;
    s/[ \t]*\[\(gogoproto\.[^\]]*\]//g;
  ' "$1"
}

rm -rf proto/github.com proto/google
for f in "${files[@]}"; do
  mkdir -p "proto/$(dirname "$f")"
  strip_gogo "$GOCODE/$f" >"proto/$f"
  if grep -q gogoproto "proto/$f"; then
    echo "gogoproto left in proto/$f" >&2
    exit 1
  fi
done

mkdir -p proto/google/protobuf
for w in any empty field_mask timestamp; do
  cp "$GOGO_WKT/$w.proto" "proto/google/protobuf/$w.proto"
done
echo "vendored ${#files[@]} containerd files and 4 well-known types into proto/"
