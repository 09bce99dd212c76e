"""Griffe extension for the docs build: show bare doctests as code.

pybackprop's docstrings are numpydoc, and many carry doctests in their
description (outside an ``Examples`` section, which mkdocstrings already
renders as code). Markdown would otherwise read such a doctest as prose:
``t.layers[0]["dW"]`` becomes a reference link, ``[0.1, 0.05]`` too. This
extension wraps each bare doctest block (a ``>>>`` line, its ``...``
continuations and its output, up to a blank line) in a ```` ```pycon ````
fence, and shows Sphinx roles (``:class:`~pybackprop.Sequential```) as inline
code. Docstrings in the source are not changed.
"""
from __future__ import annotations

import re
from typing import Any, List

import griffe

_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")
_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|obj|exc|data):`(~?)([^`]+)`")


def plain_roles(text: str) -> str:
    """Sphinx cross-reference roles as inline code: ``:class:`~a.B``` -> ```B```, ``:mod:`a.b``` -> ```a.b```."""
    return _ROLE.sub(lambda m: "`" + (m.group(2).rsplit(".", 1)[-1] if m.group(1) else m.group(2)) + "`", text)


def fence_doctests(text: str) -> str:
    """Wrap bare ``>>>`` blocks of a numpydoc docstring in ```pycon fences."""
    lines = text.split("\n")
    out: List[str] = []
    in_examples = False
    in_fence = False
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        if stripped and not stripped.startswith(">>>") and _UNDERLINE.match(nxt) and not in_fence:
            in_examples = stripped == "Examples"  # a numpydoc section header: Examples is handled by griffe
        if stripped.startswith("```"):
            in_fence = not in_fence
        if not in_examples and not in_fence and stripped.startswith(">>>"):
            indent = line[: len(line) - len(line.lstrip())]
            block = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i])
                i += 1
            if out and out[-1].strip():
                out.append("")
            out.append(f"{indent}```pycon")
            out.extend(block)
            out.append(f"{indent}```")
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fence bare doctests in every docstring griffe loads."""

    def on_instance(self, *, node: Any, obj: griffe.Object, agent: Any, **kwargs: Any) -> None:
        if obj.docstring is None:
            return
        value = plain_roles(obj.docstring.value)
        if ">>>" in value:
            value = fence_doctests(value)
        obj.docstring.value = value
