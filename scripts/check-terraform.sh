#!/usr/bin/env bash
# Offline checks of infra/terraform (no cloud account, no provider downloads), for .ci/run and `npm run check:infra`:
#   1. format      `tofu fmt -check -recursive`, OpenTofu built from its Go module and cached under .vigil/tools/;
#                  where it cannot be built, python-hcl2's parse plus a normaliser of fmt's layout rules (tools/fmt.py)
#   2. parse       every .tf file through python-hcl2 (syntax errors fail)
#   3. render and  with OpenTofu: ClickHouse's user-data template rendered by `tofu console` (bash -n, its XML
#      validate    parsed: tools/userdata_check.py); every module's variables.tf validated and planned alone on its
#                  defaults and tools/samples/<module>.tfvars (every validation evaluated); the example environment's
#                  residency pinning planned with an allowed region (passes) and a refused one (must fail)
#   4. conventions main.tf, variables.tf, outputs.tf, README.md per module; typed, described variables; described
#                  outputs; pinned providers; no AWS account id but the placeholder (tools/conventions.py)
#   5. topics      modules/msk's `topics` default equals infra/local/topics.ts
#   6. policy      checkov 3.3.30 over infra/terraform: every failed check blocks (severities need checkov's online
#                  platform, so none are available here: infra/terraform/README.md), every suppression must carry a
#                  justification (tools/checkov_summary.py)
# Idempotent; tools are cached in .vigil/tools/ so a second run only runs the checks (seconds).
# Environment: VIGIL_TF_FMT=tofu|python forces a formatter (default: tofu when it builds, else python).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TF_DIR="$ROOT/infra/terraform"
TOOLS="$ROOT/.vigil/tools"
CHECKOV_VERSION="3.3.30"
PYTHON_HCL2_VERSION="8.1.4"
TOFU_VERSION="1.10.10"
CHECKOV_VENV="$TOOLS/checkov-$CHECKOV_VERSION"
HCL2_VENV="$TOOLS/python-hcl2-$PYTHON_HCL2_VERSION" # apart: checkov's bc-python-hcl2 has the same import name
TOFU_BIN="$TOOLS/opentofu-$TOFU_VERSION/tofu"
START=$(date +%s)
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

log() { printf 'check-terraform: %s\n' "$*"; }
fail() { printf 'check-terraform: FAILED: %s\n' "$*" >&2; exit 1; }

ensure_venv() { # dir, pip requirement...
  local dir="$1"; shift
  local stamp="$dir/.installed"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$*" ]]; then return 0; fi
  log "installing $* into ${dir#"$ROOT"/}"
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
  echo "$*" > "$stamp"
}

# OpenTofu from its Go module. `go install pkg@version` refuses it (its go.mod has a replace directive), so the module
# is downloaded into the module cache and built from a copy of it. One try per cache: a failure is remembered.
ensure_tofu() {
  [[ -x "$TOFU_BIN" ]] && return 0
  [[ -f "$TOFU_BIN.failed" ]] && return 1
  command -v go >/dev/null || return 1
  local dir; dir="$(dirname "$TOFU_BIN")"; mkdir -p "$dir"
  log "building OpenTofu $TOFU_VERSION from its Go module (once; cached in ${dir#"$ROOT"/})"
  local src="$dir/src"
  if ! (
    set -e
    mod_dir="$(cd "$dir" && go mod download -json "github.com/opentofu/opentofu@v$TOFU_VERSION" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
    rm -rf "$src" && cp -r "$mod_dir" "$src" && chmod -R u+w "$src"
    cd "$src" && go build -trimpath -ldflags '-s -w -X github.com/opentofu/opentofu/version.dev=no' -o "$TOFU_BIN.tmp" ./cmd/tofu
  ) > "$dir/build.log" 2>&1; then
    touch "$TOFU_BIN.failed"
    log "OpenTofu did not build (${dir#"$ROOT"/}/build.log; delete its .failed file to retry); using the python-hcl2 normaliser"
    rm -rf "$src"
    return 1
  fi
  mv "$TOFU_BIN.tmp" "$TOFU_BIN"
  rm -rf "$src"
}

