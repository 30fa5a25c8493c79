"""``python -m bt.cli``: the same as the ``bt`` console script."""

import sys

from bt.cli import main

sys.exit(main())
