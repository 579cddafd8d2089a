"""Entry point of the single-file executable built by scripts/build_exe."""

import multiprocessing
import sys

from tuanjian_xlsx.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # worker processes of a frozen program on Windows
    sys.exit(main())
