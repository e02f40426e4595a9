"""Named API endpoints (Gradio's API page; drive a whole run with `gradio_client`).

    from gradio_client import Client, handle_file
    c = Client("http://127.0.0.1:7860/")
    job = c.submit("efficientnet_lite0", handle_file("digits.zip"), "linear_probe", 5, "{}", api_name="/train")
    status, metrics, run_id = job.result()                   # waits; final metrics (dict) and run id
    # job.status() / job.outputs() show progress meanwhile; avoid `for update in job` in the same
    # process as the server: it polls every millisecond and slows the run ~18% (docs/benchmarks.md).
    c.predict(run_id, handle_file("seven.png"), "", api_name="/predict")  # {class: probability}

Every endpoint acts for the caller only: runs belong to the authenticated user, or without login
to the caller's session (the `tl_sid` cookie a client keeps), and another caller's run id is
answered as unknown.
"""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import gradio as gr

from tl_ui.ui import strategy as strategy_step
from tl_ui.ui.helpers import train_view, user_message
from tl_ui.ui.state import SessionState

_KNOWN_OPTIONS = set(strategy_step.ADVANCED_KEYS) | {"text_column", "label_column"}


def build(handlers) -> dict:
    """Hidden components and the named endpoints: train, predict, runs, stop, download."""
    ctx = handlers.ctx
    with gr.Column(visible=False):
        a_model = gr.Textbox(label="model_id")
        a_data = gr.File(label="dataset", type="filepath")
        a_strategy = gr.Textbox(label="strategy")
        a_epochs = gr.Number(label="epochs", precision=0)
        a_options = gr.Textbox(label="options_json")
        a_status = gr.Textbox(label="status")
        a_metrics = gr.JSON(label="metrics")
        a_run_id = gr.Textbox(label="run_id")
        p_run = gr.Textbox(label="run_id")
        p_image = gr.Image(label="image", type="filepath")
        p_text = gr.Textbox(label="text")
        p_out = gr.JSON(label="probabilities")
        r_out = gr.JSON(label="runs")
        s_out = gr.JSON(label="result")
        d_what = gr.Textbox(label="what")
        d_file = gr.File(label="file")
        trigger = gr.Button(visible=False)

    async def train(model_id, dataset, strategy, epochs, options_json, request: gr.Request):
        """Train a model. model_id: a shelf id (e.g. efficientnet_lite0, minilm_l6) or Hub id;
        dataset: zip/CSV/TSV/XLSX file (empty: the sample for the model's kind); strategy:
        linear_probe|partial|full|lora; epochs: 0 = strategy default; options_json: JSON object of
        further settings (learning_rate, batch_size, image_size, val_fraction, seed, random_init,
        unfreeze_groups, lora_rank, max_examples, text_column, label_column).
        Streams (status, metrics, run_id); the last metrics are the run's metrics.json plus state."""
        owner = ctx.owner(request)
        try:
            job = await asyncio.to_thread(_submit, handlers, owner, model_id, dataset, strategy, epochs,
                                          options_json)
        except Exception as exc:
            raise gr.Error(user_message(exc, "starting the run"), print_exception=False) from None
        position_at_submit = ctx.runner.position(job)
        last = None
        while True:
            events, _ = job.events_since(0)
            state = job.state
            view = train_view(events, state, ctx.runner.position(job), job.message)
            status = _plain(view.status) if state != "running" else _plain(view.progress_text or view.status)
            if job.done:
                yield status, _final_metrics(job, position_at_submit), job.id
                return
            if status != last:
                last = status
                yield status, {"state": state, "position": ctx.runner.position(job)}, job.id
            await asyncio.sleep(0.5)

    def predict(run_id, image, text, request: gr.Request):
        """Class probabilities for one image (file) or one text with a finished run of yours."""
        owner = ctx.owner(request)
        try:
            return handlers.predict(owner, (run_id or "").strip(), image, text)
        except Exception as exc:
            raise gr.Error(user_message(exc, "predicting"), print_exception=False) from None

    def runs(request: gr.Request):
        """Your runs, newest first: run_id, state, model, strategy, accuracy, has_model."""
        owner = ctx.owner(request)
        return [info.to_dict() for info in ctx.workspace.list_runs(owner)]

    def stop(run_id, request: gr.Request):
        """Ask one of your runs to stop (it ends after its current step)."""
        owner = ctx.owner(request)
        return {"run_id": run_id, "stopped": bool(ctx.runner.stop((run_id or "").strip(), owner.id))}

    def download(run_id, what, request: gr.Request):
        """A file of one of your runs: what = model (zip of the model folder) | run.json | card."""
        owner = ctx.owner(request)
        run_dir = ctx.workspace.run_dir(owner, (run_id or "").strip())
        if run_dir is None:
            raise gr.Error(f"There is no run '{run_id}' for you.", print_exception=False)
        files = ctx.private.run_downloads(owner, run_dir)
        key = {"model": "model", "model.zip": "model", "run.json": "run_json", "run_json": "run_json",
               "card": "card", "README.md": "card"}.get((what or "model").strip())
        if key is None:
            raise gr.Error("'what' must be one of: model, run.json, card.", print_exception=False)
        if files.get(key) is None:
            raise gr.Error("This run has no such file (did it finish?).", print_exception=False)
        return str(files[key])

    trigger.click(train, [a_model, a_data, a_strategy, a_epochs, a_options], [a_status, a_metrics, a_run_id],
                  api_name="train", concurrency_limit=None, show_progress="hidden")
    trigger.click(predict, [p_run, p_image, p_text], p_out, api_name="predict", concurrency_limit=2,
                  concurrency_id="predict")
    trigger.click(runs, None, r_out, api_name="runs", concurrency_limit=None)
    trigger.click(stop, p_run, s_out, api_name="stop", concurrency_limit=None)
    trigger.click(download, [p_run, d_what], d_file, api_name="download", concurrency_limit=2)
    return {}


