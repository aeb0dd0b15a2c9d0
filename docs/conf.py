"""Sphinx configuration: the API reference (docs/api/) and the Markdown documents of
docs/ rendered with MyST.  Built by tests/test_api_docs.py with warnings as errors:
``python -m sphinx -W -b html docs docs/_build``."""
import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import meanfield  # noqa: E402

project = "meanfield"
author = "meanfield authors"
release = version = meanfield.__version__
extensions = ["sphinx.ext.autodoc", "myst_parser"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
autodoc_typehints = "signature"
myst_heading_anchors = 3

html_theme = "alabaster"


# -- the project's docstring sections --------------------------------------------------
# meanfield's docstrings write "Parameters" (and "Returns", "Attributes", ...) sections
# as "name : what it is", continuation lines indented, the section ending at a blank
# line before text that is not another entry.  (numpydoc/napoleon would read the text
# after the colon as a *type*.)  This hook renders such a section as a rubric and a
# bulleted list.
import re  # noqa: E402

SECTIONS = ("Parameters", "Returns", "Yields", "Attributes", "Raises", "Examples", "Notes")
ENTRY = re.compile(r"^(\S[^:]*?) : (.*)$")


def _sections(app, what, name, obj, options, lines):
    out, i = [], 0
    while i < len(lines):
        head = lines[i].strip()
        rule = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if head in SECTIONS and len(rule) >= 3 and set(rule) == {"-"}:
            out += [f".. rubric:: {head}", ""]
            i += 2
            while i < len(lines):
                line = lines[i]
                if not line.strip():
                    j = i + 1
                    while j < len(lines) and not lines[j].strip():
                        j += 1
                    if j < len(lines) and ENTRY.match(lines[j]):
                        i = j
                        continue
                    break
                m = ENTRY.match(line)
                if m:
                    out.append(f"* **{m.group(1).strip()}** — {m.group(2)}")
                else:
                    out.append(("  " + line.strip()) if out and out[-1].startswith(("*", "  ")) else line)
                i += 1
            out.append("")
        elif ENTRY.match(lines[i]) and (i == 0 or not lines[i - 1].strip()):
            # a paragraph of "name : what" entries outside a section: the same list
            while i < len(lines) and lines[i].strip():
                m = ENTRY.match(lines[i])
                out.append(f"* **{m.group(1).strip()}** — {m.group(2)}" if m
                           else "  " + lines[i].strip())
                i += 1
            out.append("")
        else:
            out.append(lines[i])
            i += 1
    lines[:] = out


def setup(app):
    app.connect("autodoc-process-docstring", _sections)
