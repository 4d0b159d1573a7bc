"""Result types shared by the mitosis stages, the batch runner and the whole-slide pipeline."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detection:
    """One detected mitotic figure.

    Attributes
    ----------
    x, y
        Centre in pixels of the image as given (x = column, y = row), not of the internal working resolution.
    score
        Classifier probability in [0, 1].
    """

    x: float
    y: float
    score: float


# A detector takes an RGB uint8 array (H, W, 3) and its resolution in µm/px and returns the figures found,
# in the pixel coordinates of that array. spindledx.mitosis.detect.detect_mitoses is the default one.
Detector = Callable[[np.ndarray, float], list[Detection]]
