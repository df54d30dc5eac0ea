#!/usr/bin/env bash
# Configures (once) and builds uuidgate into BUILD_DIR (default build/).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  meson setup "$BUILD_DIR" -Dwerror=true "$@" >/dev/null
fi
ninja -C "$BUILD_DIR" >/dev/null
