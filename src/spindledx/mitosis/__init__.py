"""Mitotic figures on H&E tiles: reading, stain, candidates, classifier, detection, evaluation."""
