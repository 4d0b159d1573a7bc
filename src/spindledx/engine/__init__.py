"""The one tile engine for ``score``, ``batch`` and ``slide``: run store (log, signature, atomic writes, lock),
local workers, Dask and one progress display."""
