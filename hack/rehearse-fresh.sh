#!/usr/bin/env bash
# Rehearse a new machine without wiping this one: CI's own command (`.ci/run`: make lint, make
# test) on a clean clone of the committed HEAD, with empty uv and pip caches and an empty
# Corral cache (so uv is bootstrapped again, the virtualenv comes from the package registry and
# llama.cpp is compiled again). Only the built Kubernetes binaries are reused, through a link to
# the real cache's bin/, because they take ~25 minutes to build; delete that directory too when
# the rehearsal is about them. Everything else lands in one temporary directory, printed at the
# start and removed at the end unless KEEP=1. Uses the cluster's default loopback ports: stop
# your own cluster first (`make cluster-down`) or set the CORRAL_*_PORT variables.
#
#   make rehearse-fresh            # or: bash hack/rehearse-fresh.sh
set -euo pipefail

repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
real_cache=${CORRAL_CACHE:-$HOME/.cache/corral}
work=$(mktemp -d "${TMPDIR:-/tmp}/corral-fresh.XXXXXX")
cleanup() {
    if [[ ${KEEP:-} == 1 ]]; then echo "rehearse-fresh: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

mkdir -p "$work/cache/corral"
if [[ -d $real_cache/bin ]]; then
    ln -s "$real_cache/bin" "$work/cache/corral/bin"
fi
git clone --quiet --no-hardlinks "$repo" "$work/corral"
echo "rehearse-fresh: clean clone of $(git -C "$work/corral" rev-parse --short HEAD) in $work/corral"
echo "rehearse-fresh: empty caches under $work/cache (Kubernetes binaries from $real_cache/bin)"

cd "$work/corral"
started=$SECONDS
status=0
env CI=true \
    CORRAL_CACHE="$work/cache/corral" \
    UV_CACHE_DIR="$work/cache/uv" \
    PIP_CACHE_DIR="$work/cache/pip" \
    XDG_CACHE_HOME="$work/cache" \
    bash .ci/run </dev/null || status=$?
echo "rehearse-fresh: .ci/run exited $status after $((SECONDS - started)) s"
exit "$status"
