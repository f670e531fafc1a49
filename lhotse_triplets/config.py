"""Dataclass schemas of the pipeline configuration, loaded and merged with OmegaConf.

One place holds the defaults. A user YAML is merged over :class:`PipelineConfig`; an unknown
key is an error that names the key, not something silently kept.

Example::

    cfg = load_config("configs/quickstart.yaml", overrides=["synthesize.voices_per_prompt=2"])
    cfg.languages  # ['en', 'fr', 'de', 'ja', 'zh']

Every value is checked when loaded (:func:`validate_config`: counts >= 1, positive rates and
timeouts, thresholds in range, ISO 639-1 codes, audio formats), and an error is one line that
names the key, the problem, the value and where it came from (the YAML file, an override or the
default)::

    synthesize.voices_per_prompt: must be >= 1 (got 0, from override synthesize.voices_per_prompt=0)

Checks that need the registries or the filesystem (backend names and options, voices, files
that must exist, a writable output directory) are :func:`lhotse_triplets.preflight.preflight`'s.
"""

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lhotse_triplets.backends.registry import BackendSpec
from lhotse_triplets.redact import redact

LANGUAGES = ("en", "fr", "de", "ja", "zh")

#: The 184 two-letter codes of ISO 639-1 (the deprecated ``bh`` excluded): the same set as the
#: two-letter entries of the Hugging Face Hub's language list (``datasets``' ``languages.json``),
#: written out here so that no optional package is needed to check a config.
ISO_639_1 = frozenset(
    """
    aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr
    cs cu cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn
    gu gv ha he hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki
    kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml
    mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt
    qu rm rn ro ru rw sa sc sd se sg sh si sk sl sm sn so sq sr ss st su sv sw ta
    te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za
    zh zu
    """.split()
)

#: Codecs the audio writer (``audio.encode``: soundfile, 16-bit PCM) writes and Lhotse reads back.
AUDIO_FORMATS = ("flac", "wav")


@dataclass
class BackendConfig:
    """A backend by registry name, with its constructor options."""

    name: str = "???"
    options: dict[str, Any] = field(default_factory=dict)
    #: What one worker running this backend reserves on a Ray cluster (its stage's actors ask for
    #: the sum over the stage's backends): GPUs (fractions share one, e.g. 0.5), and CPUs
    #: (``null``: ``engine.threads_per_worker``). The local executor ignores them.
    num_gpus: float = 0.0
    num_cpus: float | None = None

    def spec(self, kind: str) -> BackendSpec:
        return BackendSpec(kind, self.name, dict(self.options))


@dataclass
class EngineConfig:
    """Who runs the stages: an executor by registry name (``local``: worker processes here)."""

    name: str = "local"
    #: Worker processes (``local``) or actors per stage (``ray``; a stage's ``concurrency``
    #: overrides it); each builds its own backends once.
    num_workers: int = 1
    #: Threads each worker's backends may use (CTranslate2, onnxruntime, torch, OpenMP), so that
    #: workers do not oversubscribe the cores; ``null``: the usable CPUs // ``num_workers``.
    threads_per_worker: int | None = None
    #: ``ray``: the cluster to join (``null``: the one ``RAY_ADDRESS`` names, else a local Ray
    #: started for the run; ``auto``: a running one on this machine; ``ray://HOST:10001``).
    address: str | None = None
    #: ``ray``: ``run`` chains rephrase -> synthesize -> score -> gate shard by shard, every
    #: stage's actors working at once (a shard moves on as soon as it is done).
    streaming: bool = False
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
    #: Workers (Ray actors / local processes) of this stage; ``null``: ``engine.num_workers``.
    concurrency: int | None = None
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
    #: Workers (Ray actors / local processes) of this stage; ``null``: ``engine.num_workers``.
    concurrency: int | None = None
    #: ``selection.yaml`` from ``lhotse-triplets bench select``: per language, the engine and
    #: voices to use (overrides ``tts``/``voices`` for the languages it lists).
    selection: str | None = None


