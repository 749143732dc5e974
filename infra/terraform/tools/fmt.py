"""Parse every .tf file with python-hcl2 and check the layout rules of `terraform fmt` / `tofu fmt`.

Used by scripts/check-terraform.sh when OpenTofu cannot be built (and, with --parse-only, after `tofu fmt` as the
syntax check). The normaliser checks the rules of the canonical format that a reviewer can see break, not all of
hclwrite's: LF line ends, no tabs, no trailing spaces, one final newline, two spaces of indentation per open bracket
(heredoc bodies excepted), counted per line as hclwrite's formatIndent counts, and `=` aligned one space after the
longest name in each run of consecutive one-line attributes (a run ends at a blank line, a comment line, a block or an
attribute whose value spans lines, as in hclwrite's formatCells). Files that `tofu fmt` leaves alone pass it; see
infra/terraform/README.md.
"""

import re
import sys
from pathlib import Path

import hcl2

ATTR = re.compile(r'^(\s*)([A-Za-z_][A-Za-z0-9_-]*|"[^"]*")(\s*)=(?!=)(\s*)(.*)$')
HEREDOC = re.compile(r'<<(-?)([A-Za-z_][A-Za-z0-9_]*)\s*$')


def brackets(line: str) -> str:
    """The line's brackets in order, ignoring strings (and their interpolations) and comments."""
    out = []
    in_str = False
    interp = 0
    i = 0
    while i < len(line):
        c = line[i]
        if in_str:
            if c == '\\':
                i += 2
                continue
            if c == '$' and line[i + 1:i + 2] == '{':
                interp += 1
                i += 2
                continue
            if c == '}' and interp:
                interp -= 1
            elif c == '"' and not interp:
                in_str = False
            i += 1
            continue
        if c == '"':
            in_str = True
        elif c == '#' or line.startswith('//', i):
            break
        elif c in '{[()]}':
            out.append(c)
        i += 1
    return ''.join(out)


def net(marks: str) -> int:
    return sum(1 if c in '{[(' else -1 for c in marks)


def step(stack: list[int], line: str) -> int:
    """Advance the indentation stack over a line and return the line's level, as hclwrite's formatIndent does: a line
    with more openers than closers is indented at the current level and the lines after it one level deeper (however
    many brackets it opened); a line with more closers is indented after the levels it closes."""
    change = net(brackets(line.split('<<', 1)[0] if HEREDOC.search(line) else line))
    if change > 0:
        level = len(stack)
        stack.append(change)
        return level
    closed = -change
    while closed > 0 and stack:
        if closed >= stack[-1]:
            closed -= stack.pop()
        else:
            stack[-1] -= closed
            closed = 0
    return len(stack)


def check_layout(path: Path, text: str) -> list[str]:
    problems = []
    if '\r' in text:
        problems.append('CRLF line ends')
    if text and not text.endswith('\n'):
        problems.append('no final newline')
    if text.endswith('\n\n'):
        problems.append('blank lines at the end')
    lines = text.split('\n')
    stack: list[int] = []
    heredoc = None
    run: list[tuple[int, int, str, int]] = []  # (line number, indent, name, column of '=') of the current alignment run

    def close_run():
        if run:  # a run of one still gets exactly one space before '='
            width = max(len(name) for _, _, name, _ in run)
            for n, indent, name, col in run:
                want = indent + width + 1
                if col != want:
                    problems.append(f'line {n}: "=" at column {col + 1}, fmt aligns it at {want + 1}')
        run.clear()

    for n, line in enumerate(lines, 1):
        if heredoc is not None:
            if line.strip() == heredoc:
                heredoc = None
            continue
        if '\t' in line:
            problems.append(f'line {n}: tab')
        if line != line.rstrip():
            problems.append(f'line {n}: trailing whitespace')
        stripped = line.strip()
        if not stripped:
            close_run()
            continue
        level = step(stack, line)
        want_indent = 2 * level
        indent = len(line) - len(line.lstrip(' '))
        if indent != want_indent:
            problems.append(f'line {n}: indented {indent}, fmt indents {want_indent}')
        m = ATTR.match(line)
        # hclwrite aligns an attribute only when its value closes every bracket it opens on the line (a heredoc
        # opener counts as closed); a value that continues on the next lines ends the run.
        one_line_attr = m is not None and net(brackets(m.group(5).split('<<', 1)[0])) == 0
        if one_line_attr:
            if run and run[-1][1] != indent:
                close_run()
            run.append((n, indent, m.group(2), indent + len(m.group(2)) + len(m.group(3))))
            if m.group(4) != ' ':
                problems.append(f'line {n}: fmt puts one space after "="')
        else:
            close_run()
        h = HEREDOC.search(line)
        if h:
            heredoc = h.group(2)
    close_run()
    if stack:
        problems.append('brackets unbalanced at the end')
    return problems


# Layouts `tofu fmt` rewrites (checked with OpenTofu 1.10.10), each with the problem the normaliser must report: the
# script runs these first, so a normaliser that stopped seeing anything fails instead of passing every file.
SELF_TEST = [
    ('a = 1\nbb = 2\n', '"=" at column'),
    ('a   = 1\nbb = 2\n', '"=" at column'),
    ('x {\n  a   = 1\n  bcd = [\n    "p",\n  ]\n}\n', '"=" at column'),
    ('x {\n    a = 1\n}\n', 'indented 4, fmt indents 2'),
    ('x = [\n  for a in b : f(\n    ["p",\n      "q"],\n  )\n]\n', 'indented 6, fmt indents 4'),
    ('a = 1 \n', 'trailing whitespace'),
    ('a = 1', 'no final newline'),
    ('x {\n\ta = 1\n}\n', 'tab'),
    ('a =  1\n', 'one space after'),
]
SELF_TEST_CLEAN = 'x {\n  a = 1\n  bcd = [\n    "p",\n  ]\n  e = <<-EOT\n  any  =  thing\n  EOT\n}\n'


def self_test() -> bool:
    ok = True
    for text, expected in SELF_TEST:
        found = check_layout(Path('<self-test>'), text)
        if not any(expected in p for p in found):
            print(f'check-terraform: normaliser self-test: {text!r} should report {expected!r}, got {found}',
                  file=sys.stderr)
            ok = False
    clean = check_layout(Path('<self-test>'), SELF_TEST_CLEAN)
    if clean:
        print(f'check-terraform: normaliser self-test: canonical text reported {clean}', file=sys.stderr)
        ok = False
    return ok


def main() -> int:
    args = sys.argv[1:]
    if '--parse-only' not in args and not self_test():
        return 1
    parse_only = '--parse-only' in args
    roots = [Path(a) for a in args if not a.startswith('--')]
    files = sorted(p for r in roots for p in r.rglob('*.tf') if '.terraform' not in p.parts)
    bad = 0
    for path in files:
        text = path.read_text(encoding='utf-8')
        try:
            hcl2.loads(text)
        except Exception as error:  # python-hcl2 raises lark errors of several kinds
            print(f'{path}: does not parse: {str(error).splitlines()[0]}', file=sys.stderr)
            bad += 1
            continue
        if not parse_only:
            for problem in check_layout(path, text):
                print(f'{path}: {problem}', file=sys.stderr)
                bad += 1
    print(f'check-terraform: {len(files)} .tf files parsed' + ('' if parse_only else ' and normalised') +
          f', {bad} problem(s)')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
