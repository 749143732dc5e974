"""Check a rendered user-data script (stdin: `tofu console` output of templatefile): strip the console's heredoc
wrapper, check the shell syntax with `bash -n`, and parse every XML document the script writes with a heredoc."""

import re
import subprocess
import sys
import xml.etree.ElementTree as ET


def main() -> int:
    lines = sys.stdin.read().splitlines()
    if lines and lines[0].startswith('<<'):
        lines = lines[1:-1]  # tofu console prints a multi-line string as <<EOT ... EOT
    script = '\n'.join(lines) + '\n'
    syntax = subprocess.run(['bash', '-n'], input=script, text=True, capture_output=True)
    if syntax.returncode != 0:
        print(f'check-terraform: user data: bash -n: {syntax.stderr.strip()}', file=sys.stderr)
        return 1
    documents = re.findall(r"<<'?XML'?\n(.*?)\nXML\n", script, flags=re.S)
    for doc in documents:
        try:
            ET.fromstring(doc)
        except ET.ParseError as error:
            print(f'check-terraform: user data: XML does not parse ({error}):\n{doc[:300]}', file=sys.stderr)
            return 1
    print(f'check-terraform: user data: shell syntax ok, {len(documents)} XML documents parse')
    return 0 if documents else 1


if __name__ == '__main__':
    sys.exit(main())
