"""neurons show / neurons find: draw one cell's activation over a text, or find the cells that
track simple features of held-out text (inside quotes, position in line, ...)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cli.train_commands import DEVICE_HELP, announce_device, chosen_device
from models.errors import RnnbotError

MAX_PNG_CHARS = 4000  # the PNG draws one text artist per character; the HTML has no limit


def register(sub) -> None:
    p = sub.add_parser("neurons", help="visualise recurrent cells over text; find interpretable ones")
    actions = p.add_subparsers(dest="neurons_action", required=True, metavar="ACTION")

    s = actions.add_parser("show", help="colour a text by one cell's activation (HTML and PNG)")
    s.add_argument("--checkpoint", required=True, help="run directory (its best checkpoint) or checkpoint file")
    source = s.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", type=Path, help="UTF-8 text file to read")
    source.add_argument("--prime", help="the text itself")
    s.add_argument("--layer", type=int, help="layer index from 0 (default: the cell `neurons find` chose)")
    s.add_argument("--cell", type=int, help="cell index from 0 within the layer")
    s.add_argument("--value", choices=("tanh_c", "h"), help="tanh of the LSTM cell state (default) or h")
    s.add_argument("--top5", action="store_true", help="show the 5 likeliest next characters under each one")
    s.add_argument("--width", type=int, default=80, help="PNG: characters per row (default: 80)")
    s.add_argument("--out", required=True, metavar="PREFIX", help="write PREFIX.html and PREFIX.png")
    s.add_argument("--device", default="auto", help=DEVICE_HELP)
    s.set_defaults(handler=cmd_show)

    f = actions.add_parser("find", help="rank cells by correlation with text features; write a gallery")
    f.add_argument("--checkpoint", required=True, help="run directory or checkpoint file")
    f.add_argument("--corpus", help="kjv, python-src or a text file (default: the checkpoint's corpus); "
                                    "built-in and training corpora use their validation split")
    f.add_argument("--chars", type=int, default=100_000, help="characters to measure on (default: 100000)")
    f.add_argument("--value", choices=("tanh_c", "h"), help="tanh of the LSTM cell state (default) or h")
    f.add_argument("--features", choices=("auto", "prose", "code"), default="auto",
                   help="feature set: code (strings, comments, indentation) for Python; auto decides by corpus")
    f.add_argument("--streams", type=int, default=32, help="read the text as this many parallel slices")
    f.add_argument("--out", type=Path, metavar="DIR", help="gallery folder (default: <checkpoint folder>/neurons)")
    f.add_argument("--device", default="auto", help=DEVICE_HELP)
    f.set_defaults(handler=cmd_find)


def _read_text(args: argparse.Namespace) -> str:
    if args.prime is not None:
        return args.prime
    try:
        return args.text.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RnnbotError(f"{args.text}: not valid UTF-8 (byte {exc.start})") from None
    except OSError as exc:
        raise RnnbotError(f"{args.text}: cannot read ({exc.strerror})") from None


def _saved_findings(args: argparse.Namespace, generator):
    """None when --layer and --cell name the cell; else what `neurons find` saved for this checkpoint."""
    from neurons.choose import model_findings

    if args.layer is not None and args.cell is not None:
        return None
    if args.layer is not None or args.cell is not None:
        raise RnnbotError("pass both --layer and --cell (or neither, for a cell `neurons find` chose)")
    findings = model_findings(generator)
    if findings is None:
        raise RnnbotError("pass --layer and --cell, or run `rnnbot neurons find` on this checkpoint first")
    return findings


def cmd_show(args: argparse.Namespace) -> int:
    from models.generator import Generator
    from neurons.activations import check_cell, check_value, default_value, record
    from neurons.choose import cell_for_text
    from neurons.png import render_png
    from neurons.render import show_page

    if args.width < 1:
        raise RnnbotError(f"--width must be at least 1, got {args.width}")
    text = _read_text(args)
    if not text:
        raise RnnbotError("the text is empty")
    generator = Generator.load(args.checkpoint, device=chosen_device(args.device))
    cfg = generator.model.config
    value = args.value or default_value(generator)
    check_value(value, generator.model.is_lstm)
    findings = _saved_findings(args, generator)
    if findings is None:
        check_cell(args.layer, args.cell, cfg.layers, cfg.hidden)
    announce_device(generator.device)
    unknown = generator.vocab.unknown_chars(text)
    if unknown:
        shown = ", ".join(repr(c) for c in unknown[:10])
        print(f"rnnbot: warning: the model has never seen {shown}; read as unknown", file=sys.stderr)

    acts = record(generator, text, top_k=5 if args.top5 else 0)
    layer, cell, why = args.layer, args.cell, ""
    if findings is not None:  # the saved cell that tracks something in this text
        chosen = cell_for_text(findings, acts, findings.value)
        layer, cell, why = chosen.layer, chosen.cell, chosen.about
    values = acts.cell(layer, cell, value)
    top = (acts.top_ids, acts.top_probs, generator.vocab.chars) if args.top5 else None
    title = f"layer {layer}, cell {cell} ({value})"
    caption = f"{generator.name}, step {generator.checkpoint.step}"
    if why:
        caption += f"; chosen for this text among the cells neurons find saved: {why}"
    prefix = Path(args.out)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    html_path, png_path = Path(f"{prefix}.html"), Path(f"{prefix}.png")
    html_path.write_text(show_page(text, values, title, caption, top), encoding="utf-8")
    n = min(len(text), MAX_PNG_CHARS)
    if n < len(text):
        print(f"rnnbot: warning: the PNG shows the first {n} of {len(text)} characters", file=sys.stderr)
    png_top = None if top is None else (top[0][:n], top[1][:n], top[2])
    png_path.write_bytes(render_png(text[:n], values[:n], args.width, png_top))
    print(f"{title}: {html_path} and {png_path}")
    return 0


def cmd_find(args: argparse.Namespace) -> int:
    from models.generator import Generator
    from neurons.activations import check_value
    from neurons.features import DESCRIPTIONS
    from neurons.find import find_cells, save_findings
    from neurons.gallery import write_gallery
    from neurons.heldout import held_out_text
    from trainer.progress import TaskProgress

    if args.streams < 1:
        raise RnnbotError(f"--streams must be at least 1, got {args.streams}")
    generator = Generator.load(args.checkpoint, device=chosen_device(args.device))
    if args.value:
        check_value(args.value, generator.model.is_lstm)
    announce_device(generator.device)
    text, source, code = held_out_text(generator.checkpoint, args.corpus, args.chars, args.features)
    with TaskProgress(len(text), "reading the text", "chars") as progress:
        findings, acts, feats = find_cells(generator, text, code, args.value, args.streams, source,
                                           on_progress=progress.update)
    print(f"{generator.name} on {source}; cell value {findings.value}")
    print(f"{'feature':<15} {'layer':>5} {'cell':>5} {'correlation':>12}  meaning")
    for res in findings.results:
        b = res.best
        print(f"{res.feature:<15} {b.layer:>5} {b.cell:>5} {b.correlation:>+12.3f}  {DESCRIPTIONS[res.feature]}")
    best = findings.showcase()
    if best is None:
        print("no feature varies over this text")
    else:
        print(f"most interpretable: layer {best.best.layer}, cell {best.best.cell} ({best.feature})")
    out_dir = args.out or generator.checkpoint.path.parent / "neurons"
    page = write_gallery(findings, acts, feats, out_dir, f"Neuron firings: {generator.name}")
    print(f"gallery: {page}")
    # Cache the choice for `neurons show` and the bot, when measured on the model's own held-out text.
    if args.corpus in (None, generator.checkpoint.corpus):
        saved = save_findings(findings, generator.checkpoint.path)
        if saved:
            print(f"saved: {saved}")
    return 0
