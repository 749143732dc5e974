"""The conventions every module of infra/terraform keeps, checked by scripts/check-terraform.sh:

- each module (modules/*) and environment (environments/*) has main.tf, variables.tf, outputs.tf and README.md;
- every variable has a type and a description; every output a description;
- every required provider has a source and a version constraint, and a required_version is set;
- no AWS account id but the documentation placeholder 111111111111 appears in any file (no real account ids).
"""

import re
import sys
from pathlib import Path

import hcl2

REQUIRED_FILES = ('main.tf', 'variables.tf', 'outputs.tf', 'README.md')
ACCOUNT_ID = re.compile(r'(?<![0-9A-Za-z-])[0-9]{12}(?![0-9A-Za-z-])')  # not the last group of a UUID
PLACEHOLDER_ACCOUNT = '111111111111'


def unquote(value):
    return value[1:-1] if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"' else value


def check_dir(d: Path) -> list[str]:
    problems = [f'{d}: no {f}' for f in REQUIRED_FILES if not (d / f).exists()]
    has_required_version = False
    for tf in sorted(d.glob('*.tf')):
        parsed = hcl2.load(tf.open(encoding='utf-8'))
        for block in parsed.get('variable', []):
            for name, body in block.items():
                for key in ('type', 'description'):
                    if key not in body:
                        problems.append(f'{tf}: variable {unquote(name)} has no {key}')
        for block in parsed.get('output', []):
            for name, body in block.items():
                if 'description' not in body:
                    problems.append(f'{tf}: output {unquote(name)} has no description')
        for terraform in parsed.get('terraform', []):
            if 'required_version' in terraform:
                has_required_version = True
            for providers in terraform.get('required_providers', []):
                for pname, spec in providers.items():
                    if pname.startswith("__"):  # python-hcl2 8 marks blocks with __is_block__
                        continue
                    if not isinstance(spec, dict) or 'source' not in spec or 'version' not in spec:
                        problems.append(f'{tf}: provider {pname} needs a source and a pinned version')
    if not has_required_version:
        problems.append(f'{d}: no terraform.required_version')
    return problems


def main() -> int:
    root = Path(sys.argv[1])
    dirs = sorted([p for p in (root / 'modules').iterdir() if p.is_dir()] +
                  [p for p in (root / 'environments').iterdir() if p.is_dir()])
    problems = []
    for d in dirs:
        problems += check_dir(d)
    for f in sorted(root.rglob('*')):
        if f.is_file() and f.suffix in ('.tf', '.md', '.example', '.tftpl', '.hcl', '.tfvars'):
            for n, line in enumerate(f.read_text(encoding='utf-8').splitlines(), 1):
                for m in ACCOUNT_ID.finditer(line):
                    if m.group(0) != PLACEHOLDER_ACCOUNT:
                        problems.append(f'{f}:{n}: looks like an AWS account id ({m.group(0)}): use {PLACEHOLDER_ACCOUNT}')
    for p in problems:
        print(f'check-terraform: conventions: {p}', file=sys.stderr)
    print(f'check-terraform: conventions: {len(dirs)} modules and environments, {len(problems)} problem(s)')
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
