"""Teaching views of the IHC knowledge base: A-versus-B comparisons, a case quiz and a static browsable site.

Everything here is built on the public functions of :mod:`spindledx.ihc` (knowledge base, lookups, the
interpreter's own likelihoods and ``interpret_panel``), so the teaching material follows the knowledge base as it
grows and never disagrees with the interpreter.

    from spindledx.teaching import compare_entities, quiz_questions, build_site
"""

from spindledx.teaching.compare import Comparison, MarkerSeparation, compare_entities
from spindledx.teaching.quiz import QuizQuestion, quiz_questions
from spindledx.teaching.site import build_site

__all__ = ["Comparison", "MarkerSeparation", "QuizQuestion", "build_site", "compare_entities", "quiz_questions"]
