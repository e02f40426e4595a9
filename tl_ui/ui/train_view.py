"""Engine events -> what the Train step (and the API's status text) shows: `train_view(events, state)`
rebuilds a `TrainView` from a job's full event list (cheap: hundreds of rows)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Optional

import pandas as pd

from tl_ui.contracts import RunState
from tl_ui.contracts.events import (EpochEnd, Progress, RunFailed, RunFinished, RunStarted, RunStopped, SearchTrial,
                                    StepEnd)
from tl_ui.ui.formatting import fmt_count, fmt_duration, fmt_pct, fmt_seconds, fmt_share, pct_ci, warn_box
from tl_ui.ui.search_view import ENDED, STATE_WORDS

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
    its colour legend from the first data it gets, so a series that appears later is never drawn.
    Before the first point the pad rows have no epoch either: a pad at epoch 0 alone made the x axis
    a single lone '0.000000' tick; with none the plot is an empty frame (titles and legend)."""
    present = {r[2] for r in rows}
    x = 0.0 if rows else float("nan")
    pad = [(x, float("nan"), name) for name in series if name not in present]
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
    n_reported: Optional[int] = None       # the held-out (test) examples the final accuracy is on
    epoch_rows: list = field(default_factory=list)   # per finished epoch: losses and accuracies (text alternative)
    unit: str = "epoch"                    # what a row of the curves is: "epoch", or the probe's "iteration"
    score: str = "accuracy"                # what the second plot shows: "accuracy", or "micro_f1" (multi-label)

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

    def announcement(self) -> str:
        """What a screen reader says about the run, in one plain sentence that changes only with the
        state or a finished epoch: 'Epoch 3 of 10 done, validation accuracy 91.0%.'"""
        if self.state == RunState.QUEUED:
            return self.progress_text + "."
        if self.state == RunState.RUNNING:
            if not self.epoch_rows:
                return "Training started: preparing the model and your data."
            last = self.epoch_rows[-1]
            if self.score != "accuracy":
                return (f"Epoch {last['epoch']} done, validation micro-F1 {fmt_pct(last['val_accuracy'])}."
                        if self.unit == "epoch" else f"Last layer fitted, validation micro-F1 "
                        f"{fmt_pct(last['val_accuracy'])}.")
            if self.unit != "epoch":
                return (f"Fitting the last layer: iteration {last['epoch']}, validation accuracy "
                        f"{fmt_pct(last['val_accuracy'])}.")
            return (f"Epoch {last['epoch']} of {self.epochs or '?'} done, validation accuracy "
                    f"{fmt_pct(last['val_accuracy'])}.")
        if self.state == RunState.FINISHED:
            return (f"Training finished: {'accuracy' if self.score == 'accuracy' else 'subset accuracy'} {fmt_pct(self.accuracy)} on {_examples(self.n_reported)}. "
                    "The results are in step 5.")
        if self.state == RunState.STOPPED:
            message = _plain(self.message)
            return message if message.lower().startswith("stopped") else f"Training stopped. {message}".strip()
        if self.state == RunState.FAILED:
            return "Training failed: " + _plain(self.message or "the run ended with an error.")
        return ""


