"""A local web page to sing a score: upload it (or pick an example), fix the lyrics, listen, download.

    python inference/webui.py --exp_name csd_visinger                      # http://127.0.0.1:7860
    python inference/webui.py --ckpt packed/csd_visinger --port 8000
    python inference/webui.py --exp_name a --exp_name b                    # the page offers both models
    python inference/webui.py --exp_name csd_visinger --host 0.0.0.0       # reachable from other machines
    python inference/webui.py --exp_name csd_visinger --ddsp_exp demo_ddsp # + a timbre-transfer tab (DDSP singer)
    python inference/webui.py --ddsp_exp demo_ddsp                         # the timbre-transfer tab alone
    python inference/webui.py --ckpt packed/demo_ddsp                      # the same: a DDSP singer goes to that tab

It listens on 127.0.0.1 unless `--host` says otherwise (the page has no login: bind it to another
address only on a network you trust). Nothing is fetched from the network: Gradio's analytics and
version check are off, its fonts are the ones it ships. Everything the server writes (uploads,
edited lyrics, renders) lies in one temporary folder, removed when the server stops (Ctrl-C or
SIGTERM). The page's work is `inference/webui_handlers.py`; this file lays out the page.
"""
from __future__ import annotations

import argparse
import html
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without PYTHONPATH

from config.errors import UserInputError, run_cli  # noqa: E402
from inference.devices import DEFAULT_DEVICE, DEVICE_HELP, check_device_name  # noqa: E402
from model_io.checkpoint_file import work_dir_for  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = REPO_ROOT / "data" / "examples"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
# Read by Gradio (some at import time) and by huggingface_hub, which Gradio imports: no telemetry,
# no version check, no hub look-ups.
OFFLINE_ENVIRONMENT = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
PAGE_CSS = """
#status .error { color: #b00020; font-weight: 600; }
#status .warning { color: #8a5a00; }
"""

logger = logging.getLogger("webui")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_name", action="append", default=[], help="experiment under --work_dir_root (repeat for several models)")
    parser.add_argument("--ckpt", action="append", type=Path, default=[], help="a checkpoint file or a packed model folder (repeatable)")
    parser.add_argument("--ddsp_exp", action="append", default=[], help="a DDSP singer experiment: adds the timbre-transfer tab (repeatable)")
    parser.add_argument("--ddsp_ckpt", action="append", type=Path, default=[], help="a DDSP singer checkpoint or pack (repeatable)")
    parser.add_argument("--work_dir_root", type=Path, default=None, help="where experiments live (default: $SVS_CHECKPOINTS_ROOT, else ./checkpoints)")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST}: this machine only; 0.0.0.0 = every interface)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument("--device", default=DEFAULT_DEVICE, help=DEVICE_HELP)
    parser.add_argument("--examples", type=Path, default=EXAMPLES_DIR, help="folder of example scores offered on the page (default: data/examples)")
    return parser


def model_sources(args: argparse.Namespace, ddsp: bool = False) -> dict[str, tuple[Path | None, Path | None]]:
    """Page name -> (experiment folder, checkpoint) for every model given, in order; names are unique.
    `ddsp`: the DDSP singers of the transfer tab (`--ddsp_exp`, `--ddsp_ckpt`) instead of the score singers."""
    sources: dict[str, tuple[Path | None, Path | None]] = {}
    given = [(name, (work_dir_for(name, args.work_dir_root), None)) for name in (args.ddsp_exp if ddsp else args.exp_name)]
    # A pack is named by its folder, a checkpoint file by its experiment and step: "csd_visinger/model_best".
    given += [(ckpt.name if ckpt.is_dir() else f"{ckpt.parent.name}/{ckpt.stem}", (None, ckpt)) for ckpt in (args.ddsp_ckpt if ddsp else args.ckpt)]
    for name, source in given:
        unique, number = name, 2
        while unique in sources:
            unique, number = f"{name} ({number})", number + 1
        sources[unique] = source
    if not sources and not ddsp and not (args.ddsp_exp or args.ddsp_ckpt):
        raise UserInputError("no model: pass --exp_name NAME or --ckpt PATH (or --ddsp_exp NAME for the timbre-transfer tab)")
    return sources


