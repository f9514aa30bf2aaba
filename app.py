"""Restoration Lab: the Gradio app (also the Hugging Face Spaces entry point).

Run ``python app.py [--host HOST] [--port PORT]``; Gradio's GRADIO_SERVER_NAME and
GRADIO_SERVER_PORT are honoured too. ``demo`` is built at import so tests and Spaces
can use it; the tabs live in ``ui/``.
"""

from __future__ import annotations

import argparse
import os
from functools import partial

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr

from ui import (
    anime,
    colorize,
    common,
    compare,
    evaluation,
    inpaint,
    jobs,
    limits,
    models,
    old_photo,
    super_resolution,
)

TITLE = "Restoration Lab"
# Robustness settings (README "Limits and settings"): a burst waits in a bounded queue and
# is refused with "Queue is full" beyond it, instead of piling work up in memory. The
# per-request time limit (RESTORATION_REQUEST_TIMEOUT) and output pruning are in ui/limits.
QUEUE_SIZE = int(os.environ.get("RESTORATION_QUEUE_SIZE", "32"))
MAX_UPLOAD = os.environ.get("RESTORATION_MAX_UPLOAD", "50mb")


def build_demo() -> gr.Blocks:
    with gr.Blocks(title=TITLE, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            f"# {TITLE}\nUpscale and restore images with real models; every result can be "
            "downloaded at full resolution. The same functions are available from Python "
            "through `gradio_client` (see *Use via API* below) and the command line."
        )
        with gr.Tab("Super-resolution", id="sr") as sr_tab:
            sr_menu = super_resolution.build()
        with gr.Tab("Old photos", id="old_photo"):
            old_photo.build()
        with gr.Tab("Anime / 2D", id="anime") as anime_tab:
            anime_menu = anime.build()
        with gr.Tab("Inpainting", id="inpaint") as inpaint_tab:
            inpaint_menu = inpaint.build()
        with gr.Tab("Colorize", id="colorize") as colorize_tab:
            colorize_menu = colorize.build()
        with gr.Tab("Jobs", id="jobs"):
            jobs.build()
        with gr.Tab("Compare", id="compare") as compare_tab:
            compare.build(compare_tab)
        with gr.Tab("Evaluation", id="evaluation") as evaluation_tab:
            show_stored_leaderboard = evaluation.build(evaluation_tab)
        menus = [
            (sr_tab, sr_menu, "sr"),
            (anime_tab, anime_menu, "anime"),
            (inpaint_tab, inpaint_menu, "inpaint"),
            (colorize_tab, colorize_menu, "colorize"),
        ]
        with gr.Tab("Models", id="models"):
            models.build([(menu, task) for _, menu, task in menus])
        for tab, menu, task in menus:
            # Model states change while the app runs (weights placed or downloaded).
            tab.select(
                partial(common.refreshed_menu, task),
                menu,
                menu,
                api_visibility="private",
                queue=False,
            )
        show_stored_leaderboard(demo)
    # Heavy model work shares one slot: two models at once would only fight over 2 cores.
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
    return demo


demo = build_demo()


def main() -> None:
    parser = argparse.ArgumentParser(description=TITLE)
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument(
        "--no-worker",
        action="store_true",
        default=os.environ.get("RESTORATION_JOBS_WORKER", "1").strip() == "0",
        help="run no job-queue worker in this process (also RESTORATION_JOBS_WORKER=0)",
    )
    args = parser.parse_args()
    limits.check_settings()
    limits.start_output_pruner(common.output_root())
    if not args.no_worker:
        from jobs.worker import start_background_worker

        start_background_worker()  # the Jobs tab works with this one command
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        max_file_size=MAX_UPLOAD,
        allowed_paths=[str(common.output_root())],
    )


if __name__ == "__main__":
    main()
