"""The page's CSS (passed to Gradio by tl_ui/server.py) and the script that marks live regions."""
from __future__ import annotations

import json

CSS = """
.tl-progress { width: 100%; height: 14px; background: var(--neutral-200, #e5e7eb); border-radius: 7px; overflow: hidden; }
.tl-progress-bar { height: 100%; background: var(--color-accent, #f97316); }
.tl-progress-text { font-size: 0.9em; margin-top: 4px; }
.tl-confusion table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
.tl-confusion th, .tl-confusion td { border: 1px solid var(--border-color-primary, #ddd); padding: 4px 8px; text-align: center; min-width: 2.2em; }
.tl-confusion caption { caption-side: bottom; font-size: 0.85em; padding-top: 4px; }
.tl-step-intro { font-size: 1.02em; }
.tl-note { font-size: 0.88em; opacity: 0.85; }
/* errors: a visible warning box, not plain black text */
.tl-warn { background: #fff7ed; color: #7c2d12; border: 1px solid #fdba74; border-left: 6px solid #ea580c;
           border-radius: 8px; padding: 10px 14px; margin: 2px 0; line-height: 1.45; }
.dark .tl-warn { background: #431407; color: #ffedd5; border-color: #c2410c; }
/* Per-epoch values get a point marker, so a curve with a single point (after epoch 1, or a 1-epoch
   run) is still visible. gr.LinePlot has no point option: its hidden hover layer already holds one
   symbol per row; show those of the per-epoch series (all of the accuracy plot, the validation
   series of the loss plot: colour SERIES_COLORS["validation"]) as small circles. */
#acc-plot g.mark-symbol path, #loss-plot g.mark-symbol path[stroke="#ea580c"] {
  d: path("M-4,0a4,4 0 1,0 8,0a4,4 0 1,0 -8,0"); opacity: 1 !important; stroke-width: 2px; }
/* galleries as tall as their rows (Gradio's fixed-height grid keeps a 450 px minimum otherwise) */
#data-gallery .grid-wrap, #mistakes-gallery .grid-wrap { min-height: 0 !important; }
/* tables in the page's normal font (Gradio draws them in the monospace font) */
#model-shelf, #metrics-table, #per-class-table, #mistakes-table, #data-table, #group-table, #runs-table {
  --font-mono: var(--font); }
/* Results: the headline estimate, the plain sentences under it, the comparison boxes */
#results-summary .tl-headline { font-size: 1.35em; font-weight: 600; margin: 0.2em 0; }
#results-summary .tl-sentence { margin: 0.15em 0 0.5em 0; }
.tl-evidence { border-left: 4px solid var(--color-accent, #f97316); padding: 2px 12px; margin: 4px 0; }
#try-set { padding: 4px 10px; }
/* reliability diagram and run overlay: every value gets a point marker (see the note above) */
#reliability-plot g.mark-symbol path, #compare-plot g.mark-symbol path {
  d: path("M-4,0a4,4 0 1,0 8,0a4,4 0 1,0 -8,0"); opacity: 1 !important; stroke-width: 2px; }
/* gallery captions: the whole caption on one line, over the image */
#mistakes-gallery .caption-label, #data-gallery .caption-label { max-width: 96%; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; font-size: 0.8em; }
"""

# Elements whose text changes while the user waits: announced by screen readers (WCAG 4.1.3).
# The attribute sits on the component's wrapper (its elem_id), which persists while Gradio
# replaces what is inside; a tab's components only appear on its first visit, hence the observer.
LIVE_REGION_IDS = ["train-status", "data-summary", "data-error", "strategy-info", "model-info",
                   "results-summary", "scratch-comparison", "compare-diff", "try-set", "try-error"]

LIVE_REGIONS_JS = """() => {
    const ids = %s;
    const mark = () => ids.forEach((id) => {
        const el = document.getElementById(id);
        if (el && el.getAttribute('aria-live') !== 'polite') {
            el.setAttribute('aria-live', 'polite');
            el.setAttribute('aria-atomic', 'true');
        }
    });
    mark();
    new MutationObserver(mark).observe(document.body, {childList: true, subtree: true});
}""" % json.dumps(LIVE_REGION_IDS)