def example_scores(folder: Path) -> list[Path]:
    from inference.webui_handlers import SCORE_SUFFIXES

    return sorted(p for p in folder.iterdir() if p.suffix.lower() in SCORE_SUFFIXES) if folder.is_dir() else []


def status_html(message: str = "", kind: str = "info", extra: tuple[str, ...] = ()) -> str:
    """The status line under the controls: one escaped line (`kind`: info, error) plus warning lines."""
    lines = [f'<p class="{kind}">{html.escape(message)}</p>'] if message else []
    lines += [f'<p class="warning">warning: {html.escape(w)}</p>' for w in extra]
    return "\n".join(lines)


class PageHandlers:
    """The Gradio event handlers: plain values in, plain values out (tested without a browser).

    A `UserInputError` never escapes: it becomes the status line, and the server goes on.
    """

    def __init__(self, singing, examples: list[Path]) -> None:
        self.singing = singing
        self.examples = {path.name: path for path in examples}

    def open_upload(self, path: str | None) -> tuple[Any, list[list[object]], str]:
        """(view, table rows, status) for an uploaded file."""
        if not path:
            return None, [], status_html()
        return self._open(Path(path))

    def open_example(self, name: str | None) -> tuple[Any, list[list[object]], str]:
        if not name:
            return None, [], status_html()
        if name not in self.examples:
            return None, [], status_html(f"error: example {name!r} not found; pick one from the list", "error")
        return self._open(self.examples[name])

    def _open(self, path: Path) -> tuple[Any, list[list[object]], str]:
        try:
            view = self.singing.open_score(path)
        except UserInputError as error:
            return None, [], status_html(self.singing.page_message(error), "error")
        return view, view.rows(), status_html(view.summary(), extra=view.score.warnings)

    def check_lyrics(self, view, table) -> tuple[Any, list[list[object]], str]:
        """(view, rows, status) after taking the table's lyrics column; an error keeps the previous view."""
        if view is None:
            return None, [], status_html("error: no score yet; upload a score or pick an example", "error")
        try:
            view = self.singing.with_lyrics(view, lyrics_column(table))
        except UserInputError as error:
            return view, table_rows(table), status_html(self.singing.page_message(error), "error")
        return view, view.rows(), status_html(view.summary(), extra=view.score.warnings)

    def render(self, view, table, model: str, key_shift: float, noise_scale: float, speaker: Any) -> tuple[Any, ...]:
        """(view, rows, audio, wav file, plot, tuning text, status)."""
        from inference.webui_handlers import page_speaker

        nothing = (None, None, None, "")
        if view is None:
            return (None, [], *nothing, status_html("error: no score yet; upload a score or pick an example", "error"))
        try:
            view = self.singing.with_lyrics(view, lyrics_column(table))
            rendering = self.singing.render(view, model, key_shift=int(key_shift), noise_scale=float(noise_scale), speaker=page_speaker(speaker))
        except UserInputError as error:
            return (view, table_rows(table), *nothing, status_html(self.singing.page_message(error), "error"))
        wav = str(rendering.wav_path)
        status = status_html(f"sang {view.summary()} with {model}", extra=rendering.warnings)
        return (view, view.rows(), wav, wav, str(rendering.plot_path), rendering.summary(), status)

    def speaker_choices(self, model: str) -> dict[str, Any]:
        import gradio as gr

        from inference.webui_handlers import speaker_choices

        names = self.singing.speakers(model)
        return gr.update(choices=speaker_choices(names), value=names[0], visible=len(names) > 1)