cd "$ROOT"
[[ -d "$TF_DIR" ]] || fail "no $TF_DIR"

# --- tools ---
ensure_venv "$CHECKOV_VENV" "checkov==$CHECKOV_VERSION"
ensure_venv "$HCL2_VENV" "python-hcl2==$PYTHON_HCL2_VERSION"

# --- 1-3. format, parse, render and validate ---
mode="${VIGIL_TF_FMT:-auto}"
if [[ "$mode" != python ]] && ensure_tofu; then
  # fmt needs no CLI configuration; an unset or missing one only prints warnings.
  tofu() { env -u TF_CLI_CONFIG_FILE "$TOFU_BIN" "$@"; }
  log "format: tofu fmt -check -recursive ($(tofu version | head -1))"
  if ! tofu fmt -check -recursive -diff "$TF_DIR"; then
    fail "tofu fmt: the files above do not parse or are not in canonical format (fix: \`${TOFU_BIN#"$ROOT"/} fmt -recursive infra/terraform\`)"
  fi
  "$HCL2_VENV/bin/python" "$TF_DIR/tools/fmt.py" --parse-only "$TF_DIR" || fail "HCL parse errors"
  # ClickHouse's first-boot script, rendered as Terraform would (templatefile needs no provider): shell syntax and
  # the XML it writes.
  render_dir="$WORK/render"; mkdir -p "$render_dir"
  (cd "$render_dir" && echo "templatefile(\"$TF_DIR/modules/clickhouse/templates/user-data.sh.tftpl\", {
    replica_index = 1, private_ips = [\"10.40.0.10\", \"10.40.32.10\", \"10.40.64.10\"], clickhouse_version = \"25.8\",
    region = \"eu-west-2\", admin_secret_arn = \"arn:aws:secretsmanager:eu-west-2:111111111111:secret:admin\",
    tls_secret_arn = \"arn:aws:secretsmanager:eu-west-2:111111111111:secret:tls\", data_volume_device = \"/dev/sdf\",
    vpc_cidr_block = \"10.40.0.0/16\" })" | tofu console) > "$render_dir/user-data.txt" \
    || { cat "$render_dir/user-data.txt" >&2; fail "modules/clickhouse user data does not render"; }
  "$HCL2_VENV/bin/python" "$TF_DIR/tools/userdata_check.py" < "$render_dir/user-data.txt" \
    || fail "modules/clickhouse user data"

  # Variable validations, evaluated by OpenTofu itself: each module's variables.tf alone needs no provider, so
  # `init` and `validate` run offline; the example environment's are planned with its tfvars example (must pass) and
  # with a region its residency zone does not allow (must be refused).
  for dir in "$TF_DIR"/modules/*/ "$TF_DIR"/environments/*/; do
    vdir="$WORK/variables-$(basename "$dir")"; mkdir -p "$vdir"; cp "$dir/variables.tf" "$vdir/"
    (cd "$vdir" && tofu init -backend=false -input=false > init.log 2>&1 && tofu validate -no-color > validate.log 2>&1) \
      || { cat "$vdir"/*.log >&2; fail "variables of ${dir#"$TF_DIR"/} do not validate"; }
    # A module's validations evaluated on its defaults and a sample of its required inputs (tools/samples/).
    sample="$TF_DIR/tools/samples/$(basename "$dir").tfvars"
    if [[ -f "$sample" ]]; then
      extra=()
      # The observability module gets the real rule file, as the example passes it with file().
      [[ "$(basename "$dir")" == observability ]] \
        && extra=(-var "prometheus_rules_yaml=$(cat "$ROOT/infra/prometheus/rules.yml")")
      (cd "$vdir" && tofu plan -input=false -no-color -var-file="$sample" "${extra[@]}" > plan.log 2>&1) \
        || { cat "$vdir/plan.log" >&2; fail "${dir#"$TF_DIR"/}: its defaults and tools/samples input fail its validations"; }
    fi
  done
  env_dir="$TF_DIR/environments/example"
  vdir="$WORK/residency"; mkdir -p "$vdir"; cp "$env_dir/variables.tf" "$vdir/"; cp "$env_dir/terraform.tfvars.example" "$vdir/example.tfvars"
  (cd "$vdir" && tofu init -backend=false -input=false > /dev/null 2>&1)
  (cd "$vdir" && tofu plan -input=false -no-color -var-file=example.tfvars > plan-ok.log 2>&1) \
    || { cat "$vdir/plan-ok.log" >&2; fail "environments/example: terraform.tfvars.example does not pass its validations"; }
  if (cd "$vdir" && tofu plan -input=false -no-color -var-file=example.tfvars -var region=us-east-1 \
      -var 'availability_zones=["us-east-1a","us-east-1b","us-east-1c"]' > plan-refused.log 2>&1); then
    fail "environments/example: a region outside the residency zone was accepted"
  fi
  grep -q "region is not allowed for residency_zone" "$vdir/plan-refused.log" \
    || { cat "$vdir/plan-refused.log" >&2; fail "environments/example: refused, but not by the residency rule"; }
  log "validations: variables of every module valid and planned on samples; residency pinning accepts eu-west-2 for eu-zone-a, refuses us-east-1"
else
  [[ "$mode" == tofu ]] && fail "VIGIL_TF_FMT=tofu but OpenTofu could not be built"
  log "format: python-hcl2 parse + normaliser ($([[ "$mode" == python ]] && echo "VIGIL_TF_FMT=python" || echo "OpenTofu unavailable"))"
  "$HCL2_VENV/bin/python" "$TF_DIR/tools/fmt.py" "$TF_DIR" || fail "format or parse errors"
fi

# --- 4. conventions ---
"$HCL2_VENV/bin/python" "$TF_DIR/tools/conventions.py" "$TF_DIR" || fail "module conventions (above)"

# --- 5. topics: the msk module's default against infra/local/topics.ts ---
TOPICS_JSON="$(cd "$ROOT" && env -u VIGIL_TOPIC_PREFIX npx --no-install tsx -e "
  import('./infra/local/topics.ts').then(({ TOPIC_LIST }) => console.log(JSON.stringify(
    Object.fromEntries(TOPIC_LIST.map((t) => [t.name, { partitions: t.partitions, config: t.config }])))));
")"
"$HCL2_VENV/bin/python" "$TF_DIR/tools/topics.py" "$TF_DIR/modules/msk/variables.tf" "$TOPICS_JSON" \
  || fail "modules/msk topics differ from infra/local/topics.ts"

# --- 6. checkov ---
REPORT_DIR="$ROOT/.vigil/reports/checkov"
mkdir -p "$REPORT_DIR"
log "policy: checkov $CHECKOV_VERSION"
set +e
"$CHECKOV_VENV/bin/checkov" --directory "$TF_DIR" --framework terraform --skip-download --compact \
  --output json > "$REPORT_DIR/results.json" 2> "$REPORT_DIR/stderr.txt"
checkov_rc=$?
set -e
# The summary prints the counts and every failure or unjustified skip; it, not checkov's exit code alone, decides.
"$HCL2_VENV/bin/python" "$TF_DIR/tools/checkov_summary.py" "$REPORT_DIR/results.json" \
  || fail "checkov: see above (full report: .vigil/reports/checkov/results.json)"
[[ $checkov_rc -eq 0 ]] || { tail -20 "$REPORT_DIR/stderr.txt" >&2; fail "checkov exited $checkov_rc"; }

log "passed in $(( $(date +%s) - START )) s"
