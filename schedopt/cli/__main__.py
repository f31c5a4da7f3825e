"""``python -m schedopt.cli``: the same as the ``schedopt`` console script."""

import sys

from . import main

sys.exit(main())
