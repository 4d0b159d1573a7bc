"""spindledx: mitotic counting on H&E tiles, IHC panel interpretation and batch QA for spindle-cell tumours.

Library entry points, one per command, each returning what the command prints or writes (imported on first use,
so ``import spindledx`` stays light):

- :func:`score_images` (``score``), :func:`count_points` (``count-points``), :func:`evaluate_images`
  (``evaluate``), :func:`analyze_slide` (``slide``), :func:`run_batch` (``batch``), :func:`run_case` (``case``),
  :func:`import_decisions` (``review --import``), :func:`adapt_model` (``adapt``), :func:`interpret_panel`
  (``panel``), :func:`build_site` (``kb site``).
"""

from spindledx.lazy import lazy_getattr

__version__ = "0.1.0"

_MODULES = {
    "spindledx.mitosis.run": ("score_images", "count_points", "evaluate_images"),
    "spindledx.slide.run": ("analyze_slide",),
    "spindledx.qa.batch": ("run_batch",),
    "spindledx.case.run": ("run_case",),
    "spindledx.case.decisions": ("import_decisions",),
    "spindledx.ihc.interpret": ("interpret_panel",),
    "spindledx.teaching.site": ("build_site",),
    "spindledx.adapt.run": ("adapt_model",),
}
__all__ = sorted(name for names in _MODULES.values() for name in names)
__getattr__ = lazy_getattr(__name__, _MODULES)
