#!/usr/bin/env bash
# Schema check of the study's Kubernetes manifest (npm run check:k8s; also run by test:slurm).
# Installs the validator (kubernetes-models, yaml) from the npm registry into a temp folder; the
# check itself is offline. Where the package cannot be installed, it says so and exits 0 with
# "skipped" unless K8S_CHECK_REQUIRED=1.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
manifest=${1:-$root/docs/study/k8s-indexed-job.yaml}
work=$(mktemp -d /tmp/nmgrad-k8s-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
if ! npm install --prefix "$work" --no-audit --no-fund --no-save --silent kubernetes-models@5 yaml@2 >"$work/npm.log" 2>&1; then
  echo "k8s manifest check: skipped: the validator (npm kubernetes-models) could not be installed:" >&2
  tail -3 "$work/npm.log" >&2
  [ "${K8S_CHECK_REQUIRED:-0}" = 1 ] && exit 1
  exit 0
fi
cp "$root/scripts/k8s/check-manifest.mjs" "$work/"
cd "$work"
node check-manifest.mjs "$manifest" "$root/node_modules/.bin/tsc"
