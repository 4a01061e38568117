#!/usr/bin/env bash
# Installs dictlearn into a temporary prefix and builds and runs a separate project that
# finds it with find_package(dictlearn).
source "$(dirname "$0")/common.sh"
BUILD_DIR=$2
cmake --install "$BUILD_DIR" --prefix "$WORK/prefix" >/dev/null
cmake -S "$REPO/tests/consumer" -B "$WORK/consumer" -DCMAKE_PREFIX_PATH="$WORK/prefix" \
  -DCMAKE_BUILD_TYPE=Release >"$WORK/configure.log" 2>&1 || { cat "$WORK/configure.log"; fail "configure"; }
cmake --build "$WORK/consumer" >"$WORK/build.log" 2>&1 || { cat "$WORK/build.log"; fail "build"; }
LD_LIBRARY_PATH="$WORK/prefix/lib:${LD_LIBRARY_PATH:-}" "$WORK/consumer/consumer" || fail "consumer run"
finish
