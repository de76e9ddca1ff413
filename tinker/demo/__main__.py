"""`python -m tinker.demo`."""

import sys

from tinker.demo import main

sys.exit(main())
