"""Judge checkov's JSON report: every failed check blocks (severities are unavailable offline), every skip must be
justified in the code (`#checkov:skip=CKV_...: <why>`), and parse errors block. Prints the counts."""

import json
import sys

MIN_JUSTIFICATION = 20  # characters: "false positive" alone is not a justification


def main() -> int:
    with open(sys.argv[1], encoding='utf-8') as f:
        report = json.load(f)
    reports = report if isinstance(report, list) else [report]
    passed = failed = skipped = parse_errors = 0
    problems = []
    severities = set()
    for r in reports:
        s = r.get('summary', {})
        passed += s.get('passed', 0)
        failed += s.get('failed', 0)
        skipped += s.get('skipped', 0)
        parse_errors += s.get('parsing_errors', 0)
        results = r.get('results', {})
        for c in results.get('failed_checks', []):
            severities.add(c.get('severity'))
            problems.append(f'FAILED {c["check_id"]} ({c.get("severity") or "no severity offline"}) '
                            f'{c["resource"]} {c["file_path"]}:{c["file_line_range"][0]}  {c["check_name"]}')
        for c in results.get('skipped_checks', []):
            why = (c.get('check_result', {}).get('suppress_comment') or '').strip()
            if len(why) < MIN_JUSTIFICATION:
                problems.append(f'SKIP WITHOUT JUSTIFICATION {c["check_id"]} {c["resource"]} {c["file_path"]}')
    print(f'check-terraform: checkov: {passed} passed, {failed} failed, {skipped} skipped (justified), '
          f'{parse_errors} parse errors')
    for p in problems:
        print(f'check-terraform: checkov: {p}', file=sys.stderr)
    if parse_errors:
        print('check-terraform: checkov: files checkov could not parse are unchecked: fix them', file=sys.stderr)
    return 1 if problems or parse_errors else 0


if __name__ == '__main__':
    sys.exit(main())
