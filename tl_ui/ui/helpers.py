"""Small shared pieces: plain-words errors, formatting, and engine events -> what the page shows."""
from __future__ import annotations

import html
import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional

import pandas as pd

log = logging.getLogger("tl_ui.ui")

from tl_ui.service.errors import GENERIC_ERROR, user_message  # noqa: E402,F401 (re-exported for the steps)


def error_md(message: str, title: str = "Problem") -> str:
    """A plain-words problem as a visible warning box (HTML inside a gr.Markdown; see CSS .tl-warn)."""
    return warn_box(message, title)


def warn_box(message: str, title: str = "Problem", markdown_ok: bool = False) -> str:
    """`<div class="tl-warn">⚠️ <strong>title:</strong> message</div>`; '' for no message.

    The message is escaped unless `markdown_ok` (then simple **bold** is turned into <strong>)."""
    if not message:
        return ""
    body = html.escape(str(message))
    if markdown_ok:
        body = _BOLD.sub(r"<strong>\1</strong>", body)
    head = f"<strong>{html.escape(title)}:</strong> " if title else ""
    return f'<div class="tl-warn" role="alert">⚠️ {head}{body}</div>'


_BOLD = re.compile(r"\*\*(.+?)\*\*")


def fmt_duration(seconds: Optional[float]) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "unknown"
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s" if minutes < 10 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def fmt_seconds(seconds: Optional[float]) -> str:
    """A measured duration: '0.4 s' below a second (never '0 s'), else like fmt_duration."""
    if seconds is not None and math.isfinite(seconds) and 0 <= seconds < 1:
        return "under 0.1 s" if seconds < 0.05 else f"{seconds:.1f} s"
    return fmt_duration(seconds)


def fmt_pct(x: Optional[float]) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def fmt_share(share: float) -> str:
    """0.38% / 0.0034% / 100%: enough digits that a tiny trainable share is not shown as 0%."""
    if share <= 0:
        return "0%"
    if share >= 0.01:
        return f"{share:.1%}" if share < 1 else "100%"
    return f"{share * 100:.2g}%"


def fmt_count(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.1f}M"
    if n >= 10_000:
        return f"{n / 1e3:.0f}k"
    return f"{n:,}"


def progress_html(fraction: float, text: str) -> str:
    pct = max(0.0, min(1.0, fraction)) * 100
    return (
        '<div class="tl-progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" '
        f'aria-valuenow="{pct:.0f}"><div class="tl-progress-bar" style="width:{pct:.1f}%"></div></div>'
        f'<div class="tl-progress-text">{html.escape(text)}</div>'
    )


# -- engine events -> train view ---------------------------------------------------------------
LOSS_COLUMNS = ["epoch", "loss", "series"]
ACC_COLUMNS = ["epoch", "accuracy", "series"]
# The same two series names, in the same colours, in both plots (training loss is drawn every
# step, validation loss once per epoch; accuracies once per epoch).
TRAIN_SERIES, VAL_SERIES = "training", "validation"
LOSS_SERIES = (TRAIN_SERIES, VAL_SERIES)
ACC_SERIES = (TRAIN_SERIES, VAL_SERIES)
SERIES_COLORS = {TRAIN_SERIES: "#2563eb", VAL_SERIES: "#ea580c"}   # blue / orange


def _padded(rows: list, columns: list[str], series: tuple[str, ...]) -> pd.DataFrame:
    """Every series appears at least once (a NaN row if it has no points yet): Gradio's plot fixes
    its colour legend from the first data it gets, so a series that appears later is never drawn."""
    present = {r[2] for r in rows}
    pad = [(0.0, float("nan"), name) for name in series if name not in present]
    if rows and not pad:  # the x axis starts at epoch 0 (a single point still gets a readable axis)
        pad = [(0.0, float("nan"), series[-1])]
    return pd.DataFrame(list(rows) + pad, columns=columns)


@dataclass
class TrainView:
    """What the Train step shows, rebuilt from a job's full event list (cheap: hundreds of rows)."""
    state: str = "idle"                 # idle|queued|running|finished|stopped|failed
    status: str = ""
    fraction: float = 0.0
    progress_text: str = ""
    loss_rows: list = field(default_factory=list)
    acc_rows: list = field(default_factory=list)
    log: list = field(default_factory=list)
    run_id: str = ""
    accuracy: Optional[float] = None
    message: str = ""
    epochs: Optional[int] = None        # planned epochs (the plots' x range)
    loop_seconds: Optional[float] = None   # the training loop alone (EpochEnd.elapsed_s)
    run_seconds: Optional[float] = None    # the whole run: model load, embeddings, training, export

    def loss_df(self) -> pd.DataFrame:
        rows = self.loss_rows
        if len(rows) > 1500:  # keep the plot light: thin the per-step train loss
            step_rows = [r for r in rows if r[2] == TRAIN_SERIES]
            keep = set(map(id, step_rows[:: math.ceil(len(step_rows) / 1000)]))
            rows = [r for r in rows if r[2] != TRAIN_SERIES or id(r) in keep]
        return _padded(rows, LOSS_COLUMNS, LOSS_SERIES)

    def acc_df(self) -> pd.DataFrame:
        return _padded(self.acc_rows, ACC_COLUMNS, ACC_SERIES)

    def x_max(self) -> Optional[float]:
        """The largest epoch value with a point in either plot (None before the first point)."""
        xs = [r[0] for r in self.loss_rows + self.acc_rows if r[1] == r[1]]  # skip NaN values
        return max(xs) if xs else None

    def log_text(self, last: int = 40) -> str:
        return "\n".join(self.log[-last:])


