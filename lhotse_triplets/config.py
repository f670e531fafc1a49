"""Dataclass schemas of the pipeline configuration, loaded and merged with OmegaConf.

One place holds the defaults. A user YAML is merged over :class:`PipelineConfig`; an unknown
key is an error that names the key, not something silently kept.

Example::

    cfg = load_config("configs/quickstart.yaml", overrides=["synthesize.voices_per_prompt=2"])
    cfg.languages  # ['en', 'fr', 'de', 'ja', 'zh']
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lhotse_triplets.backends.registry import BackendSpec

LANGUAGES = ("en", "fr", "de", "ja", "zh")


@dataclass
class BackendConfig:
    """A backend by registry name, with its constructor options."""

    name: str = "???"
    options: dict[str, Any] = field(default_factory=dict)

    def spec(self, kind: str) -> BackendSpec:
        return BackendSpec(kind, self.name, dict(self.options))


@dataclass
class EngineConfig:
    """Who runs the stages: an executor by registry name (``local``: worker processes here)."""

    name: str = "local"
    #: Worker processes (``local``) or actors per stage; each builds its own backends.
    num_workers: int = 1
    #: Threads each worker's backends may use (CPU inference), so workers do not oversubscribe.
    threads_per_worker: int = 1
    #: Seconds one item may take in a stage's backend before it fails with ``timeout`` (a batch
    #: gets this times its size); ``null``: no limit.
    item_timeout: float | None = 600.0
    #: Stop the run with an error when a stage's first N items all fail (a broken backend or
    #: config, not bad items); ``null``: never stop early.
    stop_after_failures: int | None = 20
    #: Executor-specific options (e.g. a Ray ``address``).
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class PrepareConfig:
    """Which recipe makes the prompt cuts, and its keyword arguments."""

    recipe: str = "sample"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RephraseConfig:
    """Spoken-style rewrites; every rewrite is validated (``rephrasing/checks.py``)."""

    backend: BackendConfig = field(default_factory=lambda: BackendConfig("rules"))
    batch_size: int = 32
    #: Sentence encoder of the meaning check; ``null`` skips that check (only that one).
    embed: BackendConfig | None = field(default_factory=lambda: BackendConfig("use_multilingual"))
    #: Meaning check thresholds: same language, and across languages (translations).
    min_similarity: float = 0.4
    min_cross_similarity: float = 0.35
    #: Length check: the rewrite's length relative to the source's (in word-like units).
    min_length_ratio: float = 0.5
    max_length_ratio: float = 2.5
    #: What replaces a rejected rewrite: ``rules`` (then the supplied text) or ``source``.
    fallback: str = "rules"
    #: sqlite file caching LLM rewrites (reruns never ask twice), relative to the stage's output
    #: directory; ``null``: no cache.
    cache: str | None = "cache.sqlite"
    #: JSONL files/folders of supplied translations, joined to prompts by conversation id.
    translation_files: list[str] = field(default_factory=list)


@dataclass
class SynthesizeConfig:
    #: language -> TTS backend; the key ``default`` serves languages not listed.
    tts: dict[str, BackendConfig] = field(
        default_factory=lambda: {"default": BackendConfig("espeak")}
    )
    #: Voices per prompt, chosen deterministically from the backend's voices for the language.
    voices_per_prompt: int = 1
    #: Optional explicit voice lists per language (default: the backend's own list).
    voices: dict[str, list[str]] = field(default_factory=dict)
    sampling_rate: int = 16000
    #: Codec of the audio files written under ``<run>/audio/<lang>/<voice>/``.
    audio_format: str = "flac"
    batch_size: int = 8
    #: ``selection.yaml`` from ``lhotse-triplets bench select``: per language, the engine and
    #: voices to use (overrides ``tts``/``voices`` for the languages it lists).
    selection: str | None = None


@dataclass
class ScoreConfig:
    asr: BackendConfig | None = field(default_factory=lambda: BackendConfig("faster_whisper"))
    embed: BackendConfig | None = field(default_factory=lambda: BackendConfig("use_multilingual"))
    mos: BackendConfig | None = field(default_factory=lambda: BackendConfig("distillmos"))
    batch_size: int = 8


@dataclass
class GateConfig:
    """Thresholds of the rule gate (a calibrated gate replaces them when given)."""

    min_similarity: float | None = 0.6
    max_error_rate: float | None = 0.5
    min_mos: float | None = 2.5
    min_duration: float | None = 0.3
    max_duration: float | None = 30.0
    #: A calibrated gate (JSON from ``lhotse-triplets bench calibrate``): replaces the
    #: similarity/error-rate/MOS thresholds; the duration bounds still apply.
    calibrated: str | None = None


@dataclass
class ExportConfig:
    """The export formats and their options (every format reads the keys it needs)."""

    #: Registered formats (``lhotse-triplets export --help`` lists them): ``shar`` (Lhotse Shar
    #: + its NeMo YAML), ``nemo`` (multimodal_conversation shards + YAML), ``triplets`` (JSONL
    #: index), ``triplet_files`` (WAV tree), ``hf``, ``duplex``, ``report``.
    formats: list[str] = field(default_factory=lambda: ["shar", "triplets"])
    #: Items per shard (cuts; conversations for ``nemo``, dialogues for ``duplex``); ``null``: no
    #: count limit.
    shard_size: int | None = 1000
    #: Audio hours per shard (``shar``, ``nemo``); ``null``: no duration limit.
    shard_hours: float | None = None
    #: Audio rate of the exports; ``null``: the synthesize stage's rate (``run`` and the ``export``
    #: commands; in Python, ``export_*`` functions keep the cuts' rate).
    sampling_rate: int | None = None
    #: Audio codec inside ``shar`` and ``nemo`` shards (``flac``: lossless 16-bit, or ``wav``).
    audio_format: str = "flac"
    #: Text turn NeMo puts before the audio turn (``shar``, ``nemo``); ``null``: the cut's own or
    #: the default instruction; ``""``: none.
    question: str | None = None
    #: System turn opening every ``nemo`` conversation (``null``: the cuts' own, if any).
    system_prompt: str | None = None
    #: Also export cuts the gate rejected.
    include_rejected: bool = False
    #: Replace an existing export in the output directory (``run`` always replaces its own).
    overwrite: bool = False
    #: language -> blend weight in the ``nemo`` data config (others 1.0).
    weights: dict[str, float] = field(default_factory=dict)
    #: Buckets of the NeMo configs' ``bucket_duration_bins`` (estimated from the data).
    num_buckets: int = 30
    #: ``nemo`` image in ``custom``: ``embed`` (base64 bytes) or ``path`` (``images/`` folder).
    image_mode: str = "embed"
    #: ``triplets`` index file: ``jsonl``, ``jsonl.gz`` or ``csv`` (``triplets.<format>``).
    triplets_format: str = "jsonl"
    #: ``triplet_files`` index: ``csv`` or ``jsonl``.
    index_format: str = "csv"
    #: ``hf`` parquet shards (``null``: one per ``hf_max_shard_rows`` rows).
    hf_num_shards: int | None = None
    hf_max_shard_rows: int = 10000
    #: TTS backend that speaks the answers for ``duplex`` (registry name), and its options.
    duplex_tts: str | None = None
    duplex_tts_options: dict[str, Any] = field(default_factory=dict)
    #: Voice of the ``duplex`` agent (``null``: the backend's first voice of the language).
    duplex_agent_voice: str | None = None
    #: Seconds of silence between ``duplex`` turns.
    duplex_gap: float = 0.4


@dataclass
class PipelineConfig:
    """The whole pipeline: ``lhotse-triplets run CONFIG -o DIR``."""

    languages: list[str] = field(default_factory=lambda: ["en"])
    prepare: PrepareConfig = field(default_factory=PrepareConfig)
    rephrase: RephraseConfig = field(default_factory=RephraseConfig)
    synthesize: SynthesizeConfig = field(default_factory=SynthesizeConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    #: Cuts per shard: the unit of resumption and of parallel work.
    shard_size: int = 100
    #: Who runs the stages (``local`` worker processes by default).
    engine: EngineConfig = field(default_factory=EngineConfig)


@dataclass
class BenchEngineConfig:
    """One TTS engine of a benchmark grid."""

    name: str = "???"
    options: dict[str, Any] = field(default_factory=dict)
    #: Name in tables and cut ids (default: ``name``); lets one engine run with two option sets.
    label: str | None = None
    #: Languages to try it on (default: every benchmark language the engine speaks).
    languages: list[str] = field(default_factory=list)
    #: language -> voices to try (default: all the engine's voices for the language).
    voices: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class BenchConfig:
    """A TTS benchmark grid: ``lhotse-triplets bench run CONFIG -o DIR``."""

    languages: list[str] = field(default_factory=lambda: list(LANGUAGES))
    #: Folder of prompt files: ``tts_inputs_<lang>.jsonl`` (``{"uid", "lang", "text"}``) or
    #: ``<lang>.jsonl`` (``{"sid", "text"}``).
    prompt_dir: str | None = None
    #: language -> prompt file (overrides ``prompt_dir`` for that language).
    prompt_files: dict[str, str] = field(default_factory=dict)
    #: The first N prompts of each language.
    prompts_per_language: int = 60
    #: Voices speaking each prompt, rotating over the voices (0 = every voice: the full grid).
    voices_per_prompt: int = 1
    engines: list[BenchEngineConfig] = field(default_factory=list)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    #: Thresholds that decide "good" in the tables, or ``calibrated: gate.json``.
    gate: GateConfig = field(default_factory=GateConfig)
    #: Precision the calibrated gate's threshold aims for (``bench calibrate``).
    target_precision: float = 0.9
    sampling_rate: int = 16000
    audio_format: str = "flac"
    batch_size: int = 8
    shard_size: int = 100
    engine: EngineConfig = field(default_factory=EngineConfig)


def load_config(
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    schema: type = PipelineConfig,
) -> Any:
    """Merge a YAML file and ``key=value`` overrides over the schema's defaults.

    :raises ValueError: on an unknown key or a value of the wrong type, naming it.
    """
    cfg = OmegaConf.structured(schema)
    try:
        if path is not None:
            cfg = OmegaConf.merge(cfg, OmegaConf.load(path))
        if overrides:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    except OmegaConfBaseException as e:
        where = f" in {path}" if path is not None else ""
        raise ValueError(f"Invalid configuration{where}: {e}") from None
    try:
        obj = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as e:
        raise ValueError(f"Invalid configuration: {e}") from None
    for lang in getattr(obj, "languages", []):
        if not isinstance(lang, str) or len(lang) != 2:
            raise ValueError(f"languages: {lang!r} is not an ISO 639-1 code (e.g. 'en')")
    return obj


def scoped_overrides(
    pairs: Sequence[str], section: str, schema: type = PipelineConfig
) -> list[str]:
    """``key=value`` pairs of a stage or export command as dotted keys of ``schema``.

    A key that names a field of ``section`` is taken inside it (``min_mos=3`` ->
    ``gate.min_mos=3``); any other key is taken from the top (``languages=[en,fr]``,
    ``engine.num_workers=2``, ``gate.min_mos=3``).

    :raises ValueError: for a pair without ``=``, or a key that is in neither place (naming it
        and the keys of ``section``).

    Example::

        >>> scoped_overrides(["min_mos=3", "shard_size=50"], "gate")
        ['gate.min_mos=3', 'shard_size=50']
    """
    root = OmegaConf.structured(schema)
    inner = root[section]
    out = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{pair!r} is not KEY=VALUE (e.g. batch_size=4)")
        head = key.split(".", 1)[0]
        if head in inner:
            out.append(f"{section}.{key}={value}")
        elif head in root:
            out.append(pair)
        else:
            raise ValueError(
                f"Unknown key {key!r}: not a key of {section!r} ({', '.join(inner)}) nor of the "
                f"configuration ({', '.join(root)})"
            )
    return out


def to_yaml(cfg: Any) -> str:
    """The resolved configuration as YAML (saved next to a run's outputs)."""
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
