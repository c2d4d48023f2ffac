#!/usr/bin/env python3
"""Fails when a comment, config or document names a repository file that does not exist.

Looks for paths under the project's top-level folders (`docs/…`, `src/…`, `tests/…`, …) and
relative Markdown links in every tracked text file, so a moved or renamed file cannot leave
pointers behind it.
"""
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOP = r"(?:docs|deploy|config|migrations|tests|src|voice-prompts|benches|\.ci)"
PATH = re.compile(r"(?<![\w/.$-])(" + TOP + r"/[\w./*-]*[\w/*]|README\.md|BENCHMARKS\.md)")
MD_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
SKIP_DIRS = ("tests/data/",)
# The reference notes cite files of other repositories (their sources), not of this one.
SKIP_FILES = ("docs/iys-api-notes.md", "docs/telephony-notes.md")
# Files that the user or a tool creates, named on purpose before they exist.
CREATED_LATER = ("deploy/.env", ".proptest-regressions")
TEXT = (".rs", ".md", ".toml", ".sh", ".py", ".yml", ".yaml", ".conf", ".service", ".sql", ".txt")


def tracked():
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    for name in out.stdout.splitlines():
        if name.startswith(SKIP_DIRS) or name in SKIP_FILES or not name.endswith(TEXT):
            continue
        yield name


def exists(ref: str, base: Path) -> bool:
    ref = ref.rstrip(".")
    # A path with a placeholder (`migrations/{sqlite,postgres}/`, `docs/<topic>.md`) is a pattern.
    if any(c in ref for c in "{}<>*") or ref.endswith(CREATED_LATER):
        return True
    return (ROOT / ref).exists() or (base / ref).exists()


def main() -> int:
    missing = []
    for name in tracked():
        text = (ROOT / name).read_text(encoding="utf-8", errors="replace")
        base = (ROOT / name).parent
        for n, line in enumerate(text.splitlines(), 1):
            refs = PATH.findall(line)
            if name.endswith(".md"):
                refs += [r for r in MD_LINK.findall(line) if "://" not in r and not r.startswith("mailto:")]
            for ref in refs:
                if not exists(ref, base):
                    missing.append(f"{name}:{n}: {ref}")
    for m in missing:
        print(f"missing file: {m}", flush=True)
    if missing:
        print(f"{len(missing)} reference(s) to files that are not in the repository", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
