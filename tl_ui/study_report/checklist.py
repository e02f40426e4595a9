"""The TRIPOD+AI checklist (Collins et al., BMJ 2024;385:e078378) and where this report answers each item.

The statement has 27 main items in 52 sub-items. Their numbering, topics and the sections they sit
in are as published; the `asks` column is a short paraphrase, not the statement's wording (read the
statement for that). Where the list comes from: docs/study-report.md, "The checklist".

Each item maps to exactly one row: the report section that answers it ("reported"), a section that
answers what Transfer Lab knows while the author adds the rest ("partly"), "not applicable" (with
why), "not measured" in this run, or "author": not available from Transfer Lab, the user must add it.
"""
from __future__ import annotations

from typing import Callable, Optional

from tl_ui.study_report.context import ChecklistRow, RunReport

# (item, statement section, topic, what it asks, in short)
ITEMS: tuple[tuple[str, str, str, str], ...] = (
    ("1", "Title", "Title", "Say the study develops or evaluates a multivariable prediction model; name the target population and the outcome predicted."),
    ("2", "Abstract", "Abstract", "A structured summary (see TRIPOD+AI for Abstracts)."),
    ("3a", "Introduction", "Background", "The healthcare context (diagnostic or prognostic) and why the model is developed or evaluated, with existing models."),
    ("3b", "Introduction", "Background", "The target population and the model's intended purpose in the care pathway, and its intended users."),
    ("3c", "Introduction", "Background", "Known health inequalities between sociodemographic groups."),
    ("4", "Introduction", "Objectives", "The study's objectives: development, evaluation, or both."),
    ("5a", "Methods", "Data", "Sources of the development and evaluation data, why they were used, how representative they are."),
    ("5b", "Methods", "Data", "Dates of the participant data: start and end of accrual, and end of follow-up."),
    ("6a", "Methods", "Participants", "The study setting, and the number and location of centres."),
    ("6b", "Methods", "Participants", "Eligibility criteria for participants."),
    ("6c", "Methods", "Participants", "Treatments received, and how they were handled, if relevant."),
    ("7", "Methods", "Data preparation", "Data pre-processing and quality checks, and whether they were alike across sociodemographic groups."),
    ("8a", "Methods", "Outcome", "The outcome predicted and its time horizon: how and when assessed, why chosen, consistent across groups."),
    ("8b", "Methods", "Outcome", "Qualifications and demographics of the outcome assessors, where assessment is subjective."),
    ("8c", "Methods", "Outcome", "Any blinding of the outcome assessment."),
    ("9a", "Methods", "Predictors", "How the initial predictors were chosen, and any pre-selection before modelling."),
    ("9b", "Methods", "Predictors", "Every predictor: how and when measured, and any blinding."),
    ("9c", "Methods", "Predictors", "Qualifications and demographics of the predictor assessors, where measurement is subjective."),
    ("10", "Methods", "Sample size", "How the study size was arrived at, separately for development and evaluation, and why it suffices."),
    ("11", "Methods", "Missing data", "How missing data were handled, and why any data were left out."),
    ("12a", "Methods", "Analytical methods", "How the data were used for development and evaluation, including any partitioning."),
    ("12b", "Methods", "Analytical methods", "How predictors were handled: functional form, rescaling, transformation, standardisation."),
    ("12c", "Methods", "Analytical methods", "The type of model, why, every model-building step including tuning, and the internal validation."),
    ("12d", "Methods", "Analytical methods", "How heterogeneity of parameters and performance across clusters (hospitals, countries) was handled."),
    ("12e", "Methods", "Analytical methods", "Every measure and plot of performance (discrimination, calibration, clinical utility) and why."),
    ("12f", "Methods", "Analytical methods", "Any model updating (for example recalibration) arising from the evaluation."),
    ("12g", "Methods", "Analytical methods", "For an evaluation: how the model's predictions were calculated (formula, code, object, API)."),
    ("13", "Methods", "Class imbalance", "Any class-imbalance methods, why and how, and any recalibration after them."),
    ("14", "Methods", "Fairness", "Approaches used to address model fairness, and why."),
    ("15", "Methods", "Model output", "The model's output (probabilities, classes) and how any classification thresholds were set."),
    ("16", "Methods", "Training versus evaluation", "Differences between development and evaluation data in setting, eligibility, outcome and predictors."),
    ("17", "Methods", "Ethical approval", "The ethics committee that approved the study, and the participants' consent or its waiver."),
    ("18a", "Open science", "Funding", "Sources of funding and the funders' role."),
    ("18b", "Open science", "Conflicts of interest", "Conflicts of interest and financial disclosures of all authors."),
    ("18c", "Open science", "Protocol", "Where the protocol can be read, or that there was none."),
    ("18d", "Open science", "Registration", "The study's registration (register and number), or that it was not registered."),
    ("18e", "Open science", "Data sharing", "Whether and how the study data are available."),
    ("18f", "Open science", "Code sharing", "Whether and how the analytical code is available."),
    ("19", "Patient and public involvement", "Patient and public involvement", "Any patient and public involvement in the study, or that there was none."),
    ("20a", "Results", "Participants", "The flow of participants, with the numbers with and without the outcome (a diagram helps)."),
    ("20b", "Results", "Participants", "Characteristics overall and per data source or setting (dates, key predictors, sample size, outcome events, missing data), and differences across demographic groups."),
    ("20c", "Results", "Participants", "For an evaluation: the distribution of important predictors compared with the development data."),
    ("21", "Results", "Model development", "The number of participants and outcome events in each analysis (development, tuning, evaluation)."),
    ("22", "Results", "Model specification", "The full model (formula, code, object, API) so that others can predict with it and evaluate it, and any restrictions on its use."),
    ("23a", "Results", "Model performance", "Performance estimates with confidence intervals, also for key subgroups; plots help."),
    ("23b", "Results", "Model performance", "Heterogeneity of performance across clusters, if examined."),
    ("24", "Results", "Model updating", "Results of any model updating: the updated model and its performance."),
    ("25", "Discussion", "Interpretation", "An overall interpretation of the results, including fairness, against the objectives and previous studies."),
    ("26", "Discussion", "Limitations", "The study's limitations (sample, size, overfitting, missing data) and their effect on bias, uncertainty and generalisability."),
    ("27a", "Discussion", "Usability of the model in the context of current care", "How poor-quality or missing input data should be assessed and handled in use."),
    ("27b", "Discussion", "Usability of the model in the context of current care", "Whether users interact with the input data or the model, and the expertise they need."),
    ("27c", "Discussion", "Usability of the model in the context of current care", "Next steps for research on the model's applicability and generalisability."),
)

