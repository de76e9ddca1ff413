"""`python -m tinker.cli`: same as the `tinker` command."""

import sys

from tinker.cli import main

sys.exit(main())
