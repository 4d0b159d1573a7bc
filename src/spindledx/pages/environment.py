"""The one Jinja2 environment every HTML page of spindledx is rendered with.

Templates are package data in ``spindledx/pages/templates/`` (``*.html.j2`` pages and macros, ``*.css`` and
``*.js`` included verbatim into the pages). The environment escapes every value (``autoescape=True``: ``&``, ``<``,
``>``, ``"`` and ``'`` in text and attributes), fails on a missing value (:class:`jinja2.StrictUndefined`) and
emits inline JSON with Jinja's ``tojson`` filter (``<``, ``>``, ``&`` and ``'`` as ``\\u`` escapes, safe in a
``<script>`` element). Python code hands templates plain values (strings, numbers, lists, dicts); markup is
written in templates. The few filters below that return markup escape every part they are given first.
"""

from __future__ import annotations

import base64
import functools
import math
from typing import Any

import jinja2
from markupsafe import Markup

from spindledx.pages.links import linkify


def fmt(value: Any, digits: int = 3) -> str:
    """Display text of ``value`` (not escaped: the template escapes it): ``None`` or a non-finite float -> an en
    dash, floats to ``digits`` significant figures, booleans as yes/no, lists joined with commas."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else "–"
    if isinstance(value, list | tuple):
        return ", ".join(fmt(v, digits) for v in value)
    return str(value)


def percent(value: float | None, digits: int = 0) -> str:
    """``0.79`` -> ``"79%"``; ``None`` -> an en dash."""
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def data_uri(data: bytes) -> str:
    """``data:image/png;base64,...`` URI of PNG bytes (``image/jpeg`` when the bytes are a JPEG)."""
    mime = "image/jpeg" if data[:3] == b"\xff\xd8\xff" else "image/png"
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")


def css_string(text: str) -> Markup:
    """``text`` as the inside of a double-quoted CSS string in a ``<style>`` element.

    A ``<style>`` element is raw text: HTML escapes would print literally, so this filter escapes for CSS instead
    (backslash, double quote, line breaks, and ``<`` as ``\\3C`` so no ``</style>`` can close the element) and
    marks the result safe deliberately.
    """
    out = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\3C ")
    return Markup(out.replace("\r", "\\D ").replace("\n", "\\A "))  # escaped above for CSS: safe in <style>


PROVENANCE_LABELS = {"spindledx_version": "spindledx version", "model_name": "detector model",
                     "model_version": "detector model version", "model_sha256": "detector model sha256",
                     "threshold": "detection threshold", "kb_version": "IHC knowledge-base version",
                     "date": "date (UTC)", "command": "command"}


def provenance_pairs(prov: dict[str, Any]) -> list[tuple[str, Any]]:
    """(label, value) of the provenance keys in words (nested values left out, except the model an adapted detector
    was adapted from, in one line)."""
    pairs = [(PROVENANCE_LABELS.get(k, k.replace("_", " ")), v) for k, v in prov.items()
             if not isinstance(v, dict | list)]
    adapted = prov.get("adapted_from")
    if isinstance(adapted, dict):
        pairs.append(("detector adapted from", f"{adapted.get('name')} {adapted.get('version')} (sha256 "
                                               f"{str(adapted.get('sha256') or '')[:12]}…)"))
    return pairs


@functools.cache
def environment() -> jinja2.Environment:
    """The page environment (built once): package templates, autoescape on, strict undefined values."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("spindledx.pages", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             auto_reload=False)
    env.filters.update(fmt=fmt, percent=percent, data_uri=data_uri, css_string=css_string, linkify=linkify)
    env.globals.update(provenance_pairs=provenance_pairs)
    return env


def render(template: str, /, **context: Any) -> str:
    """Render the package template ``template`` (e.g. ``"review/review.html.j2"``) with ``context``."""
    return environment().get_template(template).render(**context)
