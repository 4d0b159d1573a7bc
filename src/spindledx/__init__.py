"""spindledx: mitotic counting on H&E tiles, IHC panel interpretation and batch QA for spindle-cell tumours."""

__version__ = "0.1.0"
