"""Compare modules/msk's `topics` default with infra/local/topics.ts (given as JSON by scripts/check-terraform.sh).

The Terraform list is a copy, so that the module stands alone; this check keeps the copy true: names, partition counts
and every config key and value must match. Descriptions may be shorter in Terraform.
"""

import json
import sys

import hcl2


def unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


def main() -> int:
    variables_tf, topics_json = sys.argv[1], sys.argv[2]
    with open(variables_tf, encoding='utf-8') as f:
        parsed = hcl2.load(f)
    default = None
    # python-hcl2 8 keeps the quotes of quoted keys and string values: unquote() takes them off.
    for block in parsed.get('variable', []):
        for name, body in block.items():
            if unquote(name) == 'topics':
                default = body.get('default')
    if default is None:
        print(f'{variables_tf}: no variable "topics" with a default', file=sys.stderr)
        return 1
    terraform = {unquote(name): spec for name, spec in default.items()}
    local = json.loads(topics_json)
    problems = []
    for name in sorted(set(local) | set(terraform)):
        if name not in terraform:
            problems.append(f'{name}: in topics.ts, missing from the msk module')
            continue
        if name not in local:
            problems.append(f'{name}: in the msk module, not in topics.ts')
            continue
        tf, ts = terraform[name], local[name]
        if int(tf['partitions']) != ts['partitions']:
            problems.append(f'{name}: partitions {tf["partitions"]} in Terraform, {ts["partitions"]} in topics.ts')
        tf_config = {unquote(k): unquote(str(v)) for k, v in tf['config'].items()}
        if tf_config != ts['config']:
            problems.append(f'{name}: config {tf_config} in Terraform, {ts["config"]} in topics.ts')
    for p in problems:
        print(f'check-terraform: topics: {p}', file=sys.stderr)
    print(f'check-terraform: topics: {len(local)} in topics.ts, {len(terraform)} in the msk module, '
          f'{len(problems)} difference(s)')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
