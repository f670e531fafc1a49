"""A control set whose truth is known by construction, to check (or bootstrap) a gate.

From spoken clips it makes, per clip, the clean clip (label good) and four damaged copies
(label bad): heavy white noise, silence, truncation, and the audio of a *different* prompt under
this clip's text. A gate worth using separates them; a gate calibrated on such labels learns
"undamaged" vs "damaged", not a listener's judgement, so say so where it is reported.

Example::

    cuts, labels = build_control_set(spoken_cuts, "control/audio")
    scored = Score(...).apply(CutSet.from_cuts(cuts))
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from lhotse.cut import Cut

from lhotse_triplets import fields
from lhotse_triplets.audio import make_recording
from lhotse_triplets.cuts import with_audio

#: Variants and their truth (1 = good).
VARIANTS = {"clean": 1, "noise": 0, "silence": 0, "truncated": 0, "other_prompt": 0}


def with_noise(audio: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``audio`` plus white noise at ``snr_db`` (signal-to-noise ratio in dB)."""
    noise = rng.standard_normal(len(audio)).astype(np.float32)
    power = float(np.mean(audio**2)) or 1e-8
    noise *= np.sqrt(power / 10 ** (snr_db / 10) / float(np.mean(noise**2)))
    out = audio + noise
    return (out / max(1.0, float(np.max(np.abs(out))))).astype(np.float32)


def build_control_set(
    cuts: Sequence[Cut],
    audio_dir: str | Path,
    *,
    snr_db: float = -5.0,
    keep_fraction: float = 0.4,
    seed: int = 0,
) -> tuple[list[Cut], dict[str, int]]:
    """The clean and damaged copies of spoken ``cuts`` (ids ``{cut.id}-{variant}``) and their
    labels (``cut_id -> 1 | 0``).

    :param cuts: spoken cuts (with recordings); at least two, so that "other prompt" exists.
    :param audio_dir: where the copies' audio is written (FLAC).
    :param snr_db: noise level of the ``noise`` variant.
    :param keep_fraction: how much of the clip the ``truncated`` variant keeps.
    """
    if len(cuts) < 2:
        raise ValueError("A control set needs at least two spoken clips")
    rng = np.random.default_rng(seed)
    audio_dir = Path(audio_dir)
    audios = [c.load_audio()[0].astype(np.float32) for c in cuts]
    out, labels = [], {}
    for i, cut in enumerate(cuts):
        sr, audio = cut.sampling_rate, audios[i]
        versions = {
            "clean": audio,
            "noise": with_noise(audio, snr_db, rng),
            "silence": np.zeros_like(audio),
            "truncated": audio[: max(1, int(len(audio) * keep_fraction))],
            "other_prompt": audios[(i + 1) % len(cuts)],
        }
        for variant, samples in versions.items():
            new_id = f"{cut.id}-{variant}"
            rec = make_recording(samples, sr, new_id, audio_dir / f"{new_id}.flac")
            voice = cut.supervisions[0].speaker
            # Copies are not syntheses: no synthesis time (no RTF) for them.
            copy = with_audio(cut, voice, rec, **{fields.SYNTHESIS_SECONDS: None})
            out.append(copy)
            labels[new_id] = VARIANTS[variant]
    return out, labels


def control_bench(
    bench_dir: str | Path,
    output_dir: str | Path,
    *,
    engine: str,
    language: str,
    num_clips: int = 10,
    progress: bool = True,
) -> dict[str, int]:
    """A control benchmark directory from the clips of one cell of ``bench_dir``.

    Takes the first ``num_clips`` synthesized clips of ``engine``/``language``, writes their
    clean and damaged copies as cell ``control/<language>`` of ``output_dir``, scores them with
    the benchmark's score config, and writes the truth to ``output_dir/labels.csv``, so that
    ``bench calibrate OUTPUT_DIR`` fits a gate to "undamaged vs damaged" and ``bench label`` /
    ``bench report`` work on it as on any benchmark.

    :return: counts of good and bad labels.

    Example::

        control_bench("bench-out", "control", engine="kokoro", language="en", num_clips=12)
    """
    from lhotse import CutSet

    from lhotse_triplets.config import BenchConfig, load_config
    from lhotse_triplets.engine import get_executor, read_cuts
    from lhotse_triplets.redact import without_redacted
    from lhotse_triplets.transforms.registry import build_stage

    bench_dir, output_dir = Path(bench_dir), Path(output_dir)
    source = bench_dir / "synthesize" / engine / language
    if not source.is_dir():
        raise ValueError(f"{bench_dir} has no synthesized clips of {engine}/{language}")
    cfg = load_config(bench_dir / "config.yaml", schema=BenchConfig)
    for backend in (cfg.score.asr, cfg.score.embed, cfg.score.mos):
        if backend is not None:  # config.yaml hides secrets: backends read them from their env
            backend.options = without_redacted(backend.options)
    spoken = [c for _, c in zip(range(num_clips), read_cuts(source))]
    cuts, labels = build_control_set(spoken, output_dir / "audio" / "control" / language)
    synth_dir = output_dir / "synthesize" / "control" / language
    synth_dir.mkdir(parents=True, exist_ok=True)
    CutSet.from_cuts(cuts).to_file(synth_dir / "cuts.000000.jsonl.gz")
    (output_dir / "config.yaml").write_text((bench_dir / "config.yaml").read_text())
    get_executor(cfg.engine, progress=progress).run(
        build_stage("score", cfg), synth_dir, output_dir / "score" / "control" / language
    )
    with (output_dir / "labels.csv").open("w") as f:
        f.write("cut_id,label\n")
        for cut_id, label in labels.items():
            f.write(f"{cut_id},{'good' if label else 'bad'}\n")
    return {"good": sum(labels.values()), "bad": len(labels) - sum(labels.values())}
