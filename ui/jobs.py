"""Jobs tab: queue many images (files or a ZIP), watch the queue, download the report and
a ZIP of the results. The work happens in the queue's workers (one runs inside the app)."""

from __future__ import annotations

import functools
import uuid

import gradio as gr
import pandas as pd

from jobs.report import export_zip, write_report
from jobs.storage import Storage
from jobs.store import JobStore
from jobs.submit import check_task, submit_uploads, uploads_from_files
from pipelines.errors import RestorationError
from pipelines.registry import MODELS
from ui import common

COLUMNS = ["id", "file", "task", "model", "status", "attempts", "runtime_s", "worker", "error"]
TABLE_ROWS = 200
TASK_CHOICES = [("Super-resolution", "sr"), ("Anime / 2D", "anime"), ("Colorize", "colorize")]


@functools.cache
def _queue() -> tuple[JobStore, Storage]:
    """The store and storage named by the environment (opened once per process)."""
    return JobStore(), Storage()


def _store() -> JobStore:
    try:
        return _queue()[0]
    except RestorationError as error:
        raise gr.Error(str(error)) from None


def _ids(text: str) -> list[int] | None:
    parts = [part.strip() for part in (text or "").split(",") if part.strip()]
    if not parts:
        return None
    if not all(part.isdigit() for part in parts):
        raise gr.Error(f"Job ids are whole numbers separated by commas, not {text!r}.")
    return [int(part) for part in parts]


def job_table() -> pd.DataFrame:
    """The newest jobs, newest first, with each failure's reason."""
    rows = [
        [
            job["id"],
            job["input_name"],
            job["task"],
            job["model_id"],
            job["status"],
            job["attempts"],
            None if job["runtime_s"] is None else round(job["runtime_s"], 3),
            job["worker_id"] or "",
            job["error"] or "",
        ]
        for job in _store().jobs(limit=TABLE_ROWS, newest_first=True)
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def queue_summary() -> str:
    counts = _store().counts()
    return " · ".join(f"**{n}** {status}" for status, n in counts.items())


def refresh() -> tuple[str, pd.DataFrame]:
    """Counts by status and the job table."""
    return queue_summary(), job_table()


def submit_jobs(
    files: list[str] | None,
    references: list[str] | None,
    task: str,
    model: str,
) -> tuple[str, str, pd.DataFrame]:
    """Queue one job per image (files, or images inside ZIPs); references matched by name
    give PSNR/SSIM. Returns (what was queued, counts, the job table)."""
    if not files:
        raise gr.Error("Upload images or a ZIP of images first.")
    store, storage = _queue()
    try:
        check_task(task, model)
        uploads = uploads_from_files(files, reference_files=references or [])
        ids = submit_uploads(store, storage, task, model, uploads)
    except RestorationError as error:
        raise gr.Error(str(error)) from None
    note = f"Queued {len(ids)} jobs (ids {ids[0]}–{ids[-1]}) with {model}."
    return note, *refresh()


def download_report(job_ids: str = "") -> str:
    """``benchmark_report.json`` for the given job ids (comma-separated; empty = every job)."""
    folder = common.output_root() / f"jobs-{uuid.uuid4().hex}"
    try:
        return str(write_report(_store(), folder / "benchmark_report.json", _ids(job_ids)))
    except RestorationError as error:
        raise gr.Error(str(error)) from None


def download_results(job_ids: str = "") -> str:
    """A ZIP of the restored images and their report: the given ids, or every completed job."""
    store, storage = _queue()
    ids = _ids(job_ids)
    out = common.output_root() / f"jobs-{uuid.uuid4().hex}" / "results.zip"
    try:
        path = export_zip(store, storage, out, ids=ids, status=None if ids else "completed")
    except RestorationError as error:
        raise gr.Error(str(error)) from None
    return str(path)


def _models_for(task: str) -> dict:
    return gr.update(choices=common.model_choices(task), value=MODELS.default_for(task).id)


def build() -> None:
    """Lay out the tab and wire it."""
    with gr.Row():
        with gr.Column():
            files = gr.File(
                label="Images, or a ZIP of images",
                file_count="multiple",
                file_types=[".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".zip"],
            )
            references = gr.File(
                label="References (optional, same file names): PSNR / SSIM",
                file_count="multiple",
                file_types=["image"],
            )
            task = gr.Dropdown(TASK_CHOICES, value="sr", label="Task")
            model = gr.Dropdown(
                common.model_choices("sr"),
                value=MODELS.default_for("sr").id,
                label="Model",
                allow_custom_value=True,
            )
            submit = gr.Button("Queue jobs", variant="primary")
            submitted = gr.Markdown()
        with gr.Column():
            summary = gr.Markdown()
            job_ids = gr.Textbox(
                label="Job ids for the downloads", placeholder="e.g. 3,4,9 (empty: all completed)"
            )
            with gr.Row():
                report_button = gr.Button("Report (JSON)")
                export_button = gr.Button("Results (ZIP)")
            report_file = gr.File(label="benchmark_report.json")
            export_file = gr.File(label="results.zip")
    table = gr.Dataframe(
        headers=COLUMNS, label="Jobs (newest first; refreshes every 3 s)", interactive=False
    )
    refresh_button = gr.Button("Refresh", size="sm")
    gr.Markdown(
        "Jobs run in the background: the app runs one worker; more can join from any machine "
        "that shares the database and storage (`python -m jobs worker`)."
    )
    task.change(_models_for, task, model, api_visibility="private", queue=False)
    submit.click(
        submit_jobs,
        [files, references, task, model],
        [submitted, summary, table],
        api_name="jobs_submit",
    )
    refresh_button.click(refresh, None, [summary, table], api_name="jobs_status")
    gr.Timer(3).tick(refresh, None, [summary, table], api_visibility="private", queue=False)
    report_button.click(download_report, job_ids, report_file, api_name="jobs_report")
    export_button.click(download_results, job_ids, export_file, api_name="jobs_export")
