"""The page's look: the Gradio theme (colours that meet WCAG 2.1 AA contrast), its CSS and the
script that marks live regions. tl_ui/app/server.py passes `build_theme()` and `CSS` to Gradio."""
from __future__ import annotations

import json

import gradio as gr

# System fonts only: nothing is fetched (offline / Space) and no bundled display font stands in
# for the user's normal UI font.
SYSTEM_FONTS = ["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica", "Arial", "sans-serif"]
MONO_FONTS = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]


def build_theme() -> gr.themes.Base:
    """Gradio's Soft theme with every text colour at 4.5:1 or more against its background (WCAG 1.4.3).

    Soft draws labels, info texts, hints and the footer in light grey or indigo-500 (2.5:1 to 4.4:1 on
    white); here they are one or two shades darker. Primary buttons and ticked boxes are indigo-600
    under white text (6.3:1)."""
    return gr.themes.Soft(font=SYSTEM_FONTS, font_mono=MONO_FONTS).set(
        body_text_color_subdued="*neutral_600",            # info texts, upload hints, footer
        body_text_color_subdued_dark="*neutral_300",
        block_info_text_color="*neutral_600",
        block_info_text_color_dark="*neutral_300",
        block_label_text_color="*primary_700",             # component labels on indigo-100
        block_label_text_color_dark="white",
        block_title_text_color="*primary_700",
        block_title_text_color_dark="white",
        input_placeholder_color="*neutral_500",
        input_placeholder_color_dark="*neutral_400",
        button_primary_background_fill="*primary_600",
        button_primary_background_fill_hover="*primary_700",
        button_primary_background_fill_dark="*primary_600",
        button_primary_background_fill_hover_dark="*primary_700",
        checkbox_label_background_fill_selected="*primary_600",
        checkbox_label_background_fill_selected_dark="*primary_600",
        color_accent="*primary_600",
        link_text_color="*primary_700",
        link_text_color_hover="*primary_800",
        link_text_color_visited="*primary_800",
    )


CSS = """
.tl-progress { width: 100%; height: 14px; background: var(--neutral-200, #e5e7eb); border: 1px solid var(--neutral-500, #6b7280);
               border-radius: 7px; overflow: hidden; }
.tl-progress-bar { height: 100%; background: var(--button-primary-background-fill, #4f46e5); }
.tl-progress-text { font-size: 0.9em; margin-top: 4px; }
.tl-confusion-scroll { overflow-x: auto; }
.tl-confusion table, .tl-alt table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
.tl-confusion th, .tl-confusion td { border: 1px solid var(--border-color-primary, #ddd); padding: 4px 8px; text-align: center; min-width: 2.2em; }
.tl-confusion caption { caption-side: bottom; font-size: 0.85em; padding-top: 4px; }
.tl-step-intro { font-size: 1.02em; }
.tl-note { font-size: 0.88em; color: var(--body-text-color-subdued); }
/* errors: a visible warning box, not plain black text */
.tl-warn { background: #fff7ed; color: #7c2d12; border: 1px solid #fdba74; border-left: 6px solid #ea580c;
           border-radius: 8px; padding: 10px 14px; margin: 2px 0; line-height: 1.45; }
.dark .tl-warn { background: #431407; color: #ffedd5; border-color: #c2410c; }
/* Keyboard users see where they are (WCAG 2.4.7): one clear ring on whatever has the focus
   (Gradio's own focus styles are a faint shadow, or none on buttons and tabs). */
.gradio-container :is(button, a, input, select, textarea, summary, [tabindex]):focus-visible {
  outline: 3px solid #1d4ed8 !important; outline-offset: 2px !important; }
.dark .gradio-container :is(button, a, input, select, textarea, summary, [tabindex]):focus-visible {
  outline-color: #93c5fd !important; }
/* read by screen readers, not shown (the calm training announcements) */
.tl-sr-only { position: absolute !important; width: 1px !important; height: 1px !important; padding: 0 !important;
              margin: -1px !important; overflow: hidden !important; clip: rect(0 0 0 0) !important;
              white-space: nowrap !important; border: 0 !important; }
/* what the plots show, in words and tables (WCAG 1.1.1) */
.tl-alt { font-size: 0.92em; }
.tl-trials th, .tl-trials td { border: 1px solid var(--border-color-primary, #ddd); padding: 3px 8px; text-align: left; }
.tl-trials caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: 4px; }
.tl-alt p { margin: 0.2em 0; }
.tl-alt details { margin: 0.2em 0 0.6em 0; }
.tl-alt summary { cursor: pointer; font-weight: 600; }
.tl-alt .tl-alt-scroll { overflow-x: auto; }
.tl-alt th, .tl-alt td { border: 1px solid var(--border-color-primary, #ddd); padding: 2px 8px; text-align: right; }
.tl-alt th[scope=row], .tl-alt thead th { text-align: left; }
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
/* Narrow screens (tablets): a table keeps its words whole and scrolls sideways inside its box
   instead of squeezing its columns until words break mid-word (Gradio sizes each column as a share
   of the table's width, so the table gets a floor wide enough for its longest words). */
#model-shelf .table-wrap { min-width: 980px; }
#per-class-table .table-wrap, #group-table .table-wrap, #mistakes-table .table-wrap,
#data-table .table-wrap { min-width: 600px; }
#runs-table .table-wrap { min-width: 1200px; }
/* Results: the headline estimate, the plain sentences under it, the comparison boxes */
#results-summary .tl-headline { font-size: 1.35em; font-weight: 600; margin: 0.2em 0; }
#results-summary .tl-sentence { margin: 0.15em 0 0.5em 0; }
.tl-evidence { border-left: 4px solid var(--color-accent, #4f46e5); padding: 2px 12px; margin: 4px 0; }
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
# Training speaks through #train-announce (at a calm rate: tl_ui/ui/train.py), not #train-status,
# whose time left changes every second.
LIVE_REGION_IDS = ["train-announce", "data-summary", "data-error", "strategy-info", "model-info",
                   "results-summary", "scratch-comparison", "compare-diff", "try-set", "try-error",
                   "continue-note", "mistakes-why-note", "data-map-note"]

# Run once on page load (tl_ui/app/webapp.py), then on every change of the page:
# * marks the live regions above;
# * hides from assistive technology the mark groups a plot draws without any point yet (a plot
#   without data: vega gives such an empty group role="graphics-symbol" but no name, WCAG 1.1.1);
#   the text alternatives (tl_ui/ui/plot_text.py) say what the plots show.
PAGE_SCRIPT_JS = """() => {
    const ids = %s;
    const update = () => {
        ids.forEach((id) => {
            const el = document.getElementById(id);
            if (el && el.getAttribute('aria-live') !== 'polite') {
                el.setAttribute('aria-live', 'polite');
                el.setAttribute('aria-atomic', 'true');
            }
        });
        document.querySelectorAll('.vega-embed g.role-mark[role="graphics-symbol"]').forEach((g) => {
            const empty = g.childElementCount === 0 && !g.getAttribute('aria-label');
            if (empty && !g.hasAttribute('data-tl-empty')) {
                g.setAttribute('data-tl-empty', '');
                g.setAttribute('aria-hidden', 'true');
            } else if (!empty && g.hasAttribute('data-tl-empty')) {
                g.removeAttribute('data-tl-empty');
                g.removeAttribute('aria-hidden');
            }
        });
    };
    update();
    // vega may set a mark group's role after inserting it: watch that attribute too
    new MutationObserver(update).observe(document.body, {childList: true, subtree: true, attributes: true,
                                                         attributeFilter: ['role']});
}""" % json.dumps(LIVE_REGION_IDS)