def train_view(events: Iterable[dict], job_state: str, position: int = 0, job_message: str = "") -> TrainView:
    view = TrainView(state=job_state)
    steps_per_epoch = None
    epochs = None
    last_eta = None
    last_epoch = 0
    stage_text = ""
    seen_stages: set = set()
    for e in events:
        kind = e.get("kind")
        if kind == "started":
            view.run_id = e.get("run_id", "")
            epochs = e.get("epochs") or None
            total = e.get("total_steps") or 0
            steps_per_epoch = (total / epochs) if epochs and total else None
            share = (e.get("trainable_params", 0) / max(e.get("total_params", 1), 1))
            view.log.append(
                f"Started: {e.get('model_id')} · {e.get('strategy')} · {e.get('n_train')} training and "
                f"{e.get('n_val')} validation examples · {len(e.get('classes', []))} classes · "
                f"training {fmt_count(int(e.get('trainable_params', 0)))} of "
                f"{fmt_count(int(e.get('total_params', 0)))} weights ({fmt_share(share)})"
            )
        elif kind == "progress":
            total = max(int(e.get("total") or 0), 1)
            done = int(e.get("done") or 0)
            stage = e.get("stage", "preparing")
            stage_text = f"{_stage_name(stage)} {done}/{total}"
            if stage not in seen_stages:
                seen_stages.add(stage)
                view.log.append(e.get("message") or _stage_name(stage))
            if done >= total:
                view.log.append(f"{_stage_name(stage)}: {done} of {total} done")
            if not view.loss_rows:
                view.fraction = 0.5 * done / total
                view.progress_text = stage_text
        elif kind == "step":
            step, total = int(e.get("step", 0)), max(int(e.get("total_steps") or 1), 1)
            spe = steps_per_epoch or (total / epochs if epochs else None)
            x = step / spe if spe else float(e.get("epoch", 0))
            view.loss_rows.append((round(x, 4), float(e.get("train_loss", float("nan"))), TRAIN_SERIES))
            prep = 0.5 if seen_stages else 0.0
            view.fraction = max(view.fraction, prep + (1 - prep) * step / total)
            last_eta = e.get("eta_s")
            last_epoch = int(e.get("epoch", last_epoch))
            view.progress_text = (f"Epoch {last_epoch} of {epochs or '?'} · step {step} of {total}"
                                  f" · about {fmt_duration(last_eta)} left")
        elif kind == "epoch":
            ep = int(e.get("epoch", 0))
            n_epochs = int(e.get("epochs") or epochs or 0)
            epochs = n_epochs or epochs
            view.loss_rows.append((float(ep), float(e.get("val_loss", float("nan"))), VAL_SERIES))
            view.acc_rows.append((float(ep), float(e.get("train_accuracy", float("nan"))), TRAIN_SERIES))
            view.acc_rows.append((float(ep), float(e.get("val_accuracy", float("nan"))), VAL_SERIES))
            last_eta = e.get("eta_s")
            last_epoch = ep
            view.loop_seconds = e.get("elapsed_s", view.loop_seconds)
            # EpochEnd.is_best: lowest validation loss so far (the weights the run keeps)
            best = (" — lowest validation loss so far: this epoch's weights are kept"
                    if e.get("is_best") else "")
            view.log.append(
                f"Epoch {ep}/{n_epochs}: train loss {e.get('train_loss', 0):.3f}, validation loss "
                f"{e.get('val_loss', 0):.3f}, validation accuracy {fmt_pct(e.get('val_accuracy'))}{best}"
            )
            if n_epochs:
                prep = 0.5 if seen_stages else 0.0
                view.fraction = max(view.fraction, prep + (1 - prep) * ep / n_epochs)
            view.progress_text = f"Epoch {ep} of {n_epochs} done · about {fmt_duration(last_eta)} left"
        elif kind == "finished":
            view.accuracy = e.get("accuracy")
            view.run_id = e.get("run_id", view.run_id)
            view.run_seconds = e.get("elapsed_s")
            view.log.append(f"Finished: validation accuracy {fmt_pct(e.get('accuracy'))} with the weights "
                            f"of epoch {e.get('best_epoch')}. {timing_text(view.loop_seconds, view.run_seconds)}.")
        elif kind == "stopped":
            view.message = e.get("message", "")
            view.log.append(view.message if view.message.lower().startswith("stopped")
                            else f"Stopped: {view.message}")
        elif kind == "failed":
            view.message = e.get("message", "")
            view.log.append(f"Failed: {view.message}")

    view.epochs = int(epochs) if epochs else None
    if job_state == "queued":
        view.status = (f"**Waiting in queue: position {position}.** Your run starts by itself as soon as "
                       "the computer is free. You can leave this page open or come back later.")
        view.progress_text = f"Waiting in queue: position {position}"
    elif job_state == "running":
        if view.loss_rows:
            view.status = (f"**Training:** epoch {max(last_epoch, 1)} of {epochs or '?'} · "
                           f"about {fmt_duration(last_eta)} left")
        elif stage_text:
            view.status = f"**Preparing:** {stage_text} (the pretrained model stays frozen)…"
        else:
            view.status = "**Preparing:** loading the model and your data…"
            view.progress_text = view.progress_text or "Preparing…"
    elif job_state == "finished":
        view.fraction = 1.0
        view.status = (f"**Finished:** validation accuracy {fmt_pct(view.accuracy)}. "
                       "See the results in step 5.")
        view.progress_text = "Finished"
    elif job_state == "stopped":
        message = (view.message or job_message).strip()
        first, _, rest = message.partition(". ")
        if first.lower().startswith("stopped"):  # "Stopped by the user at epoch 2, step 32. No model…"
            view.status = f"**{first.rstrip('.')}.** {rest}"
        else:
            view.status = f"**Stopped.** {message}"
        view.status = view.status.rstrip() + " You can change the settings and start again."
        view.progress_text = "Stopped"
    elif job_state == "failed":
        view.status = warn_box(view.message or job_message or "the run ended with an error.", "Failed")
        view.progress_text = "Failed"
    else:
        view.status = "Press **Start training** to begin."
    return view


