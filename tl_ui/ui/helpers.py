"""Old import path, kept for callers not yet moved (tests/test_api.py): the pieces now live in
formatting.py, train_view.py, thumbnails.py, results_html.py and theme.py. Import from those."""
from tl_ui.ui.formatting import (GENERIC_ERROR, error_md, fmt_count, fmt_duration, fmt_pct, fmt_seconds,  # noqa: F401
                                 fmt_share, progress_html, user_message, warn_box)
from tl_ui.ui.results_html import confusion_html  # noqa: F401
from tl_ui.ui.theme import CSS  # noqa: F401
from tl_ui.ui.thumbnails import thumbnail  # noqa: F401
from tl_ui.ui.train_view import SERIES_COLORS, TrainView, timing_text, train_view  # noqa: F401
