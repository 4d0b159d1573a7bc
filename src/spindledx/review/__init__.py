"""The pathologist's review of a count: candidates around the threshold (``*_candidates.json``) and the review
page that shows them (``review.html``). Importing reviewer decisions back is :mod:`spindledx.case.decisions`."""
