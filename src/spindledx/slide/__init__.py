"""Whole-slide images: reading, tissue detection, tiling and the mitotic hotspot."""