def _stage_name(stage: str) -> str:
    return {"embeddings": "Computing embeddings"}.get(stage, (stage or "preparing").replace("_", " ").capitalize())


def timing_text(loop_seconds: Optional[float], run_seconds: Optional[float]) -> str:
    """'Training loop 1 s; whole run 6 s' (the run adds loading the model, embeddings and saving)."""
    parts = []
    if loop_seconds is not None:
        parts.append(f"training loop {fmt_seconds(loop_seconds)}")
    if run_seconds is not None:
        parts.append(f"whole run {fmt_seconds(run_seconds)} (with loading and saving the model)")
    text = "; ".join(parts)
    return text[:1].upper() + text[1:]


# -- results helpers ---------------------------------------------------------------------------
def confusion_html(matrix: list[list[int]], classes: list[str]) -> str:
    """A confusion matrix heat map as an HTML table (rows: true class, columns: predicted)."""
    if not matrix or not classes:
        return ""
    biggest = max((max(row) for row in matrix if row), default=1) or 1
    head = "".join(f"<th scope='col'>{html.escape(c)}</th>" for c in classes)
    rows = []
    for i, (name, row) in enumerate(zip(classes, matrix)):
        cells = []
        total = sum(row) or 1
        for j, count in enumerate(row):
            level = count / biggest
            if i == j:
                bg = f"rgba(22, 128, 60, {0.12 + 0.78 * level:.2f})"
            else:
                bg = f"rgba(200, 40, 40, {0.08 + 0.82 * level:.2f})" if count else "transparent"
            color = "#fff" if level > 0.55 else "inherit"
            cells.append(f"<td style='background:{bg};color:{color}' title='true {html.escape(name)}, "
                         f"predicted {html.escape(classes[j])}: {count} ({count / total:.0%} of this class)'>"
                         f"{count}</td>")
        rows.append(f"<tr><th scope='row'>{html.escape(name)}</th>{''.join(cells)}</tr>")
    return (
        "<div class='tl-confusion'><table><caption>Rows: true class · columns: predicted class · "
        "green diagonal = correct, red = mistakes</caption>"
        f"<thead><tr><th>true ↓ / predicted →</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def thumbnail(src: str | Path, dst_folder: Path, name: str, size: int = 160) -> Optional[Path]:
    """A small PNG copy of an image (user data never leaves the private folder at full size)."""
    try:
        from PIL import Image

        with Image.open(src) as im:
            im = im.convert("RGB")
            im.thumbnail((size, size))
            if min(im.size) < 64:  # tiny images (e.g. 28 px digits): enlarge so they can be seen
                factor = math.ceil(64 / max(min(im.size), 1))
                im = im.resize((im.width * factor, im.height * factor), Image.NEAREST)
            out = dst_folder / f"{name}.png"
            im.save(out)
            return out
    except Exception:  # a missing or unreadable file just is not shown
        return None


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
#model-shelf, #metrics-table, #per-class-table, #mistakes-table, #data-table { --font-mono: var(--font); }
/* gallery captions: the whole caption on one line, over the image */
#mistakes-gallery .caption-label, #data-gallery .caption-label { max-width: 96%; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; font-size: 0.8em; }
"""
