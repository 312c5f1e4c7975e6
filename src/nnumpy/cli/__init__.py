"""The ``nnumpy`` command (``nnumpy.cli:main``): ``train``, ``evaluate``, ``info``, ``export``.

Files: ``app.py`` (the parser, ``main``, ``evaluate``, ``info``, ``export``),
``train.py`` (``nnumpy train``), ``common.py`` (what the commands share).
The command may tune its own process (threads); the library never does.
"""

from .app import build_parser, main
from .common import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE

__all__ = ["main", "build_parser", "EXIT_ERROR", "EXIT_USAGE", "EXIT_INTERRUPTED"]
