"""Every code block of README.md and docs/*.md runs as printed.

Each Markdown file's blocks run in order in one fresh folder (so a block may use what an
earlier one made: a file, a name): ``python`` blocks in one namespace, as in a notebook;
``bash`` blocks with ``bash -e``, the installed ``meanfield`` on the PATH; ``toml`` blocks
are written to a file (``as: NAME``) and may be followed by a command (``then: ...``).
A block without a language is printed output, and a ``{directive}`` block is MyST
markup of the rendered documentation (docs/index.md's table of contents): neither runs.

A block changes only where the Markdown says so, in HTML comments (invisible when
rendered) on the lines right above it:

    <!-- docs-test: skip: WHY -->            not run, and why
    <!-- docs-test: replace: OLD => NEW -->  a smaller size (the text OLD must occur)
    <!-- docs-test: as: NAME -->             a toml block's file name
    <!-- docs-test: then: COMMAND -->        a shell command after writing that file
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = ["README.md"] + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))
FENCE = re.compile(r"^```([\w{}-]*)\n(.*?)^```\s*$", re.S | re.M)
DIRECTIVE = re.compile(r"^<!-- docs-test: (skip|replace|as|then): (.*) -->\s*$")


def blocks(text):
    """[(line, language, code, {directive: [values]})] of a Markdown text."""
    out = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        above = text[:m.start()].split("\n")[:-1]
        found = {}
        while above and above[-1].startswith("<!-- docs-test"):
            d = DIRECTIVE.match(above.pop())
            assert d, f"line {line}: a docs-test comment this test does not understand"
            found.setdefault(d.group(1), []).insert(0, d.group(2))
        out.append((line, m.group(1), m.group(2), found))
    return out


def prepare(line, code, found):
    for rep in found.get("replace", []):
        old, sep, new = rep.partition(" => ")
        assert sep and old in code, f"line {line}: replace {old!r}: not in the block"
        code = code.replace(old, new)
    return code


def shell(code, cwd, what):
    env = dict(os.environ, MPLBACKEND="Agg",
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    r = subprocess.run(["bash", "-e", "-c", code], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, f"{what} exited {r.returncode}:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"


@pytest.mark.parametrize("name", FILES)
def test_every_block_runs_as_printed(name, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")   # the blocks' pyplot figures, in this test process only
    text = (ROOT / name).read_text()
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    ran = 0
    for line, lang, code, found in blocks(text):
        what = f"{name}:{line} ({lang or 'output'})"
        if "skip" in found:
            assert found["skip"][0].strip(), f"{what}: a skip says why"
            continue
        code = prepare(line, code, found)
        if lang == "" or lang.startswith("{"):
            continue   # printed output, or a MyST directive of the rendered docs (a toctree)
        if lang == "python":
            exec(compile(code, what, "exec"), namespace)
        elif lang == "bash":
            shell(code, tmp_path, what)
        elif lang == "toml":
            target = tmp_path / found.get("as", ["block.toml"])[0]
            target.write_text(code)
            for cmd in found.get("then", []):
                shell(cmd, tmp_path, f"{what}, then: {cmd}")
        else:
            pytest.fail(f"{what}: a {lang!r} block; this test runs python, bash and toml")
        ran += 1
    if name == "README.md":
        assert ran >= 8, ran


def test_the_directives_are_parsed():
    text = ("a\n<!-- docs-test: skip: too long -->\n```bash\nsleep 1e9\n```\n"
            "<!-- docs-test: replace: 100 => 2 -->\n<!-- docs-test: replace: x => y -->\n"
            "```python\nx = 100\n```\n```\noutput\n```\n")
    (l1, g1, c1, d1), (l2, g2, c2, d2), (_, g3, _, d3) = blocks(text)
    assert (l1, g1, d1) == (3, "bash", {"skip": ["too long"]})
    assert (l2, g2, d2) == (8, "python", {"replace": ["100 => 2", "x => y"]})
    assert prepare(l2, c2, d2) == "y = 2\n" and (g3, d3) == ("", {})
    with pytest.raises(AssertionError, match="not in the block"):
        prepare(1, "z = 1\n", {"replace": ["100 => 2"]})
