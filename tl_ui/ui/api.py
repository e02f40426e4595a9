"""Named API endpoints (Gradio's API page; drive a whole run with `gradio_client`).

    from gradio_client import Client, handle_file
    c = Client("http://127.0.0.1:7860/")
    job = c.submit("efficientnet_lite0", handle_file("digits.zip"), "linear_probe", 5, "{}", api_name="/train")
    status, metrics, run_id = job.result()                   # waits; final metrics (dict) and run id
    # job.status() / job.outputs() show progress meanwhile; avoid `for update in job` in the same
    # process as the server: it polls every millisecond and slows the run ~18% (docs/benchmarks.md).
    c.predict(run_id, handle_file("seven.png"), "", api_name="/predict")
    suggestions = c.predict(handle_file("pool.zip"), handle_file("labels.csv"), "", "", 10, api_name="/suggest")
    # -> [{"item", "score", "reason", "guess"}] best first: what to label next (issue 41; the labelling view's verb)
    report, csv_path = c.predict(run_id, handle_file("site_b.zip"), api_name="/validate")      # issue 34
    report, _ = c.predict(run_id, handle_file("site_b.zip"), '{"recalibrate": true, "site": "B"}',
                          api_name="/validate")   # + report["recalibration"]["run_id"]: a new, linked run
    summary, csv_path = c.predict(run_id, handle_file("batch.zip"), api_name="/predict_batch")
    # -> {"probabilities": {class: p}, "prediction_set": [classes], "set_level": 0.9, "set_sentence": "...",
    #     "unlike_training_data": false, "unlike_training_data_score": 0.61, ...}   (None for older runs)

Status texts are plain text (no markup); `metrics["state"]` is the machine-readable state.

Every endpoint acts for the caller only: runs belong to the authenticated user, or without login
to the caller's session (the `tl_sid` cookie a client keeps), and another caller's run id is
answered as unknown.
"""
from __future__ import annotations

import asyncio
import html
import json
import re
from pathlib import Path

import gradio as gr

from tl_ui.contracts import RunState
from tl_ui.contracts.events import RunFailed
from tl_ui.service.errors import UserError
from tl_ui.ui.formatting import user_message
from tl_ui.ui.handlers import client_address
from tl_ui.ui.train_view import train_view


