"""`python -m warmstart.demo`."""

import sys

from warmstart.demo.cli import main

sys.exit(main())
