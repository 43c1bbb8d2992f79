"""`python -m harness ...` (and `accelerate launch -m harness ...`): the `harness` command."""

import sys

from harness.app.cli import main

sys.exit(main())
