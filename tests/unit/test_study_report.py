"""The study report (issue 35) on run folders made without training (tests/helpers/report_fixtures.py: the
engine's own metric builders on synthetic logits, issue 33's operating-point blocks, real files):
every printed number is its file's, the TRIPOD+AI checklist lists every item once, sections say
"not measured" when their data are missing, the PDF opens with its text, the HTML has no axe
violations, and the report never imports torch.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.helpers.report_checks import check_report_numbers, checklist_items, read_report
from tests.helpers.report_fixtures import report_runs, single_label_run

from tl_ui.study_report import ReportError, report_html
from tl_ui.study_report.checklist import ITEMS, SECTIONS
from tl_ui.study_report.quote import format_value, pointer, resolve

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return report_runs(tmp_path_factory.mktemp("report-runs"))


# -- the numbers ---------------------------------------------------------------------------------

def test_formatting_reads_decimals_as_written_and_rounds_interval_ends_outwards():
    assert format_value(0.75, "percent") == "75.0%"
    assert format_value(0.29, "percent_low") == "29.0%"        # not 28.9% (0.29 * 100 in binary is 28.999...)
    assert format_value(0.6277, "percent_low") == "62.7%" and format_value(0.8422, "percent_high") == "84.3%"
    assert format_value(0.95, "level") == "95%" and format_value(0.975, "level") == "97.5%"
    assert format_value(0.0667, "signed_points") == "+6.7" and format_value(-0.0833, "signed_points_low") == "-8.4"
    assert format_value(0.0, "signed_points") == "0.0"
    assert format_value(3383818, "count") == "3,383,818"
    assert format_value(0.93456, "decimal_high") == "0.935" and format_value(0.93456, "decimal_low") == "0.934"
    assert format_value(None, "percent") == "not recorded"
    assert resolve({"per_class": {"a/b": [1, 2]}}, pointer("per_class", "a/b", 1)) == 2


@pytest.mark.parametrize("which", ["binary", "three", "multilabel"])
def test_every_number_in_the_report_is_the_run_folders(runs, which):
    run = runs[which]
    page = report_html(run.path)
    checked = check_report_numbers(page, {run.id: run.path})
    assert checked["numbers"] > 100 and checked["sentences"] >= 5
    assert {"metrics.json", "run.json", "data"} <= checked["sources"]


def test_the_headline_numbers_are_printed(runs):
    """The check above finds no stray digit; here: the numbers a reader looks for are there at all."""
    run = runs["binary"]
    metrics = json.loads(run.metrics_json.read_text())
    quotes = {(q["src"], q["ptr"]) for q in read_report(report_html(run.path)).quotes}
    for ptr in ("/accuracy", "/accuracy_ci/0", "/accuracy_ci/1", "/macro_f1", "/n_val", "/n_train",
                "/calibration/ece_after", "/conformal/coverage", "/roc/auroc", "/roc/auroc_ci/0",
                "/operating_point/sensitivity", "/operating_point/specificity_ci/1", "/operating_point/ppv",
                "/pretraining_gain/accuracy", "/scratch_accuracy", "/cross_validation/accuracy",
                "/groups/by_group/north/accuracy", "/decision_curve/net_benefit/9"):
        assert ("metrics.json", ptr) in quotes, f"{ptr} ({resolve(metrics, ptr)}) is not in the report"


def test_a_changed_number_or_a_stray_digit_is_caught(runs):
    run = runs["binary"]
    page = report_html(run.path)
    accuracy = format_value(json.loads(run.metrics_json.read_text())["accuracy"], "percent")
    marker = f'data-ptr="/accuracy" data-style="percent">{accuracy}</span>'
    assert marker in page
    with pytest.raises(AssertionError, match="not their files"):
        check_report_numbers(page.replace(marker, marker.replace(accuracy, "99.9%"), 1), {run.id: run.path})
    with pytest.raises(AssertionError, match="digits printed outside"):
        check_report_numbers(page.replace("<h2 id=\"limitations-title\">Limitations",
                                          "<h2 id=\"limitations-title\">Limitations of 7 kinds", 1),
                             {run.id: run.path})


def test_compared_runs_are_quoted_from_their_own_files(runs):
    main, other = runs["binary"], runs["three"]
    page = report_html(main.path, compare=[other.path])
    check_report_numbers(page, {main.id: main.path, other.id: other.path})
    assert 'id="table-compare"' in page


# -- the structure --------------------------------------------------------------------------------

def test_the_checklist_lists_every_tripod_ai_item_exactly_once(runs):
    ids = [item for item, *_ in ITEMS]
    assert len(ids) == 52 and len(set(ids)) == 52
    assert {int("".join(ch for ch in i if ch.isdigit())) for i in ids} == set(range(1, 28))   # 27 main items
    for run in runs.values():
        assert checklist_items(report_html(run.path)) == ids


def test_sections_in_order_with_headings_that_do_not_skip_levels(runs):
    page = report_html(runs["binary"].path)
    positions = [page.index(f'<section id="{anchor}"') for anchor, _ in SECTIONS]
    assert positions == sorted(positions)
    import re

    levels = [int(h) for h in re.findall(r"<h([1-6])[ >]", page)]
    assert levels[0] == 1 and levels.count(1) == 1
    assert all(b - a <= 1 for a, b in zip(levels, levels[1:])), levels
    assert '<html lang="en">' in page


def _section(page: str, anchor: str) -> str:
    start = page.index(f'<section id="{anchor}"')
    return page[start:page.index("</section>", start)]


def test_a_section_without_its_data_says_not_measured(runs):
    page = report_html(runs["three"].path)
    for anchor in ("subgroups", "pretraining", "explanations"):
        assert "Not measured in this run" in _section(page, anchor), anchor
    assert "No positive class was named" in _section(page, "operating-point")
    assert "No external validation yet" in _section(page, "external-validation")
    full = report_html(runs["binary"].path)
    for anchor in ("subgroups", "pretraining", "operating-point", "calibration", "prediction-sets"):
        assert "Not measured in this run" not in _section(full, anchor), anchor
    assert "figure-roc" in full and "figure-decision" in full and "figure-groups" in full


def test_multilabel_report_has_labels_not_calibration_or_sets(runs):
    page = report_html(runs["multilabel"].path)
    assert "figure-ml-labels" in page and "table-ml-counts" in page
    assert "Not applicable to a multi-label run" in _section(page, "prediction-sets")
    assert "multi-label classification model" in page


def test_figures_have_text_alternatives_and_tables_have_headers(runs):
    import re

    page = report_html(runs["binary"].path)
    svgs = re.findall(r"<svg .*?</svg>", page, flags=re.S)
    assert len(svgs) >= 5
    for drawing in svgs:
        assert 'role="img"' in drawing and "<title id=" in drawing and "<desc id=" in drawing
    for block in re.findall(r'<div class="figure-with-table".*?</figure>\s*(?:<div class="table-wrap beside">)?',
                            page, flags=re.S):
        assert "<figcaption>" in block
    for table in re.findall(r"<table .*?</table>", page, flags=re.S):
        assert "<caption" in table and '<th scope="col">' in table


def test_a_missing_data_file_is_said_and_the_rest_still_reported(tmp_path):
    run = single_label_run(tmp_path / "gone", groups=False, scratch=False, cross_validation=False)
    data = Path(json.loads(run.run_json.read_text())["data_path"])
    data.unlink()
    page = report_html(run.path)
    assert "no longer where the run found it" in page
    checked = check_report_numbers(page, {run.id: run.path})
    assert "data" not in checked["sources"]


def test_a_run_without_results_says_why(tmp_path):
    from tl_ui.core.runfolder import RUNNING, RunFolder

    run = RunFolder(tmp_path / "busy").create()
    run.set_status(RUNNING)
    with pytest.raises(ReportError, match="still training"):
        report_html(run.path)
    with pytest.raises(ReportError, match="no run folder"):
        report_html(tmp_path / "nowhere")


# -- files: service, CLI, PDF ----------------------------------------------------------------------

def test_the_service_writes_into_the_run_folder_and_rewrites_only_when_a_source_changes(runs):
    from tl_ui.service.report import write_run_report

    run = runs["three"]
    written = write_run_report(run.path, formats=("html",))
    assert written["html"] == run.report_html and run.report_html.is_file()
    made = run.report_html.stat().st_mtime_ns
    time.sleep(0.02)
    assert write_run_report(run.path, formats=("html",))["html"] == run.report_html
    assert run.report_html.stat().st_mtime_ns == made, "an up-to-date report is reused"
    os.utime(run.metrics_json)   # metrics.json changed (e.g. the scratch comparison was added)
    write_run_report(run.path, formats=("html",))
    assert run.report_html.stat().st_mtime_ns > made
    assert not [p for p in run.report_dir.iterdir() if p.name.startswith(".")], "no temporary file left"


@pytest.mark.parametrize("name", ["digits", "digits-scratch", "lora", "mfd", "reviews"])
def test_run_folders_written_before_the_report_existed_still_report_truthfully(name):
    """tests/data/run_folders_v0: metrics.json without the newer blocks (no `fit`, no ECE ranges, ...)."""
    folder = REPO / "tests" / "data" / "run_folders_v0" / name
    page = report_html(folder)
    assert check_report_numbers(page, {name: folder})["numbers"] > 50
    assert checklist_items(page) == [item for item, *_ in ITEMS]


def test_dicom_runs_say_which_header_fields_were_read_and_that_no_identifier_was_kept(tmp_path):
    from tl_ui.contracts import ExportManifest

    run = single_label_run(tmp_path / "scans", groups=False, scratch=False, cross_validation=False, positive=None)
    manifest_path = run.model_dir / "transfer_lab.json"
    manifest = json.loads(manifest_path.read_text())
    # what tl_ui.data.images.image_reading_note records for a zip of DICOM files (tests/integration/test_dicom_run.py)
    manifest.update(modality="image", image_size=224, image_reading={
        "dicom": True, "n_dicom": 12, "window": "lung", "window_values": [-600, 1500], "n_multiframe": 0,
        "n_auto_window": 0, "n_high_bit_depth": 0})
    manifest_path.write_text(json.dumps(ExportManifest.model_validate(manifest).to_dict()))
    page = report_html(run.path)
    data = " ".join(_section(page, "data").split())
    assert "Window Center" in data and "No patient identifier, name, date or other header field is kept" in data
    assert 'data-ptr="/image_reading/n_dicom"' in data
    check_report_numbers(page, {run.id: run.path})


def test_labels_given_in_transfer_lab_are_said_with_their_provenance(tmp_path):
    """Issue 41: run.json's extra.labels_provenance becomes a limitation, every number quoted from run.json."""
    run = single_label_run(tmp_path / "labelled")
    config = json.loads(run.run_json.read_text())
    config["extra"] = {**config.get("extra", {}), "labels_provenance": {
        "source": "labelled in Transfer Lab", "pool": "scans.zip", "n_labels": 260, "n_not_sure": 3,
        "classes": {"benign": 130, "malignant": 130}, "first_labelled_at": "2026-12-07T01:00:00Z",
        "last_labelled_at": "2026-12-07T02:00:00Z", "labelled_by": ["ana"], "suggested_by": "efficientnet_lite0",
        "labels_sha256": "0" * 64}}
    run.run_json.write_text(json.dumps(config))
    page = report_html(run.path)
    assert "The labels were given in Transfer Lab" in page and "not a random sample of the pool" in page
    assert "scans.zip" in page and "2026-12-07T01:00:00Z" in page and "ana" in page
    check_report_numbers(page, {run.id: run.path})
