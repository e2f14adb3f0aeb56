"""`python -m harness.report <results folder>`: the same as `dlm-bench-report`."""

import sys

from harness.report import main

sys.exit(main())
