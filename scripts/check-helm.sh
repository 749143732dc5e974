#!/usr/bin/env bash
# Checks the Helm chart infra/helm/vigil offline: builds `helm` once from its Go module into .vigil/tools (cached
# across runs), then `helm lint` and `helm template` with the default values and with the example production values
# (infra/helm/vigil/examples/production-values.yaml), and asserts properties of the rendered manifests
# (infra/helm/check_rendered.py: non-root, read-only root fs, probes, PDBs, KEDA bounds, no secret on a command line
# or in a setting, every *_PASSWORD_FILE/*_TOKEN_FILE a file of a mounted Secret, no device CA key in the gateway).
#
#   bash scripts/check-helm.sh            # ~2-4 min the first time (go build), seconds after
#
# Needs Go (/usr/local/go/bin/go or on PATH) and the Go module proxy the first time only.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

HELM_VERSION=v3.22.0
TOOLS="$PWD/.vigil/tools"
HELM="$TOOLS/helm-$HELM_VERSION"
CHART=infra/helm/vigil
PRODUCTION_VALUES="$CHART/examples/production-values.yaml"

if [ ! -x "$HELM" ]; then
  GO="$(command -v go || echo /usr/local/go/bin/go)"
  [ -x "$GO" ] || { echo "check-helm: go not found (needed once to build helm $HELM_VERSION)" >&2; exit 1; }
  echo "check-helm: building helm $HELM_VERSION from its Go module (once; cached in .vigil/tools)"
  mkdir -p "$TOOLS"
  GOFLAGS=-mod=mod GOBIN="$TOOLS/bin" CGO_ENABLED=0 \
    "$GO" install -trimpath -ldflags='-s -w' "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  mv "$TOOLS/bin/helm" "$HELM"
fi
"$HELM" version --short

# Built from source, helm knows no Kubernetes version of its own (it says v1.20): render for a current one.
KUBE_VERSION=1.31.0
# PyYAML for the assertions: Debian's python3-yaml (installed here when missing, as .ci/run does for its packages).
PYTHON=python3
if ! "$PYTHON" -c 'import yaml' 2>/dev/null; then
  if /usr/bin/python3 -c 'import yaml' 2>/dev/null; then PYTHON=/usr/bin/python3
  else
    apt-get install -y --no-install-recommends python3-yaml >/dev/null || { apt-get update && apt-get install -y --no-install-recommends python3-yaml >/dev/null; }
    PYTHON=/usr/bin/python3
  fi
fi

out="$(mktemp -d -t vigil-helm-XXXXXX)"
trap 'rm -rf "$out"' EXIT

echo "== helm lint (default values, then production values)"
"$HELM" lint --strict --kube-version "$KUBE_VERSION" "$CHART"
"$HELM" lint --strict --kube-version "$KUBE_VERSION" "$CHART" -f "$PRODUCTION_VALUES"

echo "== helm template"
"$HELM" template vigil "$CHART" --namespace vigil --kube-version "$KUBE_VERSION" >"$out/default.yaml"
"$HELM" template vigil "$CHART" --namespace vigil-prod --kube-version "$KUBE_VERSION" -f "$PRODUCTION_VALUES" \
  >"$out/production.yaml"

echo "== the chart refuses more worker replicas than partitions"
if "$HELM" template vigil "$CHART" --kube-version "$KUBE_VERSION" --set 'workers[0].name=vitals' \
  --set 'workers[0].pipeline=pipelines/vitals.ts' --set 'workers[0].partitions=2' --set 'workers[0].replicas=3' \
  --set 'workers[0].lagTopics={vigil.telemetry.raw}' \
  >"$out/refused.yaml" 2>"$out/refused.err"; then
  echo "check-helm: FAIL: 3 replicas over 2 partitions rendered" >&2
  exit 1
fi
grep -q 'exceeds its partitions' "$out/refused.err"
echo "refused: $(grep -o 'workers\[vitals\][^:]*' "$out/refused.err" | head -1)"

echo "== the values schema refuses a credential inside an endpoint URL"
if "$HELM" lint --kube-version "$KUBE_VERSION" "$CHART" --set 'endpoints.redisUrl=redis://user:pass@redis:6379' \
  >"$out/credential.txt" 2>&1; then
  echo "check-helm: FAIL: a password in REDIS_URL passed the values schema" >&2
  exit 1
fi
grep -q "endpoints/redisUrl" "$out/credential.txt" && echo "refused: endpoints.redisUrl with a password"

echo "== the values schema refuses a secret value in a setting, and connection names it would not pass through"
for setting in 'env.KAFKA_SASL_PASSWORD=hunter2' 'env.VIGIL_KAFKA_CA_FILE=/ca.pem' 'connections.settings.REDIS_PASSWORD=hunter2'; do
  if "$HELM" lint --kube-version "$KUBE_VERSION" "$CHART" --set "$setting" >"$out/secret.txt" 2>&1; then
    echo "check-helm: FAIL: --set $setting passed the values schema" >&2
    exit 1
  fi
  grep -q "invalid propertyName" "$out/secret.txt" && echo "refused: ${setting%%=*}"
done

echo "== rendered manifests: assertions"
"$PYTHON" infra/helm/check_rendered.py "$out/default.yaml" "$CHART/values.yaml" \
  "$out/production.yaml" "$PRODUCTION_VALUES"
