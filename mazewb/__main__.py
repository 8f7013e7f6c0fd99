"""``python -m mazewb ...``: the same as the ``mazewb`` command."""

import sys

from mazewb.cli import main

sys.exit(main())
