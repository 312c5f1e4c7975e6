"""``python -m nnumpy``: the same as the ``nnumpy`` command."""

import sys

from .cli import main

sys.exit(main())
