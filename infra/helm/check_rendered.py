"""Assertions on the Vigil chart's rendered manifests (scripts/check-helm.sh runs this after `helm template`).

    python3 infra/helm/check_rendered.py RENDERED.yaml VALUES.yaml [RENDERED.yaml VALUES.yaml ...]

VALUES.yaml is the values file whose `workers` and `sinks` lists were in force for that rendering (lists replace, so
the file that defines them). Needs PyYAML (Debian's python3-yaml). Exits 1 with one line per failed assertion.
"""

import re
import sys
from pathlib import Path

import yaml

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)


def containers_of(deployment):
    return deployment["spec"]["template"]["spec"]["containers"]


def args_of(deployment):
    return containers_of(deployment)[0].get("args") or []


def flag(args, name):
    return args[args.index(name) + 1] if name in args else None


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


# A credential on a command line or in a plain setting: user:password@ in a URL, or a flag or value naming one.
CREDENTIAL = re.compile(r"://[^/\s:@]+:[^/\s@]+@|--(password|token|secret)\b|^(password|token|secret)=", re.I)

# The connection settings runtime/connections.ts reads (its SETTINGS list, the one source of their names).
ROOT = Path(__file__).resolve().parents[2]
SETTINGS = dict(
    re.findall(r"env: '([A-Z_]+)',\s*key: [^,]+,\s*kind: '([a-z-]+)'", (ROOT / "runtime/connections.ts").read_text())
)
assert len(SETTINGS) >= 20, "runtime/connections.ts: its SETTINGS list was not found (did its layout change?)"
CONNECTION_PREFIX = re.compile(r"^(KAFKA_(SSL|SASL|OAUTH|SECURITY)_|SCHEMA_REGISTRY_|REDIS_|CLICKHOUSE_)")
# Another naming scheme for them, which runtime/connections.ts would ignore (it only warns).
OTHER_SCHEME = re.compile(r"^VIGIL_(KAFKA|REGISTRY|SCHEMA_REGISTRY|REDIS|CLICKHOUSE)_")
# A variable that would hold a secret itself, not the path of a file holding it.
SECRET_VALUE_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|API_KEY|CREDENTIALS?)$")
# A value shaped like a password or token: one long run of letters and digits (and base64's +/=_-), no path or URL.
SECRET_SHAPED = re.compile(r"^(?=.*[0-9])(?=.*[A-Za-z])[A-Za-z0-9+/=_-]{24,}$")
# The service accounts infra/terraform/modules/eks gives an IAM role (IRSA trusts exactly these names).
EKS_ACCOUNTS = set(re.findall(r'^\s*"(vigil-[a-z-]+)" = \[', (ROOT / "infra/terraform/modules/eks/main.tf").read_text(), re.M))
# What a gateway may hold of its PKI: the CA's certificate (to verify devices) and its own key and certificate.
GATEWAY_PKI_KEYS = {"ca.crt", "gateway.crt", "gateway.key"}


def secret_paths(pod):
    """The files each mounted Secret puts in the pod: {path: secret name} (None: every key of that Secret)."""
    volumes = {v["name"]: v["secret"] for v in pod.get("volumes") or [] if "secret" in v}
    files, folders = {}, {}
    for c in pod["containers"]:
        for m in c.get("volumeMounts") or []:
            secret = volumes.get(m["name"])
            if secret is None:
                continue
            items = secret.get("items")
            if items:
                for item in items:
                    files[f"{m['mountPath']}/{item['path']}"] = secret["secretName"]
            else:
                folders[m["mountPath"]] = secret["secretName"]
    return files, folders


