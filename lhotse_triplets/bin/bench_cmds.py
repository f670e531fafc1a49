"""``lhotse-triplets bench run|report|label|calibrate|select``: the TTS benchmark loop."""

from pathlib import Path

import click

from lhotse_triplets.bench.calibrate import DEFAULT_FEATURES
from lhotse_triplets.bin.options import OVERRIDES

BENCH_DIR = click.argument(
    "bench_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False)
)


CALIBRATED = click.option(
    "--calibrated",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Gate JSON that decides 'good' (default: the run's config gate).",
)

CELL_COLUMNS = ("cell", "stage", "in", "out", "failed", "resumed_shards", "seconds")


@click.group()
def bench() -> None:
    """Benchmark TTS engines, label clips, calibrate the gate, select engines per language."""


def _echo_report(info: dict) -> None:
    click.echo(info["markdown"])
    click.echo(
        f"clips: {info['clips']}   good: {info['good']} ({info['gate']})   failed: {info['failed']}"
    )
    for name, path in info["paths"].items():
        click.echo(f"{name}: {path}")


@bench.command(context_settings=dict(show_default=True))
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output-dir", required=True, type=click.Path(), help="Benchmark directory.")
@OVERRIDES
def run(config: str, output_dir: str, overrides: tuple[str]) -> None:
    """Synthesize and score the engine × language × voice × prompt grid of CONFIG (resumes).

    OVERRIDES are dotted KEY=VALUE pairs, e.g. prompts_per_language=10.
    """
    from lhotse_triplets.bench.report import write_report
    from lhotse_triplets.bench.run import run_bench
    from lhotse_triplets.config import BenchConfig, load_config
    from lhotse_triplets.preflight import preflight

    cfg = load_config(config, overrides, schema=BenchConfig)
    preflight(cfg, output_dir)
    result = run_bench(cfg, output_dir, report=False)
    _echo_report(write_report(output_dir, cfg=cfg))
    from tabulate import tabulate

    click.echo(
        "\n"
        + tabulate(
            [[c[k] for k in CELL_COLUMNS] for c in result.cells],
            headers=["cell", "stage", "in", "out", "failed", "shards resumed", "seconds"],
            tablefmt="github",
        )
    )
    click.echo(f"wall time: {result.seconds:.1f} s")


@bench.command(context_settings=dict(show_default=True))
@BENCH_DIR
@CALIBRATED
@click.option("--no-plots", is_flag=True, help="Skip the PNG plots.")
def report(bench_dir: str, calibrated: str | None, no_plots: bool) -> None:
    """Regenerate clips.csv, the per-language tables and the plots of DIR."""
    from lhotse_triplets.bench.report import write_report

    _echo_report(write_report(bench_dir, calibrated=calibrated, plots=not no_plots))


@bench.command(context_settings=dict(show_default=True))
@BENCH_DIR
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
@click.option("-k", "--top-k", type=int, default=3, help="Voices kept per language.")
@CALIBRATED
@click.option("--min-clips", type=int, default=1, help="Fewest clips for an engine to count.")
@click.option(
    "--min-voices",
    type=int,
    default=1,
    help="Engines with fewer voices in a language rank after those with enough.",
)
def select(
    bench_dir: str,
    output: str,
    top_k: int,
    calibrated: str | None,
    min_clips: int,
    min_voices: int,
) -> None:
    """Per language, the engine with the best good ratio and its top-k voices -> YAML."""
    from lhotse_triplets.bench.select import select_engines

    selection = select_engines(
        bench_dir,
        output,
        top_k=top_k,
        calibrated=calibrated,
        min_clips=min_clips,
        min_voices=min_voices,
    )
    for lang, e in selection["languages"].items():
        runner = e.get("runner_up")
        vs = ", ".join(f"{v['voice']} ({v['good_ratio']:.2f})" for v in e["voice_scores"])
        click.echo(
            f"{lang}: {e['label']}  good ratio {e['good_ratio']:.3f}  MOS {e['mos']}  "
            f"[{vs}]"
            + (f"  runner-up {runner['engine']} {runner['good_ratio']:.3f}" if runner else "")
        )
    click.echo(f"selection ({selection['gate']}): {output}")


@bench.command(context_settings=dict(show_default=True))
@BENCH_DIR
@click.option(
    "--labels",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="CSV cut_id,label (good/bad/1/0). Default: DIR/labels.csv.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Gate JSON. Default: DIR/gate.json.",
)
@click.option(
    "--target-precision",
    type=float,
    default=None,
    help="Precision the threshold aims for. Default: the run's config (target_precision).",
)
@click.option("--folds", type=int, default=5, help="Cross-validation folds (at most).")
@click.option(
    "--features",
    default=",".join(DEFAULT_FEATURES),
    help="Clip features, comma-separated; also: duration, chars_per_second, wer, cer (these "
    "differ by script: fit such a gate on the languages it judges).",
)
def calibrate(
    bench_dir: str,
    labels: str | None,
    output: str | None,
    target_precision: float | None,
    folds: int,
    features: str,
) -> None:
    """Fit the gate (logistic regression) to labelled clips; report held-out metrics."""
    from lhotse_triplets.bench.calibrate import calibrate as run_calibration
    from lhotse_triplets.config import BenchConfig, load_config

    labels_path = Path(labels) if labels else Path(bench_dir) / "labels.csv"
    if not labels_path.exists():
        raise click.ClickException(f"No labels: {labels_path} (label clips with `bench label`)")
    if target_precision is None:
        cfg_path = Path(bench_dir) / "config.yaml"
        target_precision = (
            load_config(cfg_path, schema=BenchConfig).target_precision if cfg_path.exists() else 0.9
        )
    gate = run_calibration(
        bench_dir,
        labels_path,
        output,
        target_precision=target_precision,
        folds=folds,
        features=[f.strip() for f in features.split(",") if f.strip()],
    )
    m = gate["metrics"]["held_out_at_threshold"]
    n = gate["labels"]
    click.echo(
        f"labels: {n['n']} ({n['good']} good, {n['bad']} bad), {gate['metrics']['folds']}-fold "
        f"cross-validation, held-out:"
    )
    click.echo(
        f"  AUC {m['auc']:.3f}   at threshold {gate['threshold']:.3f}: accuracy "
        f"{m['accuracy']:.3f}  precision {m['precision']:.3f}  recall {m['recall']:.3f}"
    )
    if not gate["target_reached"]:
        click.echo(f"  warning: no threshold reaches precision {target_precision}")
    weights = ", ".join(f"{f} {c:+.2f}" for f, c in zip(gate["features"], gate["coefficients"]))
    click.echo(f"  standardized coefficients: {weights}")
    click.echo(f"gate: {gate['path']}  (use: gate.calibrated in a config, or --calibrated)")


@bench.command(context_settings=dict(show_default=True))
@BENCH_DIR
@click.option("--host", default="127.0.0.1", help="Address to listen on (local only by default).")
@click.option("--port", type=int, default=8765, help="Port (0: any free port).")
@click.option(
    "--allow-host",
    "allowed_hosts",
    multiple=True,
    help="Another host name the page is opened by (e.g. this machine's name with --host "
    "0.0.0.0); requests naming other hosts are refused.",
)
def label(bench_dir: str, host: str, port: int, allowed_hosts: tuple[str, ...]) -> None:
    """Serve a page to audition clips and label them good/bad (saved to DIR/labels.csv)."""
    from lhotse_triplets.bench.label import serve

    try:
        serve(bench_dir, host=host, port=port, allowed_hosts=allowed_hosts)
    except (ValueError, OSError) as e:
        raise click.ClickException(str(e)) from None


@bench.command(context_settings=dict(show_default=True))
@BENCH_DIR
@click.option("-o", "--output-dir", required=True, type=click.Path(file_okay=False))
@click.option("-e", "--engine", required=True, help="Engine label of the clips to damage.")
@click.option("-l", "--language", required=True)
@click.option("-n", "--num-clips", type=int, default=10, help="Clean clips (5 clips each).")
def control(bench_dir: str, output_dir: str, engine: str, language: str, num_clips: int) -> None:
    """Control set with known truth: clips of DIR vs noisy/silent/truncated/mismatched copies.

    Writes a benchmark directory with labels.csv (clean = good, damaged = bad) for
    `bench calibrate`; those labels say "undamaged", not what a listener would say.
    """
    from lhotse_triplets.bench.control import control_bench
    from lhotse_triplets.bench.report import write_report

    counts = control_bench(
        bench_dir, output_dir, engine=engine, language=language, num_clips=num_clips
    )
    _echo_report(write_report(output_dir))
    click.echo(f"labels: {output_dir}/labels.csv ({counts['good']} good, {counts['bad']} bad)")