REPORTED, PARTLY, AUTHOR, NOT_APPLICABLE, NOT_MEASURED = "reported", "partly", "author", "not applicable", "not measured"


# The report's sections, in order (anchor, title). Every one appears in every report; a section
# whose data the run lacks says so.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "Summary"),
    ("background", "Background and intended use"),
    ("data", "Data"),
    ("outcome", "Outcome: the labels"),
    ("inputs", "Inputs (predictors)"),
    ("sample-size", "Sample size and the three roles of the examples"),
    ("model", "The model and how it was trained"),
    ("performance", "Performance on the test examples"),
    ("calibration", "Calibration: can its confidence be taken at its word?"),
    ("operating-point", "From a score to a decision"),
    ("prediction-sets", "Prediction sets"),
    ("subgroups", "Subgroups"),
    ("pretraining", "What pretraining bought"),
    ("unfamiliar", "Inputs unlike the training data"),
    ("explanations", "Explanations"),
    ("compared-runs", "Other runs compared"),
    ("external-validation", "External validation"),
    ("limitations", "Limitations"),
    ("interpretation", "Interpretation"),
    ("usability", "Using the model"),
    ("reproduce", "How to reproduce the run and load the model"),
    ("declarations", "Declarations the author must add"),
    ("checklist", "TRIPOD+AI checklist"),
)
SECTION_TITLES = dict(SECTIONS)

Rule = Callable[[RunReport], tuple[str, Optional[str], str]]


def _at(status: str, where: Optional[str], note: str = "") -> Rule:
    return lambda run: (status, where, note)


def _groups(reported: str, note: str) -> Rule:
    def rule(run: RunReport):
        if run.has("groups"):
            return reported, "subgroups", note
        return NOT_MEASURED, "subgroups", "This run had no group column, so nothing was examined per group."
    return rule


def _external(note: str) -> Rule:
    def rule(run: RunReport):
        if run.has("validation"):
            return REPORTED, "external-validation", note
        return NOT_APPLICABLE, "external-validation", ("No external evaluation has been made of this model yet: "
                                                       "this report covers its development and internal evaluation.")
    return rule


def _imbalance(run: RunReport):
    if run.multilabel:
        return REPORTED, "model", "Positive examples of each label were weighted by how rare they are; no resampling."
    if run.r.get("/class_weighted"):
        return REPORTED, "model", "Each class's loss was weighted by how rare it is; no resampling."
    return REPORTED, "model", "No class-imbalance method was used (no weighting, no resampling)."