def train_view(events: Iterable[dict], job_state: str, position: int = 0, job_message: str = "",
               accuracy_ci=None) -> TrainView:
    """`accuracy_ci`: the finished run's interval (metrics.json), shown beside its accuracy."""
    view = TrainView(state=job_state)
    steps_per_epoch = None
    epochs = None
    last_eta = None
    last_epoch = 0
    unit = "epoch"      # "iteration": the probe's full-batch solver (a few dozen quick iterations)
    stage_text = ""
    seen_stages: set = set()
    offset = 0   # a continued run (tl_ui/engine/training/continuation.py) numbers its epochs after its parent's
    for e in events:
        kind = e.get("kind")
        if kind == RunStarted.kind:
            view.run_id = e.get("run_id", "")
            view.score = e.get("score") or "accuracy"
            unit = e.get("unit") or "epoch"
            epochs = (e.get("epochs") or None) if unit == "epoch" else None
            total = e.get("total_steps") or 0
            steps_per_epoch = (total / epochs) if epochs and total else None
            share = (e.get("trainable_params", 0) / max(e.get("total_params", 1), 1))
            view.log.append(
                f"Started: {e.get('model_id')} · {e.get('strategy')} · {e.get('n_train')} training and "
                f"{e.get('n_val')} validation examples · {len(e.get('classes', []))} classes · "
                f"training {fmt_count(int(e.get('trainable_params', 0)))} of "
                f"{fmt_count(int(e.get('total_params', 0)))} weights ({fmt_share(share)})"
            )
        elif kind == Progress.kind:
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
        elif kind == StepEnd.kind:
            step, total = int(e.get("step", 0)), max(int(e.get("total_steps") or 1), 1)
            spe = steps_per_epoch or (total / epochs if epochs else None)
            if step == 1 and unit == "epoch":
                offset = max(int(e.get("epoch", 1)) - 1, 0)
            x = offset + step / spe if spe else float(e.get("epoch", 0))
            view.loss_rows.append((round(x, 4), float(e.get("train_loss", float("nan"))), TRAIN_SERIES))
            prep = 0.5 if seen_stages else 0.0
            view.fraction = max(view.fraction, prep + (1 - prep) * step / total)
            last_eta = e.get("eta_s")
            last_epoch = int(e.get("epoch", last_epoch))
            view.progress_text = (f"Epoch {last_epoch} of {offset + epochs if epochs else '?'} · step {step} of {total}"
                                  f" · about {fmt_duration(last_eta)} left" if unit == "epoch" else
                                  f"Fitting the last layer: iteration {step}")
        elif kind == EpochEnd.kind:
            ep = int(e.get("epoch", 0))
            if unit != "epoch":
                _iteration_rows(view, e)
                last_epoch = ep
                continue
            n_epochs = int(e.get("epochs") or epochs or 0)
            epochs = (n_epochs - offset) or epochs   # this run's own epochs
            view.loss_rows.append((float(ep), float(e.get("val_loss", float("nan"))), VAL_SERIES))
            view.acc_rows.append((float(ep), float(e.get("train_accuracy", float("nan"))), TRAIN_SERIES))
            view.acc_rows.append((float(ep), float(e.get("val_accuracy", float("nan"))), VAL_SERIES))
            view.epoch_rows.append({"epoch": ep, "train_loss": e.get("train_loss"), "val_loss": e.get("val_loss"),
                                    "train_accuracy": e.get("train_accuracy"),
                                    "val_accuracy": e.get("val_accuracy")})
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
            if n_epochs > offset:
                prep = 0.5 if seen_stages else 0.0
                view.fraction = max(view.fraction, prep + (1 - prep) * (ep - offset) / (n_epochs - offset))
            view.progress_text = f"Epoch {ep} of {n_epochs} done · about {fmt_duration(last_eta)} left"
        elif kind == RunFinished.kind:
            view.accuracy = e.get("accuracy")
            view.run_id = e.get("run_id", view.run_id)
            view.run_seconds = e.get("elapsed_s")
            view.n_reported = e.get("n_val")
            view.log.append(f"Finished: accuracy {fmt_pct(e.get('accuracy'))} on {_examples(view.n_reported)} "
                            f"with the weights of {unit} {e.get('best_epoch')}. "
                            f"{timing_text(view.loop_seconds, view.run_seconds)}.")
        elif kind == RunStopped.kind:
            view.message = e.get("message", "")
            view.log.append(view.message if view.message.lower().startswith("stopped")
                            else f"Stopped: {view.message}")
        elif kind == RunFailed.kind:
            view.message = e.get("message", "")
            view.log.append(f"Failed: {view.message}")
        elif kind == SearchTrial.kind and e.get("state") in ENDED:   # an 'auto' run's try, once it ended
            score = e.get("val_score")
            view.log.append(f"Try {e.get('number')}: {e.get('name') or e.get('strategy')} — "
                            f"{STATE_WORDS.get(str(e.get('state')), e.get('state'))}"
                            + (f", validation accuracy {fmt_pct(score)}" if score is not None else ""))

    view.epochs = offset + int(epochs) if epochs else None   # the last epoch's number
    view.unit = unit
    if job_state in (RunState.STOPPED, RunState.FAILED) and not view.message:
        view.message = job_message or ""
    if job_state == RunState.QUEUED:
        view.status = (f"**Waiting in queue: position {position}.** Your run starts by itself as soon as "
                       "the computer is free. You can leave this page open or come back later.")
        view.progress_text = f"Waiting in queue: position {position}"
    elif job_state == RunState.RUNNING:
        if view.loss_rows and unit != "epoch":
            view.status = f"**Training:** fitting the last layer, iteration {max(last_epoch, 1)}"
        elif view.loss_rows:
            view.status = (f"**Training:** epoch {max(last_epoch, 1)} of {offset + epochs if epochs else '?'} · "
                           f"about {fmt_duration(last_eta)} left")
        elif stage_text:
            view.status = f"**Preparing:** {stage_text} (the pretrained model stays frozen)…"
        else:
            view.status = "**Preparing:** loading the model and your data…"
            view.progress_text = view.progress_text or "Preparing…"
    elif job_state == RunState.FINISHED:
        view.fraction = 1.0
        accuracy = pct_ci(view.accuracy, accuracy_ci) if accuracy_ci else fmt_pct(view.accuracy)
        view.status = (f"**Finished:** accuracy {accuracy} on {_examples(view.n_reported)}. "
                       "See the results, with how sure they are, in step 5.")
        view.progress_text = "Finished"
    elif job_state == RunState.STOPPED:
        message = (view.message or job_message).strip()
        first, _, rest = message.partition(". ")
        if first.lower().startswith("stopped"):  # "Stopped by the user at epoch 2, step 32. No model…"
            view.status = f"**{first.rstrip('.')}.** {rest}"
        else:
            view.status = f"**Stopped.** {message}"
        view.status = view.status.rstrip() + " You can change the settings and start again."
        view.progress_text = "Stopped"
    elif job_state == RunState.FAILED:
        view.status = warn_box(view.message or job_message or "the run ended with an error.", "Failed")
        view.progress_text = "Failed"
    else:
        view.status = "Press **Start training** to begin."
    if view.score != "accuracy":   # multi-label: the curves' score is micro-F1 (tl_ui/engine/tasks/multi_label.py)
        from tl_ui.ui.results_multilabel import relabel_view

        relabel_view(view)
    return view


