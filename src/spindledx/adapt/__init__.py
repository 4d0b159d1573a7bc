"""``spindledx adapt``: a detector adapted to a laboratory's review decisions (:func:`spindledx.adapt.run.adapt_model`).

Stages, one module each: ``dataset`` (decided candidates and their crops), ``features`` (pooled features and logit
through an edited ONNX graph), ``anchors`` (features of the shipped model's training material, package data),
``head`` (the linear correction), ``validate`` (cross-validation by image, threshold, verdict), ``compose`` (one
ONNX graph), ``card`` and ``run``.
"""
