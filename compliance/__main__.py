"""``python -m compliance`` works like the ``compliance`` command."""

import sys

from .cli import main

sys.exit(main())