def check_connection_settings(where, config, deployments):
    """Connection security as runtime/connections.ts reads it: known names, secrets only as mounted files."""
    for key, value in config.items():
        check(not OTHER_SCHEME.match(key), f"{where}: ConfigMap {key}: not a name runtime/connections.ts reads")
        if CONNECTION_PREFIX.match(key) and key not in ("SCHEMA_REGISTRY_URL", "REDIS_URL", "CLICKHOUSE_URL"):
            check(key in SETTINGS, f"{where}: ConfigMap {key}: not a setting of runtime/connections.ts")
            check(SETTINGS.get(key) != "secret", f"{where}: ConfigMap {key}: a secret value in the ConfigMap")
        check(not SECRET_VALUE_NAME.search(key), f"{where}: ConfigMap {key}: names a secret value, not a file")
        check(not SECRET_SHAPED.match(str(value)), f"{where}: ConfigMap {key}: its value looks like a secret")
    for key, value in config.items():
        if SETTINGS.get(key) != "secret-file" and not key.endswith("_KEY_FILE"):
            continue
        for name, d in deployments.items():
            files, folders = secret_paths(d["spec"]["template"]["spec"])
            inside = value in files or any(value.startswith(f"{folder}/") for folder in folders)
            check(inside, f"{where}: {name}: {key}={value} is not a file of a mounted Secret")


def check_gateway_pki(where, gateway):
    """The gateway verifies devices with the CA's certificate: the CA's private key must not reach its pod."""
    pod = gateway["spec"]["template"]["spec"]
    pki_dir = flag(args_of(gateway), "--pki-dir")
    files, folders = secret_paths(pod)
    check(pki_dir not in folders, f"{where}: gateway: the whole PKI Secret is mounted (ca.key with it)")
    mounted = {path.rsplit("/", 1)[1] for path in files if path.rsplit("/", 1)[0] == pki_dir}
    check(mounted == GATEWAY_PKI_KEYS, f"{where}: gateway: PKI files {sorted(mounted)}, not {sorted(GATEWAY_PKI_KEYS)}")
    check(not any(path.endswith("/ca.key") for path in files), f"{where}: gateway: the device CA's key is mounted")


def check_keda_auth(where, by_kind):
    """KEDA reads the lag as the workers connect: SASL triggers authenticate, with the workers' own Secret."""
    config = {}
    for cm in by_kind.get("ConfigMap", []):
        config.update(cm.get("data") or {})
    mechanism = config.get("KAFKA_SASL_MECHANISM", "")
    auths = {a["metadata"]["name"]: a for a in by_kind.get("TriggerAuthentication", [])}
    for so in by_kind.get("ScaledObject", []):
        for t in so["spec"]["triggers"]:
            name = f"{where}: ScaledObject {so['metadata']['name']}"
            if config.get("KAFKA_SECURITY_PROTOCOL") in ("SSL", "SASL_SSL"):
                check(t["metadata"].get("tls") == "enable", f"{name}: the brokers speak TLS, the trigger does not")
            if not mechanism:
                continue
            check("authenticationRef" in t, f"{name}: Kafka needs {mechanism}, the trigger has no authentication")
            if mechanism.startswith("SCRAM-"):
                expected = mechanism.replace("SCRAM-SHA-", "scram_sha")
                check(t["metadata"].get("sasl") == expected, f"{name}: sasl is not {expected}")
            auth = auths.get((t.get("authenticationRef") or {}).get("name"))
            password_file = config.get("KAFKA_SASL_PASSWORD_FILE", "")
            if auth is None or not password_file.startswith("/var/run/secrets/vigil/connections/"):
                continue
            secret, key = password_file.rsplit("/", 2)[-2:]
            refs = {r["parameter"]: (r["name"], r["key"]) for r in auth["spec"].get("secretTargetRef") or []}
            check(refs.get("password") == (secret, key), f"{name}: KEDA's password is not the workers' {secret}/{key}")


