#!/usr/bin/env python3
"""splice-fragments.py - rebuild BENCHMARKS.md from benchmark fragments.

Usage: splice-fragments.py OLD-BENCHMARKS.md FRAGMENT.md ... > NEW

Each fragment is one "## " section.  A section of OLD whose heading a
fragment has is replaced by that fragment, in place; the other sections of
OLD stay as they were (benchmarks not run this time keep their figures);
fragments with a new heading are appended.  The text before OLD's first
section (the title) is kept.
"""
import sys


def sections(text):
    """(heading, text) pairs; the part before the first heading has None."""
    out, head, lines = [], None, []
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            if lines:
                out.append((head, "".join(lines)))
            head, lines = line.strip(), []
        lines.append(line)
    if lines:
        out.append((head, "".join(lines)))
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__.split("\n\n")[1])
    try:
        old = sections(open(sys.argv[1]).read())
    except FileNotFoundError:
        old = []
    fresh = {}
    for path in sys.argv[2:]:
        for head, text in sections(open(path).read()):
            if head:
                fresh[head] = text.rstrip("\n") + "\n\n"
    done = set()
    for head, text in old:
        if head in fresh:
            text, _ = fresh[head], done.add(head)
        sys.stdout.write(text)
    for head, text in fresh.items():
        if head not in done:
            sys.stdout.write(text)


if __name__ == "__main__":
    main()
