"""``python -m chaos.cli``: the ``failwhale`` command, for when its script is not on the PATH."""

import sys

from chaos.cli import main

sys.exit(main())