def table_rows(table) -> list[list[object]]:
    """The Dataframe's value as rows (Gradio hands a pandas DataFrame, a dict or a list, depending on version)."""
    if table is None:
        return []
    if hasattr(table, "values") and hasattr(table, "columns"):
        return table.values.tolist()
    if isinstance(table, dict):
        return [list(row) for row in table.get("data", [])]
    return [list(row) for row in table]


def lyrics_column(table) -> list[str]:
    from inference.webui_handlers import LYRICS_COLUMN

    return ["" if row[LYRICS_COLUMN] is None else str(row[LYRICS_COLUMN]) for row in table_rows(table)]


def build_page(handlers: PageHandlers | None, transfer=None):
    """The Gradio Blocks of the page (not launched): the score tab (`handlers`), and the timbre-transfer tab
    when `transfer` (an `inference.webui_transfer.TransferTab`) is given."""
    import gradio as gr

    with gr.Blocks(title="Korean VISinger", analytics_enabled=False, delete_cache=(900, 3600)) as page:
        if transfer is None:
            _score_tab(handlers)
        else:
            from inference.webui_transfer import build_transfer_tab

            with gr.Tabs():
                if handlers is not None:
                    with gr.Tab("Sing a score", elem_id="score-tab"):
                        _score_tab(handlers)
                with gr.Tab("Timbre transfer", elem_id="transfer-tab"):
                    build_transfer_tab(transfer)
    return page


def _score_tab(handlers: PageHandlers) -> None:
    """The score singer's components and events, inside the caller's Blocks (or Tab) context."""
    import gradio as gr

    from inference.webui_handlers import DEFAULT_NOISE_SCALE, SCORE_SUFFIXES, TABLE_HEADERS, speaker_choices

    singing = handlers.singing
    names = singing.model_names
    speakers = singing.speakers(names[0])
    gr.Markdown("## Korean VISinger: sing a score\nUpload a score whose notes carry Hangul lyrics (one syllable per note), or pick an example; edit a phrase's lyrics in the table; render.")
    view = gr.State(None)
    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(label=f"score ({', '.join(SCORE_SUFFIXES)})", file_types=list(SCORE_SUFFIXES), type="filepath", elem_id="score-upload")
            example = gr.Dropdown(choices=list(handlers.examples), value=None, label="or an example (data/examples/)", elem_id="example")
            model = gr.Dropdown(choices=names, value=names[0], label="model", visible=len(names) > 1, elem_id="model")
            speaker = gr.Dropdown(
                choices=speaker_choices(speakers), value=speakers[0], label="speaker (a name, an id, or type a mix such as a:0.7,b:0.3)",
                allow_custom_value=True, visible=len(speakers) > 1, elem_id="speaker",
            )  # fmt: skip
            key_shift = gr.Slider(-12, 12, value=0, step=1, label="key shift (semitones)", elem_id="key-shift")
            noise_scale = gr.Slider(0.0, 1.5, value=DEFAULT_NOISE_SCALE, step=0.01, label="noise scale (0 = the prior mean)", elem_id="noise-scale")
            with gr.Row():
                check = gr.Button("Check lyrics", elem_id="check-lyrics")
                render = gr.Button("Render", variant="primary", elem_id="render")
        with gr.Column(scale=2):
            status = gr.HTML(status_html("upload a score or pick an example"), elem_id="status")
            table = gr.Dataframe(
                headers=list(TABLE_HEADERS), datatype=["number", "str", "number", "str", "str"], value=[], type="array",
                interactive=True, static_columns=[0, 1, 2, 3], label="phrases (edit the lyrics column: one syllable per note)",
                elem_id="phrases", wrap=True,
            )  # fmt: skip
    with gr.Row():
        # The browser's own player (an <audio> element), not the waveform view: plain, and what users expect.
        audio = gr.Audio(
            type="filepath", interactive=False, label="sung", elem_id="sung-audio",
            waveform_options=gr.WaveformOptions(show_recording_waveform=False),
        )  # fmt: skip
        wav_file = gr.File(label="download the wav", interactive=False, elem_id="sung-wav")
    tuning = gr.Textbox(label="render", interactive=False, elem_id="tuning")
    plot = gr.Image(type="filepath", interactive=False, label="score piano roll with F0, and the mel spectrogram", elem_id="plot")

    upload.upload(handlers.open_upload, inputs=upload, outputs=[view, table, status])
    example.change(handlers.open_example, inputs=example, outputs=[view, table, status])
    check.click(handlers.check_lyrics, inputs=[view, table], outputs=[view, table, status])
    render.click(
        handlers.render, inputs=[view, table, model, key_shift, noise_scale, speaker],
        outputs=[view, table, audio, wav_file, plot, tuning, status],
    )  # fmt: skip
    model.change(handlers.speaker_choices, inputs=model, outputs=speaker)