@dataclass
class ScoreConfig:
    asr: BackendConfig | None = field(default_factory=lambda: BackendConfig("faster_whisper"))
    embed: BackendConfig | None = field(default_factory=lambda: BackendConfig("use_multilingual"))
    mos: BackendConfig | None = field(default_factory=lambda: BackendConfig("distillmos"))
    batch_size: int = 8
    #: Workers (Ray actors / local processes) of this stage; ``null``: ``engine.num_workers``.
    concurrency: int | None = None


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
    #: index), ``triplet_files`` (WAV tree), ``hf``, ``duplex``, ``ttt`` (per-turn rows for
    #: long-context TTT training, a Hugging Face dataset), ``report``.
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
    #: the default instruction (for dialogue turn cuts, ``nemo``: none); ``""``: none.
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
    #: TTS backend that speaks the answers for ``duplex`` (registry name), and text-only dialogue
    #: turns; and its options.
    duplex_tts: str | None = None
    duplex_tts_options: dict[str, Any] = field(default_factory=dict)
    #: Voice of the ``duplex`` agent (``null``: the backend's first voice of the language).
    duplex_agent_voice: str | None = None
    #: Seconds of silence after each ``duplex`` turn.
    duplex_gap: float = 0.4
    #: Role names the dialogue exports write, over the defaults: ``duplex`` supervisions
    #: (``{user: user, assistant: agent}``, NeMo DuplexS2SDataset's input/output roles; its
    #: example YAML uses ``{user: User, assistant: Assistant}``) and ``nemo`` turns' ``from``
    #: (``User``/``Assistant``).
    role_names: dict[str, str] = field(default_factory=dict)
    #: Tokenizer for ``ttt`` rows' ``input_ids``/``labels``: a Hugging Face tokenizer folder or a
    #: SentencePiece ``*.model``; ``null``: rows without token ids.
    tokenizer: str | None = None
    #: ``ttt`` ``input_ids``/``labels`` are padded to a multiple of this many tokens.
    pad_multiple: int = 64
    #: ``report`` gallery: clips per language (and rejected clips per reason) shown with their
    #: image, audio and texts in ``report.html``; 0 = no gallery.
    samples: int = 0


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


#: No value given (``None`` is a value).
_UNSET: Any = object()


class ConfigError(ValueError):
    """A configuration value that cannot work. The message is one line:
    ``KEY: PROBLEM (got VALUE, ORIGIN)``, e.g. ``shard_size: must be >= 1 (got 0, from run.yaml)``.

    :param key: the dotted key (``synthesize.voices.en[1]``).
    :param origin: where the value came from (:meth:`Origins.of`), ``""`` when unknown.
    :param value: the offending value, when there is one to show.
    """

    def __init__(
        self, key: str, problem: str, origin: str = "", value: Any = _UNSET, note: str = ""
    ) -> None:
        self.key, self.problem, self.origin = key, problem, origin
        details = [] if value is _UNSET else [f"got {_short(value)}"]
        details += [origin] if origin else []
        where = f" ({', '.join(details)})" if details else ""
        super().__init__(f"{key or 'configuration'}: {problem}{where}{note}")


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def key_parts(key: str) -> list[str]:
    """``"engines[0].voices.en"`` -> ``["engines", "0", "voices", "en"]``."""
    return re.findall(r"[^.\[\]]+", key)


def _holds(values: Any, parts: Sequence[str]) -> bool:
    """Whether the plain mapping ``values`` (a YAML file) sets the key ``parts`` or one above it."""
    node = values
    for part in parts:
        if isinstance(node, Mapping):
            if part not in node:
                return False
            node = node[part]
        elif isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                return False
            node = node[int(part)]
        else:
            break
    return True


@dataclass
class Origins:
    """Where the values of a loaded configuration came from: the YAML file, then the
    ``KEY=VALUE`` overrides in order, else the schema's defaults."""

    file: str | None = None
    #: The file's values as plain mappings and lists.
    file_values: Any = None
    #: The overrides as given (``"synthesize.voices_per_prompt=0"``), in order.
    overrides: list[str] = field(default_factory=list)

    def of(self, key: str) -> str:
        """``"from override KEY=VALUE"``, ``"from FILE"`` or ``"default value"``: who set ``key``
        (the last override setting it, a key above it or below it, wins)."""
        parts = key_parts(key)
        for pair in reversed(self.overrides):
            set_parts = key_parts(pair.partition("=")[0])
            n = min(len(parts), len(set_parts))
            if n and parts[:n] == set_parts[:n]:
                return f"from override {pair}"
        if self.file is not None and parts and _holds(self.file_values, parts):
            return f"from {self.file}"
        return "default value"


