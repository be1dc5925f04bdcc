#!/usr/bin/env bash
# Validates the guides' plain Kubernetes manifests (guides/*/tokenizers.yaml, the dashboards'
# ConfigMaps, the HTTPRoutes) with PyPI's kubernetes-validate: the OpenAPI schemas of
# Kubernetes itself, offline, --strict (unknown fields fail). Custom resources (HTTPRoute)
# have no bundled schema and only warn; xtask's guide tests check their names instead.
# A copy with a misspelt field must fail, so a validator that checks nothing fails here too.
# Installs into .tools/kubernetes-validate (needs python3 with venv).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
VENV="$ROOT/.tools/kubernetes-validate"
VERSION="1.37.0"
K8S="1.33"

if [ ! -x "$VENV/bin/kubernetes-validate" ] \
   || ! "$VENV/bin/pip" show kubernetes-validate 2>/dev/null | grep -q "^Version: $VERSION$"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$VERSION"
fi

shopt -s nullglob
manifests=("$ROOT"/guides/*/tokenizers.yaml "$ROOT"/guides/*/httproute.yaml "$ROOT"/guides/monitoring/*.yaml)
if [ ${#manifests[@]} -lt 3 ]; then
  echo "error: guide manifests missing; run cargo xtask codegen guides" >&2
  exit 1
fi
"$VENV/bin/kubernetes-validate" --strict -k "$K8S" "${manifests[@]}"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
sed 's/backoffLimit:/backoffLimitz:/' "${manifests[0]}" > "$WORK/typo.yaml"
if "$VENV/bin/kubernetes-validate" --strict -k "$K8S" "$WORK/typo.yaml" > "$WORK/typo.out" 2>&1; then
  echo "error: a misspelt field passed validation:" >&2
  cat "$WORK/typo.out" >&2
  exit 1
fi
echo "guide manifests valid against Kubernetes $K8S (${#manifests[@]} files)"
