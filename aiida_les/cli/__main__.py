"""``python -m aiida_les.cli``: the ``aiida-les`` program."""

import sys

from aiida_les.cli import main

sys.exit(main())
