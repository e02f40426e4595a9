"""`python -m tl_ui`: the command line, tl_ui/cli/main.py (installed as `transfer-lab`)."""
import sys

from tl_ui.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
