"""Transfer Lab: `python app.py` starts the web app (also the Hugging Face Space entry point).
Every setting: `python app.py --help`. The app itself lives in `tl_ui/app/webapp.py`."""
import sys

from tl_ui.app.webapp import build_app, main  # noqa: F401  (build_app: for `import app` in a notebook)

if __name__ == "__main__":
    sys.exit(main())
