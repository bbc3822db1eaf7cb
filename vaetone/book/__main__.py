"""``python -m vaetone.book execute|build``: see :mod:`vaetone.book.pipeline`."""

import sys

from vaetone.book.pipeline import main

sys.exit(main())