def build(handlers) -> dict:
    """Hidden components and the named endpoints: train, predict, runs, stop, download."""
    lab = handlers.lab
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
        p_image = gr.File(label="image", type="filepath")   # any image file, DICOM and 16-bit TIFF too
        p_text = gr.Textbox(label="text")
        p_out = gr.JSON(label="probabilities")
        r_out = gr.JSON(label="runs")
        s_out = gr.JSON(label="result")
        d_what = gr.Textbox(label="what")
        d_file = gr.File(label="file")
        v_data = gr.File(label="new_data", type="filepath")        # /validate, /predict_batch (issue 34)
        v_options = gr.Textbox(label="options_json", value="")    # /validate: {"recalibrate": true, "site": ...}
        v_out = gr.JSON(label="validation")
        v_file = gr.File(label="predictions_csv")
        l_pool = gr.File(label="pool", type="filepath")             # /suggest (issue 41)
        l_labels = gr.File(label="labels_csv", type="filepath")
        l_classes = gr.Textbox(label="classes")
        l_model = gr.Textbox(label="model_id")
        l_n = gr.Number(label="n", precision=0)
        l_out = gr.JSON(label="suggestions")
        trigger = gr.Button(visible=False)

    async def train(model_id, dataset, strategy, epochs, options_json, request: gr.Request):
        """Train a model. model_id: a shelf id (e.g. efficientnet_lite0, minilm_l6) or Hub id;
        dataset: zip/CSV/TSV/XLSX file (empty: the sample for the model's kind); strategy:
        linear_probe|partial|full|lora|setfit|auto (empty: the default for the data; for texts the one the
        benchmark found best for their number, docs/benchmarks.md; auto: a search within "budget_minutes",
        metrics' "search" names the winner); epochs:
        0 = strategy default; options_json: JSON object of further settings, the same names as
        run.json (learning_rate, batch_size, image_size, val_fraction, seed, random_init,
        compare_scratch, group_column, set_level, unfreeze_groups, lora_rank, max_examples,
        text_column, label_column, budget_minutes, ...); {"continue_from": "<run_id>"} trains a finished run of yours
        `epochs` more epochs from its best weights instead (a new run; the other arguments are ignored). Streams (status, metrics, run_id): status is plain text;
        the last metrics are the run's metrics.json plus "state"."""
        owner = lab.owner(request)
        try:
            job = await asyncio.to_thread(_submit, lab, owner, model_id, dataset, strategy, epochs, options_json,
                                          client_address(request))
        except Exception as exc:
            raise gr.Error(user_message(exc, "starting the run"), print_exception=False) from None
        position_at_submit = lab.runner.position(job)
        last = None
        while True:
            events, _ = job.events_since(0)
            state = job.state
            view = train_view(events, state, lab.runner.position(job), job.message)
            status = plain_text(view.status) if state != RunState.RUNNING else plain_text(view.progress_text or view.status)
            if job.done:
                yield status, _final_metrics(job, position_at_submit), job.id
                return
            if status != last:
                last = status
                yield status, {"state": state, "position": lab.runner.position(job)}, job.id
            await asyncio.sleep(0.5)

    def predict(run_id, image, text, request: gr.Request):
        """For one image (file) or one text, with a finished run of yours: {"probabilities": {class: p},
        "prediction_set": [classes that hold the right one 90% of the time], "set_level", "set_sentence",
        "unlike_training_data": true when the input lies far from the training examples (None: older run),
        "unlike_training_data_score", "unlike_training_data_threshold", "unlike_training_data_sentence", and for a
        run with an operating point "decision" ("positive" / "negative" at the saved threshold), "threshold",
        "positive_class", "decision_sentence"}."""
        owner = lab.owner(request)
        try:
            return lab.predict(owner, (run_id or "").strip(), image, text)
        except Exception as exc:
            raise gr.Error(user_message(exc, "predicting"), print_exception=False) from None

    def runs(request: gr.Request):
        """Your runs, newest first: run_id, state, model, strategy, accuracy (+ interval), has_model."""
        return [info.to_dict() for info in lab.list_runs(lab.owner(request))]

    def stop(run_id, request: gr.Request):
        """Ask one of your runs to stop (it ends after its current step)."""
        return {"run_id": run_id, "stopped": bool(lab.stop_run(lab.owner(request), run_id))}

    def download(run_id, what, request: gr.Request):
        """A file of one of your runs: what = model (zip of the model folder) | run.json | card |
        report (the study report, HTML) | report_pdf (the same as PDF)."""
        key = {"model": "model", "model.zip": "model", "run.json": "run_json", "run_json": "run_json",
               "card": "card", "README.md": "card", "report": "report", "report.html": "report",
               "report_pdf": "report_pdf", "report.pdf": "report_pdf"}.get((what or "model").strip())
        if key is None:
            raise gr.Error("'what' must be one of: model, run.json, card, report, report_pdf.", print_exception=False)
        try:
            if key in ("report", "report_pdf"):   # written into the run's folder on request (service/report.py)
                from tl_ui.service.report import owner_report_files

                files = owner_report_files(lab, lab.owner(request), run_id,
                                           formats=("html",) if key == "report" else ("pdf",))
                if files.get(key) is None:
                    raise gr.Error(files.get("pdf_problem") or "This run has no report.", print_exception=False)
                return str(files[key])
            files = lab.run_files(lab.owner(request), run_id)
        except UserError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        if files.get(key) is None:
            raise gr.Error("This run has no such file (did it finish?).", print_exception=False)
        return str(files[key])

    def validate(run_id, new_data, options_json, request: gr.Request):
        """One of your finished runs on new labelled data (another site; same class names), not retrained:
        validation.json (docs/contracts.md: accuracy, macro_f1, per_class, calibration, conformal, familiarity,
        label_shift, internal, difference internal − external, each with its interval) and
        validation_predictions.csv (one row per new example). options_json (optional): {"recalibrate": true,
        "site": "name", "seed": 0} also refits the temperature, prediction-set thresholds and decision threshold
        on a random half of the new data, checks them on the other half, and saves a new, linked run of yours:
        the answer's "recalibration" holds its run_id (download it with /download), parent_run_id, site, and
        the before / after numbers with their sentence."""
        if not new_data:
            raise gr.Error("Upload the new labelled data (a zip of class folders or a table).", print_exception=False)
        try:
            options = _options(options_json)
            report = lab.validate(lab.owner(request), (run_id or "").strip(), new_data, Path(new_data).name,
                                  recalibrate=bool(options.get("recalibrate")), site=str(options.get("site") or ""),
                                  seed=int(options.get("seed") or 0))
        except Exception as exc:
            raise gr.Error(user_message(exc, "validating on the new data"), print_exception=False) from None
        files = report.pop("files", {})
        if report.get("recalibration"):
            report["recalibration"].pop("files", None)   # server paths: the new run downloads through /download
        return report, files.get("validation_predictions.csv")

    def predict_batch(run_id, inputs, request: gr.Request):
        """Score unlabelled inputs (a zip of images in any folders, or a table of texts or image paths) with one
        of your finished runs: {"n", "n_flagged", "warnings"} and predictions.csv (item, predicted, p_<class>…,
        prediction_set, decision where the run has an operating point, unlike_training_data)."""
        if not inputs:
            raise gr.Error("Upload the inputs to score (a zip of images or a table).", print_exception=False)
        try:
            written = lab.score_batch(lab.owner(request), (run_id or "").strip(), inputs, Path(inputs).name)
        except Exception as exc:
            raise gr.Error(user_message(exc, "scoring the inputs"), print_exception=False) from None
        files = written.pop("files", {})
        return {k: written.get(k) for k in ("n", "n_flagged", "warnings")}, files.get("predictions.csv")

    def suggest(pool, labels_csv, classes, model_id, n, request: gr.Request):
        """Which unlabelled items to label next: pool: a zip of images (any folders) or a table of texts;
        labels_csv: item,label for the items labelled so far (optional); classes: comma-separated names
        (optional); model_id: a shelf id (empty: the default for the pool's kind); n: how many (empty: 10).
        Returns [{"item", "score", "reason", "guess"}] best first, items of the pool not labelled yet; guess is
        null until two classes have 2 labels each."""
        if not pool:
            raise gr.Error("Upload the unlabelled pool (a zip of images or a table of texts).", print_exception=False)
        names = [c.strip() for c in (classes or "").split(",") if c.strip()]
        try:
            answer = lab.labelling.suggest_upload(lab.owner(request), pool, labels_csv or None, names,
                                                  n=int(n or 10), model_id=(model_id or "").strip() or None)
        except Exception as exc:
            raise gr.Error(user_message(exc, "choosing what to label next"), print_exception=False) from None
        return [{k: row.get(k) for k in ("item", "score", "reason", "guess")} for row in answer["suggestions"]]

    trigger.click(suggest, [l_pool, l_labels, l_classes, l_model, l_n], l_out, api_name="suggest",
                  concurrency_limit=2, concurrency_id="suggest")
    trigger.click(train, [a_model, a_data, a_strategy, a_epochs, a_options], [a_status, a_metrics, a_run_id],
                  api_name="train", concurrency_limit=None, show_progress="hidden")
    trigger.click(predict, [p_run, p_image, p_text], p_out, api_name="predict", concurrency_limit=2,
                  concurrency_id="predict")
    trigger.click(runs, None, r_out, api_name="runs", concurrency_limit=None)
    trigger.click(stop, p_run, s_out, api_name="stop", concurrency_limit=None)
    trigger.click(download, [p_run, d_what], d_file, api_name="download", concurrency_limit=2)
    trigger.click(validate, [p_run, v_data, v_options], [v_out, v_file], api_name="validate", concurrency_limit=2,
                  concurrency_id="new-data")
    trigger.click(predict_batch, [p_run, v_data], [v_out, v_file], api_name="predict_batch", concurrency_limit=2,
                  concurrency_id="new-data")
    return {}


