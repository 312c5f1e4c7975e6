"""The README and the guides in docs/ run as written, and their links lead somewhere.

Code blocks. Every ```python block of README.md and of docs/**/*.md runs: a
page's blocks in order, in one namespace (a block may use what an earlier
block of the same page defined), in a fresh temporary directory (the files a
block writes land there), with matplotlib's Agg backend. A failing block is
reported as ``docs/page.md:LINE`` and its traceback shows the Markdown lines.

A block that cannot run here -- it needs ``mpiexec``, the full data set or
minutes -- is marked shown-not-run by an HTML comment (invisible on GitHub)
on the line right before its fence, with the reason::

    <!-- not run: needs mpiexec -->
    ```python

Such a block is still compiled, so a syntax error fails the test. A marker
that is not directly followed by a ```python fence fails too (it would
silently mark nothing).

docs/seed-dialects.md is run by tests/test_dialects.py (against the
canonical calls), so only its links are checked here.

Links. Every relative link or image in these pages (``[text](path)``,
``[text](path#anchor)``, ``[text]: path``) must point at an existing file or
directory of the repository, and an anchor into a Markdown page at one of
its headings (GitHub's anchors). Links inside code are ignored.

Quick start. .ci/run executes the README's two quick-start commands
verbatim; a test checks that both files still spell them the same way.
"""

import pathlib
import re
from dataclasses import dataclass

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("**/*.md")])
RUN_ELSEWHERE = {ROOT / "docs" / "seed-dialects.md": "tests/test_dialects.py"}
# page -> who writes it (until it is merged; remove the entry once it exists on main)
QUICK_START = ('pip install ".[plot]" && nnumpy train', 'pip install -e ".[test]" && python -m pytest')

MARKER = re.compile(r"^\s*<!--\s*not run:\s*(?P<reason>\S.*?)\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<ticks>```+|~~~+)\s*(?P<info>[^`\s]*)")


@dataclass
class Block:
    line: int  # 1-based line of the first code line
    info: str  # the fence's language ("python", "bash", "")
    code: str
    not_run: str | None  # the marker's reason, if marked


def parse(page):
    """``(blocks, prose_lines, errors)``: the fenced blocks, the lines outside
    code (``(line_number, text)``), and misplaced-marker errors."""
    lines = page.read_text(encoding="utf-8").split("\n")
    blocks, prose, errors = [], [], []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            marker = MARKER.match(lines[i])
            if marker:
                nxt = FENCE.match(lines[i + 1]) if i + 1 < len(lines) else None
                if not nxt or nxt["info"] != "python":
                    errors.append(f"{page.name}:{i + 1}: a 'not run' marker must be right before a ```python fence")
            prose.append((i + 1, lines[i]))
            i += 1
            continue
        indent, ticks = len(fence["indent"]), fence["ticks"]
        start, body = i + 1, []
        i += 1
        while i < len(lines) and not re.match(rf"^\s*{re.escape(ticks[0]) * len(ticks)}\s*$", lines[i]):
            line = lines[i]
            body.append(line[min(indent, len(line) - len(line.lstrip())) :])  # the fence's indentation off
            i += 1
        marker = MARKER.match(lines[start - 2]) if start >= 2 else None
        blocks.append(Block(start + 1, fence["info"], "\n".join(body) + "\n", marker["reason"] if marker else None))
        i += 1  # the closing fence
    return blocks, prose, errors


def rel(page):
    return page.relative_to(ROOT).as_posix() if page.is_relative_to(ROOT) else page.name


# ------------------------------------------------------------------ code blocks
RUN_PAGES = [p for p in PAGES if p not in RUN_ELSEWHERE and any(b.info == "python" for b in parse(p)[0])]


@pytest.mark.parametrize("page", RUN_PAGES, ids=rel)
def test_page_python_blocks_run(page, tmp_path, monkeypatch):
    blocks, _, errors = parse(page)
    assert not errors, errors
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace = {"__name__": "__docs__"}
    for block in (b for b in blocks if b.info == "python"):
        # padding with newlines makes the code's line numbers the page's, and the
        # absolute file name lets tracebacks print the Markdown lines
        code = compile("\n" * (block.line - 1) + block.code, str(page), "exec")
        if block.not_run is None:
            try:
                exec(code, namespace)
            except Exception as error:
                raise AssertionError(f"{rel(page)}:{block.line}: the python block failed: {error!r}") from error