def serve(args: argparse.Namespace, work_dir: Path, ready: threading.Event | None = None, stop: threading.Event | None = None) -> None:
    """Load the models, launch the page on `args.host:args.port`, and block until `stop` (or a signal)."""
    from inference.synthesis import limit_onednn_primitive_cache

    limit_onednn_primitive_cache()
    from inference.api import Singer
    from inference.webui_handlers import WebSinging
    from inference.webui_transfer import TransferTab
    from preprocessor.text.korean import KoreanFrontend

    check_device_name(args.device)
    if not 0 < args.port < 65536:
        raise UserInputError(f"--port {args.port}: use a port between 1 and 65535")
    frontend = KoreanFrontend()
    loaded = {name: Singer.load(exp_dir or ckpt, device=args.device, frontend=frontend) for name, (exp_dir, ckpt) in model_sources(args).items()}
    voices = {name: Singer.load(exp_dir or ckpt, device=args.device) for name, (exp_dir, ckpt) in model_sources(args, ddsp=True).items()}
    for name, singer in voices.items():
        if not singer.transfers:
            raise UserInputError(f"--ddsp_exp / --ddsp_ckpt {name}: {singer.source} sings scores, not recordings; pass it with --exp_name / --ckpt")
    # A DDSP singer given with --exp_name / --ckpt goes to the transfer tab too: what a model does is in its file.
    models = {name: singer for name, singer in loaded.items() if not singer.transfers}
    voices.update({name: singer for name, singer in loaded.items() if singer.transfers and name not in voices})
    import gradio as gr  # after OFFLINE_ENVIRONMENT and GRADIO_TEMP_DIR are set

    handlers = None
    if models:
        singing = WebSinging(models, work_dir, frontend=frontend)
        singing.warm_up()
        handlers = PageHandlers(singing, example_scores(args.examples))
    transfer = TransferTab(voices, work_dir / "transfer") if voices else None
    page = build_page(handlers, transfer)
    page.queue(default_concurrency_limit=2, max_size=32)
    page.launch(
        server_name=args.host, server_port=args.port, prevent_thread_lock=True, inbrowser=False, share=False,
        show_error=False, ssr_mode=False, pwa=False, mcp_server=False, enable_monitoring=False, run_history=False,
        max_file_size="20mb", allowed_paths=[str(work_dir)], theme=gr.themes.Default(), css=PAGE_CSS, quiet=True,
        footer_links=["settings"],
    )  # fmt: skip
    print(f"serving on http://{args.host}:{args.port} (Ctrl-C stops; temporary files in {work_dir})", flush=True)
    if ready is not None:
        ready.set()
    stop = stop or threading.Event()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        page.close()


def main() -> int:
    args = build_parser().parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    model_sources(args)  # no model given: the one-line error before anything loads
    for key, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(key, value)
    work_dir = Path(tempfile.mkdtemp(prefix="svs-webui-"))
    os.environ["GRADIO_TEMP_DIR"] = str(work_dir / "gradio")  # uploads and served files, inside ours
    os.environ.setdefault("MPLCONFIGDIR", str(work_dir / "matplotlib"))  # its font cache too, not in $HOME
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        serve(args, work_dir, stop=stop)
    except KeyboardInterrupt:
        pass
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    run_cli(main)