def plain_text(markup: str) -> str:
    """An API answer is plain text: the page's markup (warning boxes, bold) removed."""
    text = re.sub(r"<[^>]+>", "", markup or "").replace("**", "").replace("⚠️", "")
    return " ".join(html.unescape(text).split())


def _options(options_json) -> dict:
    """An endpoint's optional JSON object of options ({} when empty)."""
    if not options_json or not str(options_json).strip():
        return {}
    try:
        options = json.loads(options_json)
    except ValueError:
        raise UserError("options_json is not valid JSON.") from None
    if not isinstance(options, dict):
        raise UserError("options_json must be a JSON object, e.g. {\"recalibrate\": true, \"site\": \"B\"}.")
    return options


def _submit(lab, owner, model_id, dataset, strategy, epochs, options_json, address=None):
    from tl_ui.core.catalog import get_model

    options = {}
    if options_json and str(options_json).strip():
        try:
            options = json.loads(options_json)
        except ValueError:
            raise UserError("options_json is not valid JSON.") from None
        if not isinstance(options, dict):
            raise UserError("options_json must be a JSON object, e.g. {\"max_examples\": 100}.")
    if options.get("continue_from"):   # "train N more epochs" on a finished run of yours: its recipe and data
        return lab.continue_run(owner, str(options["continue_from"]), epochs or 5, address=address)
    model_id = (model_id or "").strip() or "efficientnet_lite0"
    options = {**options, "strategy": (strategy or "").strip() or options.get("strategy"), "epochs": epochs or None}
    columns = {k: options.pop(k, None) for k in ("text_column", "label_column", "label_columns", "label_separator")}
    if options.get("group_column"):
        columns["group_column"] = options["group_column"]
    if dataset:
        outcome = lab.load_data(owner, Path(dataset), Path(dataset).name, **columns)
    else:
        outcome = lab.load_sample(owner, get_model(model_id).modality)
    if outcome.error:
        raise UserError(outcome.error)
    return lab.start_run(owner, outcome.dataset, outcome.data_path, model_id, {**options, **columns},
                         address=address)


def _final_metrics(job, position_at_submit: int) -> dict:
    from tl_ui.service.runs import run_metrics

    metrics = run_metrics(job.run_dir)
    metrics = {k: v for k, v in metrics.items() if k != "mistakes"}
    metrics.update({
        "state": job.state, "message": job.message, "run_id": job.id,
        "submitted": job.submitted, "started": job.started, "ended": job.ended,
        "queue_position_at_submit": position_at_submit, "seq": job.seq,
    })
    if job.state == RunState.FAILED and not metrics.get("message"):
        failed = [e for e in job.events if e.get("kind") == RunFailed.kind]
        metrics["message"] = failed[-1].get("message", "") if failed else ""
    return metrics