def check_rendering(rendered_path, values_path):
    docs = [d for d in yaml.safe_load_all(open(rendered_path)) if d]
    values = yaml.safe_load(open(values_path))
    where = rendered_path.rsplit("/", 1)[-1]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    check(len(deployments) > 0, f"{where}: no Deployment rendered")

    for name, d in deployments.items():
        pod = d["spec"]["template"]["spec"]
        psc = pod.get("securityContext") or {}
        check(psc.get("runAsNonRoot") is True, f"{where}: {name}: runAsNonRoot is not true")
        check((psc.get("runAsUser") or 0) > 0, f"{where}: {name}: runAsUser is root or unset")
        check(pod.get("automountServiceAccountToken") is False, f"{where}: {name}: service account token mounted")
        for c in pod["containers"]:
            sc = c.get("securityContext") or {}
            check(sc.get("readOnlyRootFilesystem") is True, f"{where}: {name}: root file system is writable")
            check(sc.get("allowPrivilegeEscalation") is False, f"{where}: {name}: privilege escalation allowed")
            check("ALL" in ((sc.get("capabilities") or {}).get("drop") or []), f"{where}: {name}: capabilities kept")
            check(c["args"][0] != "--help", f"{where}: {name}: no command")
            for arg in c.get("args") or []:
                check(not CREDENTIAL.search(str(arg)), f"{where}: {name}: a credential on the command line: {arg}")
            for env in c.get("env") or []:
                check("value" not in env or not CREDENTIAL.search(str(env["value"])), f"{where}: {name}: credential in env")
                check(not SECRET_VALUE_NAME.search(env["name"]), f"{where}: {name}: env {env['name']} holds a secret")
                check(not SECRET_SHAPED.match(str(env.get("value", ""))), f"{where}: {name}: env {env['name']} looks secret")
            mounts = {m["name"]: m for m in c.get("volumeMounts") or []}
            for volume in pod.get("volumes") or []:
                if "secret" in volume:
                    check(mounts.get(volume["name"], {}).get("readOnly") is True, f"{where}: {name}: secret mounted writable")
            ports = {p["name"]: p["containerPort"] for p in c.get("ports") or []}
            if "metrics" in ports:
                live = (c.get("livenessProbe") or {}).get("httpGet") or {}
                ready = (c.get("readinessProbe") or {}).get("httpGet") or {}
                check(live.get("path") == "/healthz", f"{where}: {name}: liveness is not /healthz")
                check(ready.get("path") == "/readyz", f"{where}: {name}: readiness is not /readyz")
                env = {e["name"]: e.get("value") for e in c.get("env") or []}
                check(env.get("VIGIL_HEALTH_PORT") == str(ports["metrics"]), f"{where}: {name}: VIGIL_HEALTH_PORT")
                check(flag(c["args"], "--metrics-port") == str(ports["metrics"]), f"{where}: {name}: metrics port flag")

    for cm in by_kind.get("ConfigMap", []):
        for key, value in (cm.get("data") or {}).items():
            check(not CREDENTIAL.search(str(value)), f"{where}: ConfigMap {key} holds a credential")
        check((cm.get("data") or {}).get("VIGIL_METRICS_HOST") == "0.0.0.0", f"{where}: metrics bound to loopback only")
        check_connection_settings(where, cm.get("data") or {}, deployments)

    pdbs = by_kind.get("PodDisruptionBudget", [])
    scaled = {s["metadata"]["name"]: s for s in by_kind.get("ScaledObject", [])}
    for kind in ("worker", "sink"):
        for spec in values.get(f"{kind}s") or []:
            matches = [n for n in deployments if n.endswith(f"-{kind}-{spec['name']}")]
            check(len(matches) == 1, f"{where}: {kind} {spec['name']}: {len(matches)} Deployments")
            if len(matches) != 1:
                continue
            name = matches[0]
            d = deployments[name]
            args = args_of(d)
            check(args[1] == spec["pipeline"], f"{where}: {name}: runs {args[1]}, not {spec['pipeline']}")
            if kind == "sink":
                check("--server" in args, f"{where}: {name}: the sink does not write to the ClickHouse server")
            labels = d["spec"]["template"]["metadata"]["labels"]
            check(any(selects(p["spec"]["selector"], labels) for p in pdbs), f"{where}: {name}: no PodDisruptionBudget")
            auto = (spec.get("autoscaling") or {}).get("enabled")
            if auto:
                s = scaled.get(name)
                check(s is not None, f"{where}: {name}: no ScaledObject")
                if s is None:
                    continue
                check("replicas" not in d["spec"], f"{where}: {name}: replicas set beside its ScaledObject")
                check(s["spec"]["maxReplicaCount"] == spec["partitions"], f"{where}: {name}: maxReplicaCount != partitions")
                check(s["spec"]["minReplicaCount"] <= spec["partitions"], f"{where}: {name}: minReplicaCount > partitions")
                triggers = s["spec"]["triggers"]
                check(len(triggers) == len(spec["lagTopics"]), f"{where}: {name}: one lag trigger per topic")
                for t in triggers:
                    check(t["type"] == "kafka", f"{where}: {name}: trigger is not Kafka lag")
                    check(t["metadata"]["consumerGroup"] == flag(args, "--group"), f"{where}: {name}: trigger group")
                    check(t["metadata"].get("allowIdleConsumers") == "false", f"{where}: {name}: idle consumers allowed")
            else:
                check(name not in scaled, f"{where}: {name}: a ScaledObject although autoscaling is off")
                check(d["spec"].get("replicas", 0) <= spec["partitions"], f"{where}: {name}: replicas > partitions")

    gateways = [d for n, d in deployments.items() if n.endswith("-gateway")]
    for g in gateways:
        labels = g["spec"]["template"]["metadata"]["labels"]
        check(any(selects(p["spec"]["selector"], labels) for p in pdbs), f"{where}: gateway: no PodDisruptionBudget")
        check(flag(args_of(g), "--host") == "0.0.0.0", f"{where}: gateway listens on loopback only")
        check_gateway_pki(where, g)
    signers = [d for n, d in deployments.items() if n.endswith("-checkpoint-signer")]
    for s in signers:
        check(s["spec"].get("replicas") == 1 and s["spec"]["strategy"]["type"] == "Recreate", f"{where}: two signers")
        check(args_of(s)[:3] == ["audit", "checkpoint", "--every"], f"{where}: signer command")
        signer = containers_of(s)[0]
        check("metrics" in {p["name"] for p in signer.get("ports") or []}, f"{where}: signer: no metrics port")
        check(signer.get("livenessProbe") and signer.get("readinessProbe"), f"{where}: signer: no probes")

    accounts = {a["metadata"]["name"]: a for a in by_kind.get("ServiceAccount", [])}
    check(len(EKS_ACCOUNTS) >= 4, f"{where}: the eks module's service accounts were not found")
    for name, d in deployments.items():
        account = d["spec"]["template"]["spec"].get("serviceAccountName")
        component = d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
        if values.get("serviceAccount", {}).get("create", True):
            check(account in accounts, f"{where}: {name}: service account {account} not rendered")
        if component != "drift-guard":
            check(account in EKS_ACCOUNTS, f"{where}: {name}: {account} is not a service account the eks module trusts")
        role = ((accounts.get(account) or {}).get("metadata", {}).get("annotations") or {}).get("eks.amazonaws.com/role-arn")
        if role:
            check(role.endswith(f"-{account}"), f"{where}: {name}: role {role} is not the eks module's role for {account}")

    check_keda_auth(where, by_kind)

    policies = by_kind.get("NetworkPolicy", [])
    check(len(policies) >= 1, f"{where}: no NetworkPolicy")
    for d in deployments.values():
        labels = d["spec"]["template"]["metadata"]["labels"]
        covering = [p for p in policies if selects(p["spec"]["podSelector"], labels)]
        check(
            any({"Ingress", "Egress"} <= set(p["spec"].get("policyTypes") or []) for p in covering),
            f"{where}: {d['metadata']['name']}: no NetworkPolicy restricts its ingress and egress",
        )

    image = containers_of(next(iter(deployments.values())))[0]["image"] if deployments else ""
    if values.get("image", {}).get("digest"):
        check("@sha256:" in image, f"{where}: image not pinned by its digest")
    print(f"{where}: {len(docs)} objects, {len(deployments)} Deployments, {len(scaled)} ScaledObjects, {len(pdbs)} PDBs")


def main(argv):
    if len(argv) < 2 or len(argv) % 2:
        print(__doc__)
        return 2
    for i in range(0, len(argv), 2):
        check_rendering(argv[i], argv[i + 1])
    for f in failures:
        print(f"FAIL {f}")
    print(f"check-rendered: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