RULES: dict[str, Rule] = {
    "1": _at(PARTLY, "summary", "The title names the task and the outcome (the labels); the author adds the target population."),
    "2": _at(PARTLY, "summary", "A structured summary of what Transfer Lab measured; the author adds the context."),
    "3a": _at(AUTHOR, "background"),
    "3b": _at(AUTHOR, "background"),
    "3c": _at(AUTHOR, "background"),
    "4": _at(PARTLY, "background", "The objective Transfer Lab can state: development and internal evaluation of a classifier; the author adds the clinical question."),
    "5a": _at(PARTLY, "data", "The data file, its checksum and its counts; the author adds where the data come from, why, and how representative they are."),
    "5b": _at(PARTLY, "data", "When the run was made; the dates of the participants' data are the author's to add."),
    "6a": _at(AUTHOR, "data"),
    "6b": _at(PARTLY, "data", "What the data reader accepted and left out; the participants' eligibility criteria are the author's to add."),
    "6c": _at(AUTHOR, "data"),
    "7": _at(REPORTED, "data", "How the files were read and checked; the author adds whether collection was alike across groups."),
    "8a": _at(PARTLY, "outcome", "The labels as given in the data; how and when they were assessed is the author's to add."),
    "8b": _at(AUTHOR, "outcome"),
    "8c": _at(AUTHOR, "outcome"),
    "9a": _at(REPORTED, "inputs", "The whole image or text is the input; nothing was pre-selected."),
    "9b": _at(PARTLY, "inputs", "How each input is read; how the images or texts were acquired is the author's to add."),
    "9c": _at(AUTHOR, "inputs"),
    "10": _at(PARTLY, "sample-size", "The sizes used and what they allow (the intervals); no sample size was calculated in advance."),
    "11": _at(REPORTED, "data", "Files or rows that could not be read are refused or left out, with the reader's reasons."),
    "12a": _at(REPORTED, "sample-size"),
    "12b": _at(REPORTED, "inputs"),
    "12c": _at(REPORTED, "model"),
    "12d": _groups(REPORTED, "Performance is reported per group; no model parameter differs by group."),
    "12e": _at(REPORTED, "performance"),
    "12f": _external("Any updating after the external evaluation."),
    "12g": _external("How the external evaluation's predictions were made."),
    "13": _imbalance,
    "14": _groups(PARTLY, "Performance per group is measured and shown; no fairness intervention was applied."),
    "15": _at(REPORTED, "model"),
    "16": _external("Differences between the development and external data."),
    "17": _at(AUTHOR, "declarations"),
    "18a": _at(AUTHOR, "declarations"),
    "18b": _at(AUTHOR, "declarations"),
    "18c": _at(AUTHOR, "declarations"),
    "18d": _at(AUTHOR, "declarations"),
    "18e": _at(AUTHOR, "declarations", "The data file's checksum is in the report."),
    "18f": _at(PARTLY, "reproduce", "Transfer Lab's settings and replay command are given; where its code can be had is the author's to add."),
    "19": _at(AUTHOR, "declarations"),
    "20a": _at(REPORTED, "sample-size"),
    "20b": _at(PARTLY, "data", "Counts per class and per group; participants' characteristics (demographics, dates) are the author's to add."),
    "20c": _external("The external data compared with the development data."),
    "21": _at(REPORTED, "sample-size"),
    "22": _at(REPORTED, "reproduce"),
    "23a": _at(REPORTED, "performance"),
    "23b": _groups(REPORTED, "Performance per group, with intervals."),
    "24": _external("The updated model and its performance."),
    "25": _at(PARTLY, "interpretation", "What the numbers say; the comparison with the objectives and previous studies is the author's."),
    "26": _at(REPORTED, "limitations"),
    "27a": _at(REPORTED, "usability"),
    "27b": _at(PARTLY, "usability", "How a user runs the model; the expertise needed is the author's to judge."),
    "27c": _at(AUTHOR, "usability"),
}


def checklist(run: RunReport) -> list[ChecklistRow]:
    """One row per TRIPOD+AI sub-item, in the statement's order."""
    rows = []
    for item, section, topic, asks in ITEMS:
        status, where, note = RULES[item](run)
        rows.append(ChecklistRow(item=item, section=section, topic=topic, asks=asks, status=status, where=where,
                                 where_title=SECTION_TITLES.get(where) if where else None, note=note))
    return rows
