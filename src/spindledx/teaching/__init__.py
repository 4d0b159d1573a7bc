"""Teaching views of the IHC knowledge base: A-versus-B comparisons, a case quiz and a static browsable site.

Everything here is built on the public functions of :mod:`spindledx.ihc` (knowledge base, lookups, the
interpreter's own likelihoods and ``interpret_panel``), so the teaching material follows the knowledge base as it
grows and never disagrees with the interpreter.

    from spindledx.teaching import compare_entities, quiz_questions, build_site
"""

from __future__ import annotations

from spindledx.lazy import lazy_getattr

_MODULES = {
    "spindledx.teaching.compare": ("Comparison", "MarkerSeparation", "compare_entities"),
    "spindledx.teaching.quiz": ("QuizQuestion", "quiz_questions"),
    "spindledx.teaching.site": ("build_site",),
}
__all__ = sorted(name for names in _MODULES.values() for name in names)
__getattr__ = lazy_getattr(__name__, _MODULES)
