"""Imaging core: the one reader of tiles and slides with the one µm/px parser, the one resampler, stain OD."""