def _plain(markdown: str) -> str:
    return markdown.replace("**", "").strip()


def _submit(handlers, owner, model_id, dataset, strategy, epochs, options_json):
    from tl_ui.catalog import get_model
    from tl_ui.ui import data as data_step

    options = {}
    if options_json and str(options_json).strip():
        try:
            options = json.loads(options_json)
        except ValueError:
            raise ValueError_("options_json is not valid JSON.") from None
        if not isinstance(options, dict):
            raise ValueError_("options_json must be a JSON object, e.g. {\"max_examples\": 100}.")
        unknown = sorted(set(options) - _KNOWN_OPTIONS)
        if unknown:
            raise ValueError_(f"Unknown option(s): {', '.join(unknown)}. Known: {', '.join(sorted(_KNOWN_OPTIONS))}.")
    model_id = (model_id or "").strip() or "efficientnet_lite0"
    strategy = (strategy or "").strip() or "linear_probe"
    advanced = {k: options.get(k) for k in strategy_step.ADVANCED_KEYS}
    if epochs:
        advanced["epochs"] = int(epochs)
    state = SessionState(columns={"text_column": options.get("text_column") or "",
                                  "label_column": options.get("label_column") or ""})
    if dataset:
        outcome = data_step.load_into_workspace(handlers.ctx, owner, Path(dataset), Path(dataset).name,
                                                state.columns["text_column"], state.columns["label_column"])
    else:
        outcome = handlers._load_sample(owner, get_model(model_id).modality)
    if outcome.error:
        raise ValueError_(outcome.error)
    state.dataset, state.data_path, state.data_name = outcome.dataset, outcome.data_path, outcome.name
    return handlers.submit(owner, state, model_id, strategy, advanced)


def _final_metrics(job, position_at_submit: int) -> dict:
    from tl_ui.sessions import read_json

    metrics = read_json(job.run_dir / "metrics.json") or {}
    metrics = {k: v for k, v in metrics.items() if k != "mistakes"}
    metrics.update({
        "state": job.state, "message": job.message, "run_id": job.id,
        "submitted": job.submitted, "started": job.started, "ended": job.ended,
        "queue_position_at_submit": position_at_submit, "seq": job.seq,
    })
    if job.state == "failed" and not metrics.get("message"):
        failed = [e for e in job.events if e.get("kind") == "failed"]
        metrics["message"] = failed[-1].get("message", "") if failed else ""
    return metrics


class ValueError_(ValueError):
    """A user-facing API input problem."""

