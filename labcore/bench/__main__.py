"""`python -m labcore.bench`: the measures side by side, as labcore.bench.cli runs them."""
import sys

from labcore.bench.cli import main

sys.exit(main())
