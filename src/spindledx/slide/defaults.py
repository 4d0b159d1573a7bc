"""Default settings of the whole-slide pipeline (a light module: the CLI reads them without the numeric stack)."""

DEFAULT_WORK_MPP = 0.25
"""Detector working resolution (µm/px)."""
DEFAULT_TILE_UM = 512.0
"""Tile core side (µm)."""
DEFAULT_MARGIN_UM = 16.0
"""Tile overlap on each side (µm): more than a mitotic figure's radius."""
DEFAULT_MIN_TISSUE_FRACTION = 0.8
"""Hotspot windows must lie at least this much on tissue."""
