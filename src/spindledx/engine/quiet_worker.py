"""Dask preload for the worker processes of a local cluster: leave Ctrl-C to the process that started them.

A Ctrl-C in the terminal reaches every process of the foreground group.  The command that started the cluster
stops and closes it (exit 130); without this module every nanny and worker would also print its own
KeyboardInterrupt traceback.  Loaded by :func:`spindledx.engine.workers.run_dask` with Dask's ``preload`` and
``preload_nanny`` options (https://distributed.dask.org/en/stable/plugins.html#preload-scripts).
"""

from __future__ import annotations

import signal
import threading

if threading.current_thread() is threading.main_thread():  # imported at process start, in the main thread
    signal.signal(signal.SIGINT, signal.SIG_IGN)
