"""``python -m dwellir_harvester.cli``: the same as the ``dwellir-harvester`` command."""

import sys

from . import main

sys.exit(main())
