"""Batch QA over sample sets: image quality flags, batch runner, report."""