#: Attribute of a loaded configuration object holding its :class:`Origins`.
_ORIGINS = "_origins"


def origin_of(cfg: Any, key: str) -> str:
    """Where the value of ``key`` in ``cfg`` came from (``""`` for a configuration made in code)."""
    origins = getattr(cfg, _ORIGINS, None)
    return origins.of(key) if origins is not None else ""


def config_error(
    cfg: Any, key: str, problem: str, value: Any = _UNSET, note: str = ""
) -> ConfigError:
    """A :class:`ConfigError` for ``key`` of ``cfg``, naming where its value came from."""
    return ConfigError(key, problem, origin_of(cfg, key), value, note)


def _read_yaml(path: str | Path) -> Any:
    """The plain values of a YAML config file.

    :raises FileNotFoundError: naming the file.
    :raises ValueError: for a syntax error (``FILE:LINE:COLUMN: ...``) or a file that is not a
        mapping of keys.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        conf = OmegaConf.load(path)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        problem = e.problem or e.context or "syntax error"
        if e.context and e.problem:
            start = f" started at line {e.context_mark.line + 1}" if e.context_mark else ""
            problem += f" ({e.context}{start})"
        raise ValueError(f"{where}: YAML syntax error: {problem}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a YAML file: {_one_line(str(e))}") from None
    values = OmegaConf.to_container(conf)
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping of configuration keys, got a list")
    return values


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _omegaconf_error(e: OmegaConfBaseException, base: Any, key: str, origin: str) -> ConfigError:
    """A :class:`ConfigError` from an OmegaConf merge/conversion error (unknown key, wrong type)."""
    key = getattr(e, "full_key", None) or key
    problem = str(getattr(e, "msg", None) or e).splitlines()[0]
    if "is not a ListConfig" in problem:
        problem = "expected a list (e.g. [en, fr])"
    elif type(e).__name__ == "MissingMandatoryValue":
        problem = "must be set (no value given)"
    elif type(e).__name__ == "ConfigKeyError":
        parent = ".".join(key_parts(key)[:-1])
        node = OmegaConf.select(base, parent) if parent else base
        known = ", ".join(str(k) for k in node) if OmegaConf.is_dict(node) else "-"
        problem = f"unknown key; known keys{f' of {parent}' if parent else ''}: {known}"
    return ConfigError(key, problem, origin)


def _merge(base: Any, values: Any, key: str, origin: str) -> Any:
    try:
        return OmegaConf.merge(base, values)
    except OmegaConfBaseException as e:
        raise _omegaconf_error(e, base, key, origin) from None


def load_config(
    path: str | Path | None = None,
    overrides: Sequence[str] = (),
    schema: type = PipelineConfig,
) -> Any:
    """Merge a YAML file and ``key=value`` overrides over the schema's defaults, then check
    every value (:func:`validate_config`).

    The file and each override are merged in separate steps, so an error names its origin.

    :raises FileNotFoundError: when ``path`` does not exist.
    :raises ValueError: (:class:`ConfigError`) on a YAML syntax error (``FILE:LINE``), an
        unknown key, a value of the wrong type or out of range, naming the key and its origin.
    """
    origins = Origins(file=str(path) if path is not None else None)
    cfg = OmegaConf.structured(schema)
    if path is not None:
        origins.file_values = _read_yaml(path)
        for key, value in origins.file_values.items():  # one section at a time: errors name it
            cfg = _merge(cfg, OmegaConf.create({key: value}), str(key), f"from {path}")
    for pair in overrides:
        key, sep, _ = str(pair).partition("=")
        if not sep or not key.strip():
            raise ValueError(
                f"override {pair!r}: expected KEY=VALUE (e.g. synthesize.voices_per_prompt=2)"
            )
        cfg = _merge(cfg, OmegaConf.from_dotlist([pair]), key, f"from override {pair}")
        origins.overrides.append(pair)
    try:
        obj = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as e:
        # A value left unset belongs to whoever made its section (``tts.fr.options.x=1``).
        key = ".".join(key_parts(getattr(e, "full_key", None) or "")[:-1])
        raise _omegaconf_error(e, cfg, key, origins.of(key) if key else "") from None
    object.__setattr__(obj, _ORIGINS, origins)
    validate_config(obj)
    return obj


# -- value checks ---------------------------------------------------------------------------
#: A problem found by a check: (key, what is wrong, the value).
Problem = tuple[str, str, Any]


def _at_least(n: int) -> Callable[[Any], str | None]:
    return lambda v: None if v >= n else f"must be >= {n}"


def _above(n: float) -> Callable[[Any], str | None]:
    return lambda v: None if v > n else f"must be > {n}"


def _within(lo: float, hi: float) -> Callable[[Any], str | None]:
    return lambda v: None if lo <= v <= hi else f"must be within [{lo}, {hi}]"


def _one_of(values: Sequence[str]) -> Callable[[Any], str | None]:
    return lambda v: None if v in values else f"must be one of {', '.join(values)}"


#: Dotted key -> check of its value (a message, or ``None`` when fine). Keys absent from a
#: schema are skipped; ``null`` values (where the schema allows them: "unset") pass.
VALUE_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "shard_size": _at_least(1),
    "sampling_rate": _at_least(1),
    "audio_format": _one_of(AUDIO_FORMATS),
    "batch_size": _at_least(1),
    "prompts_per_language": _at_least(1),
    "voices_per_prompt": _at_least(0),  # benchmark: 0 = every voice
    "target_precision": _within(0.0, 1.0),
    "rephrase.batch_size": _at_least(1),
    "rephrase.min_similarity": _within(-1.0, 1.0),
    "rephrase.min_cross_similarity": _within(-1.0, 1.0),
    "rephrase.min_length_ratio": _above(0),
    "rephrase.max_length_ratio": _above(0),
    "synthesize.voices_per_prompt": _at_least(1),
    "synthesize.sampling_rate": _at_least(1),
    "synthesize.audio_format": _one_of(AUDIO_FORMATS),
    "synthesize.batch_size": _at_least(1),
    "score.batch_size": _at_least(1),
    "gate.min_similarity": _within(-1.0, 1.0),
    "gate.max_error_rate": _at_least(0),
    "gate.min_mos": _within(0.0, 5.0),
    "gate.min_duration": _at_least(0),
    "gate.max_duration": _above(0),
    "export.shard_size": _at_least(1),
    "export.shard_hours": _above(0),
    "export.sampling_rate": _at_least(1),
    "export.num_buckets": _at_least(1),
    "export.hf_num_shards": _at_least(1),
    "export.hf_max_shard_rows": _at_least(1),
    "export.duplex_gap": _at_least(0),
    "engine.num_workers": _at_least(1),
    "engine.threads_per_worker": _at_least(1),
    "rephrase.concurrency": _at_least(1),
    "synthesize.concurrency": _at_least(1),
    "score.concurrency": _at_least(1),
    "engine.item_timeout": _above(0),
    "engine.stop_after_failures": _at_least(1),
}

_ABSENT = object()


def _get(cfg: Any, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        node = getattr(node, part, _ABSENT)
        if node is _ABSENT:
            break
    return node


def _value_problems(cfg: Any) -> list[Problem]:
    out = []
    for key, check in VALUE_CHECKS.items():
        value = _get(cfg, key)
        if value is _ABSENT or value is None:
            continue
        if isinstance(value, float) and math.isnan(value):
            out.append((key, "must be a number", value))
        elif (problem := check(value)) is not None:
            out.append((key, problem, value))
    return out


def language_problem(code: Any) -> str | None:
    """Why ``code`` is not an ISO 639-1 language code (``None`` when it is one)."""
    if isinstance(code, str) and code in ISO_639_1:
        return None
    hint = f"; did you mean {code.lower()!r}?" if str(code).lower() in ISO_639_1 else " (e.g. 'en')"
    return f"not an ISO 639-1 language code{hint}"


def _languages(key: str, codes: Any, allow: Sequence[str] = ()) -> list[Problem]:
    out = []
    for i, code in enumerate(codes or []):
        sub = f"{key}[{i}]" if isinstance(codes, list) else f"{key}.{code}"
        if code not in allow and (problem := language_problem(code)) is not None:
            out.append((sub, problem, code))
    return out


def _language_problems(cfg: Any) -> list[Problem]:
    out = []
    languages = _get(cfg, "languages")
    if languages is not _ABSENT:
        if not languages:
            out.append(("languages", "must list at least one language", languages))
        out += _languages("languages", languages)
        twice = sorted({x for x in languages if languages.count(x) > 1})
        if twice:
            out.append(("languages", f"lists {', '.join(twice)} more than once", languages))
    for key in ("synthesize.voices", "export.weights", "prompt_files"):
        value = _get(cfg, key)
        if value not in (_ABSENT, None):
            out += _languages(key, dict(value))
    tts = _get(cfg, "synthesize.tts")
    if tts not in (_ABSENT, None):
        out += _languages("synthesize.tts", dict(tts), allow=("default",))
    engines = _get(cfg, "engines")
    for i, engine in enumerate([] if engines is _ABSENT else engines):
        out += _languages(f"engines[{i}].languages", engine.languages)
        out += _languages(f"engines[{i}].voices", dict(engine.voices))
    return out


def _list_problems(cfg: Any) -> list[Problem]:
    """Voice lists and blend weights: the right shapes."""
    out = []
    voices = _get(cfg, "synthesize.voices")
    for language, names in (voices if voices not in (_ABSENT, None) else {}).items():
        if not names:
            out.append((f"synthesize.voices.{language}", "must list at least one voice", names))
    weights = _get(cfg, "export.weights")
    for language, weight in (weights if weights not in (_ABSENT, None) else {}).items():
        if not (weight > 0 and math.isfinite(weight)):
            out.append((f"export.weights.{language}", "must be a positive number", weight))
    return out


def _order_problems(cfg: Any) -> list[Problem]:
    """Pairs of bounds whose lower one is above the upper one (blaming the one that was set)."""
    out = []
    for low, high in (
        ("rephrase.min_length_ratio", "rephrase.max_length_ratio"),
        ("gate.min_duration", "gate.max_duration"),
    ):
        lo, hi = _get(cfg, low), _get(cfg, high)
        if _ABSENT in (lo, hi) or None in (lo, hi) or lo <= hi:
            continue
        if origin_of(cfg, high) == "default value":
            out.append((low, f"must be <= {high} ({hi})", lo))
        else:
            out.append((high, f"must be >= {low} ({lo})", hi))
    return out


def config_problems(cfg: Any) -> list[Problem]:
    """Every value problem of ``cfg`` (a :class:`PipelineConfig` or :class:`BenchConfig`)."""
    return (
        _value_problems(cfg) + _language_problems(cfg) + _list_problems(cfg) + _order_problems(cfg)
    )


def validate_config(cfg: Any) -> None:
    """Check the values of ``cfg`` on their own (no registry, no filesystem): counts >= 1,
    positive rates and timeouts, thresholds in range, ISO 639-1 codes, audio formats.

    :raises ConfigError: for the first problem, naming the key, the value and its origin (and
        how many other problems there are).
    """
    problems = config_problems(cfg)
    if not problems:
        return
    key, problem, value = problems[0]
    note = ""
    if len(problems) > 1:
        others = ", ".join(k for k, _, _ in problems[1:4]) + (", ..." if len(problems) > 4 else "")
        note = f"; {len(problems) - 1} more: {others}"
    raise config_error(cfg, key, problem, value, note)


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


def plain_config(cfg: Any) -> dict[str, Any]:
    """``cfg`` (a config dataclass or section) as plain dicts and lists."""
    return OmegaConf.to_container(OmegaConf.structured(cfg))


def to_yaml(cfg: Any) -> str:
    """The resolved configuration as YAML (saved next to a run's outputs), with secrets and
    cloning references hidden (:func:`lhotse_triplets.redact.redact`): a run's ``config.yaml``
    never holds an ``api_key`` nor a reference's path or transcript."""
    return OmegaConf.to_yaml(OmegaConf.create(redact(plain_config(cfg))))