def test_markers_are_parsed(tmp_path):
    """The parser sees markers, fences and line numbers as documented (a marker it
    missed would make a shown-not-run block run, or a run block be skipped)."""
    page = tmp_path / "_marker_probe.md"
    page.write_text(
        "# t\n\n```python\nx = 1\n```\n\n<!-- not run: needs mpiexec -->\n```python\ny = 2\n```\n\n"
        "- item\n\n  ```bash\n  ls\n  ```\n\n<!-- not run: oops -->\ntext\n"
    )
    blocks, prose, errors = parse(page)
    assert [(b.line, b.info, b.code, b.not_run) for b in blocks] == [
        (4, "python", "x = 1\n", None),
        (9, "python", "y = 2\n", "needs mpiexec"),
        (15, "bash", "ls\n", None),
    ]
    assert errors == ["_marker_probe.md:18: a 'not run' marker must be right before a ```python fence"]
    assert (1, "# t") in prose and all("x = 1" not in text for _, text in prose)


# ------------------------------------------------------------------ links
LINK = re.compile(r"!?\[(?P<text>[^\]]*)\]\((?P<target><[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\)")
REFERENCE = re.compile(r"^\s*\[[^\]]+\]:\s*(?P<target>\S+)")


def github_anchors(page):
    """The anchors GitHub gives the headings of ``page``."""
    anchors, seen = set(), {}
    for _, text in parse(page)[1]:
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", text)
        if not heading:
            continue
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading[1])  # a link in a heading: its text
        slug = re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    return anchors


def links(page):
    """``(line, target)`` of every link outside code on ``page``."""
    found = []
    for number, text in parse(page)[1]:
        text = re.sub(r"`[^`]*`", "", text)  # inline code
        found += [(number, m["target"].strip("<>")) for m in LINK.finditer(text)]
        found += [(number, m["target"]) for m in REFERENCE.finditer(text)]
    return found


def link_problems(page):
    problems = []
    for number, target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:, ...
            continue
        path_part, _, anchor = target.partition("#")
        path = (page.parent / path_part).resolve() if path_part else page
        where = f"{rel(page)}:{number}: {target}"
        if not path.exists():
            problems.append(f"{where}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in github_anchors(path):
            problems.append(f"{where}: no heading with the anchor #{anchor} in {path.name}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_relative_links_resolve(page):
    problems = link_problems(page)
    assert not problems, "\n".join(problems)


def test_link_checker_catches_broken_links(tmp_path):
    (tmp_path / "other.md").write_text("# Other\n\n## Same\n\n## Same\n")
    page = tmp_path / "probe.md"
    page.write_text(
        "# Title here\n\n## A `code` heading, too\n\n[ok](other.md) [ok](other.md#same-1) [ok](#title-here) "
        "[ok](#a-code-heading-too) [web](https://example.org) `[code](nowhere.md)`\n"
        "[bad](nowhere.md) [bad anchor](#nope) ![bad image](img/nowhere.png)\n\n"
        "```python\n# [in code](nowhere.md)\n```\n[ref]: other.md#missing\n"
    )
    assert link_problems(page) == [
        "probe.md:6: nowhere.md: no such file",
        "probe.md:6: #nope: no heading with the anchor #nope in probe.md",
        "probe.md:6: img/nowhere.png: no such file",
        "probe.md:11: other.md#missing: no heading with the anchor #missing in other.md",
    ]


# ------------------------------------------------------------------ quick start
def test_quick_start_commands_are_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text().split("\n")
    readme_bash = [b.code.strip() for b in parse(ROOT / "README.md")[0] if b.info in ("bash", "sh")]
    for command in QUICK_START:
        assert command in readme_bash, f"README.md's quick start no longer shows {command!r} as its own block"
        assert command in ci, f".ci/run no longer runs {command!r}"