def _plain(text: str) -> str:
    return " ".join(str(text or "").replace("**", "").split())


def _iteration_rows(view: TrainView, e: dict) -> None:
    """The full-batch probe's iteration: curve points; one log line, for the weights kept."""
    it = float(e.get("epoch", 0))
    view.loss_rows.append((it, float(e.get("val_loss", float("nan"))), VAL_SERIES))
    view.acc_rows.append((it, float(e.get("train_accuracy", float("nan"))), TRAIN_SERIES))
    view.acc_rows.append((it, float(e.get("val_accuracy", float("nan"))), VAL_SERIES))
    view.loop_seconds = e.get("elapsed_s", view.loop_seconds)
    view.epoch_rows.append({"epoch": int(it), "train_loss": e.get("train_loss"), "val_loss": e.get("val_loss"),
                            "train_accuracy": e.get("train_accuracy"), "val_accuracy": e.get("val_accuracy")})
    if e.get("is_best"):
        view.fraction = max(view.fraction, 0.95)
        view.log.append(
            f"Fitted the last layer in {int(it)} iterations (full-batch L-BFGS): train loss "
            f"{e.get('train_loss', 0):.3f}, validation loss {e.get('val_loss', 0):.3f}, validation accuracy "
            f"{fmt_pct(e.get('val_accuracy'))}")


def _examples(n: Optional[int]) -> str:
    return f"{n} test examples" if n else "the test examples"


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
