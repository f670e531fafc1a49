"""The NeMo data configs (YAML) that point a SALM / speechlm2 trainer at an export: both writers.

The file holds the data-source part of a ``train_ds`` section: a SALM user either sets
``data.train_ds.input_cfg`` to this file's ``input_cfg`` list or merges the whole file into
``train_ds`` and adds the batching options (``batch_size`` or ``batch_duration``, ``num_workers``,
``shuffle``, ...). For a Shar export (:func:`write_nemo_config`)::

    sample_rate: 16000
    prompt_format: llama3
    token_equivalent_duration: 0.08
    input_cfg:
      - type: sqa_as_conversation
        shar_path: /data/triplets/en/shar
        audio_locator_tag: <|audioplaceholder|>
        weight: 1.0

Each Shar cut becomes ``question + <audio> -> answer`` (NeMo's ``sqa_as_conversation``); the
image bytes are in ``conversation.custom["image"]``. For tarred ``multimodal_conversation``
shards (:func:`write_conversation_config`) there is one ``input_cfg`` entry per language, with
``manifest_filepath`` / ``tarred_audio_filepaths`` in NeMo's ``_OP_0..N_CL_`` shard notation.
Both add bucketing keys when bucket bins are estimated (:func:`estimate_token_bins`).
"""

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lhotse.cut import Cut
from lhotse.utils import Pathlike
from omegaconf import DictConfig, OmegaConf

from lhotse_triplets import fields
from lhotse_triplets.config import ExportConfig
from lhotse_triplets.export.common import check_export_path, check_outside_shar, is_shar_dir

if TYPE_CHECKING:
    from lhotse_triplets.export.base import ExportResult

#: The name of the data config an export writes (``OUT/nemo_data.yaml`` next to ``OUT/shar``,
#: ``OUT/nemo/nemo_data.yaml`` inside the conversation shards).
NEMO_CONFIG_FILE = "nemo_data.yaml"
#: NeMo's input type for cuts with ``question`` and ``answer`` custom fields.
INPUT_TYPE = "sqa_as_conversation"
#: NeMo's input type for tarred multi-turn conversation JSONL.
CONVERSATION_TYPE = "multimodal_conversation"
DEFAULT_AUDIO_LOCATOR_TAG = "<|audioplaceholder|>"
#: Prompt-template tokens counted per turn when estimating lengths (llama3 role headers and
#: end-of-turn: ``<|start_header_id|>role<|end_header_id|>\n\n ... <|eot_id|>``).
TEMPLATE_TOKENS_PER_TURN = 5

#: One conversation's lengths: (audio turn durations in seconds, text turn values).
ConversationLengths = tuple[Sequence[float], Sequence[str]]


@dataclass
class InputConfig:
    """One ``input_cfg`` entry: a Shar directory read as ``sqa_as_conversation``."""

    type: str = INPUT_TYPE
    shar_path: str = "???"
    audio_locator_tag: str = DEFAULT_AUDIO_LOCATOR_TAG
    weight: float = 1.0


@dataclass
class NemoDataConfig:
    """The data-source keys of a NeMo ``train_ds`` section (the keys other than ``input_cfg``
    are what ``**top`` of the config functions may set)."""

    sample_rate: int = 16000
    prompt_format: str = "llama3"
    token_equivalent_duration: float = 0.08
    input_cfg: list[Any] = field(default_factory=list)


@dataclass
class BucketingConfig:
    """Bucketing keys added when bins were estimated: lengths in *tokens* (text tokens plus audio
    frames of ``token_equivalent_duration``), as NeMo's multimodal sampling measures them."""

    use_multimodal_sampling: bool = True
    measure_total_length: bool = True
    use_bucketing: bool = True
    num_buckets: int = 1
    bucket_duration_bins: list[int] = field(default_factory=list)


def nemo_data_config(
    shar_dir: Pathlike | Sequence[Pathlike],
    *,
    weight: float | Sequence[float] = 1.0,
    bucket_duration_bins: Sequence[int] | None = None,
    audio_locator_tag: str = DEFAULT_AUDIO_LOCATOR_TAG,
    **top: Any,
) -> DictConfig:
    """The NeMo data config for one or more Shar exports (absolute paths), as a DictConfig.

    :param shar_dir: a Shar directory written by
        :func:`~lhotse_triplets.export.shar.export_shar`, or several (e.g. one per language).
    :param weight: sampling weight, one for all or one per directory.
    :param bucket_duration_bins: token-length bucket bins (:func:`estimate_token_bins`); adds
        the :class:`BucketingConfig` keys.
    :param top: ``sample_rate``, ``prompt_format``, ``token_equivalent_duration``
        (:class:`NemoDataConfig`).
    :raises FileNotFoundError: when a directory holds no Shar cuts shards.
    :raises ValueError: for a path NeMo would rewrite, a weight list of the wrong length or an
        unknown key in ``top``.

    Example::

        >>> cfg = nemo_data_config(["data/en/shar", "data/fr/shar"], weight=[2.0, 1.0])
        >>> cfg.input_cfg[0].type
        'sqa_as_conversation'
    """
    dirs = [shar_dir] if isinstance(shar_dir, (str, Path)) else list(shar_dir)
    weights = [weight] * len(dirs) if isinstance(weight, (int, float)) else list(weight)
    if len(weights) != len(dirs):
        raise ValueError(f"Got {len(weights)} weights for {len(dirs)} Shar directories")
    inputs = []
    for d, w in zip(dirs, weights, strict=True):
        d = check_export_path(d).resolve()
        if not is_shar_dir(d):
            raise FileNotFoundError(f"No Shar cuts shards (cuts.*.jsonl.gz) in {d}")
        inputs.append(
            InputConfig(shar_path=str(d), audio_locator_tag=audio_locator_tag, weight=float(w))
        )
    return _data_config(inputs, bucket_duration_bins, top)


def write_nemo_config(
    shar_dir: Pathlike | Sequence[Pathlike], path: Pathlike | None = None, **config: Any
) -> Path:
    """Write the NeMo data config YAML for ``shar_dir`` (see :func:`nemo_data_config`).

    :param path: where to write it; default ``<shar_dir>.nemo.yaml`` next to a single Shar
        directory. It must not be inside a Shar directory (Lhotse's Shar reader takes every file
        there for a data field).
    :param config: the keyword arguments of :func:`nemo_data_config`.
    :return: the path written.

    Example::

        >>> write_nemo_config("data/en/shar")
        PosixPath('data/en/shar.nemo.yaml')
    """
    cfg = nemo_data_config(shar_dir, **config)
    if path is None:
        if not isinstance(shar_dir, (str, Path)):
            raise ValueError("Pass `path` when writing a config for several Shar directories")
        shar = Path(shar_dir)
        path = shar.parent / f"{shar.name}.nemo.yaml"
    return save_config(cfg, path)


def write_conversation_config(
    export: "ExportResult",
    path: Pathlike | None = None,
    *,
    weights: Mapping[str, float] | None = None,
    num_buckets: int = ExportConfig.num_buckets,
    count_tokens: Callable[[str], int] | None = None,
    **top: Any,
) -> Path:
    """Write the NeMo data config of a ``nemo`` export (one ``input_cfg`` per language, bucket
    bins estimated from the exported conversations), e.g. again with your tokenizer's counts.

    :param export: what :func:`~lhotse_triplets.export.nemo.export_nemo` returned.
    :param path: default ``<nemo export dir>/nemo_data.yaml``.
    :param weights: language -> blend weight (others 1.0).
    :param count_tokens: your tokenizer's token count of a text, for exact bins
        (default: an estimate, see :func:`approx_token_count`).
    :param top: ``audio_locator_tag`` and the :class:`NemoDataConfig` keys.

    Example::

        >>> write_conversation_config(result, weights={"en": 2.0, "fr": 1.0})
        PosixPath('out/export/nemo/nemo_data.yaml')
    """
    cfg = conversation_data_config(
        export.details["shards"],
        weights=weights,
        lengths=export.details.get("lengths"),
        num_buckets=num_buckets,
        count_tokens=count_tokens,
        **top,
    )
    return save_config(cfg, path or Path(export.paths["nemo"]) / NEMO_CONFIG_FILE)


def save_config(cfg: DictConfig, path: Pathlike) -> Path:
    """Save a data config as YAML at ``path``, never inside a Shar directory; return the path.

    :raises ValueError: when ``path`` is inside a Shar directory.
    """
    path = Path(path)
    check_outside_shar(path.resolve().parent, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, path)
    return path


def approx_token_count(text: str) -> int:
    """A tokenizer-free estimate of the text tokens in ``text``: UTF-8 bytes / 4 (BPE average).

    Example::

        >>> approx_token_count("There are two red cubes.")
        6
    """
    return max(1, math.ceil(len(text.encode("utf-8")) / 4))


def conversation_token_length(
    lengths: ConversationLengths,
    token_equivalent_duration: float = 0.08,
    count_tokens: Callable[[str], int] = approx_token_count,
) -> int:
    """What NeMo's multimodal sampling measures for a conversation (``total_length``), estimated:
    audio frames of ``token_equivalent_duration`` plus text tokens plus template tokens.

    Example::

        >>> conversation_token_length(([2.0], ["Answer it.", "Two cubes."]))
        46
    """
    durations, texts = lengths
    audio = sum(math.ceil(d / token_equivalent_duration) for d in durations)
    text = sum(count_tokens(t) for t in texts)
    return audio + text + TEMPLATE_TOKENS_PER_TURN * (len(durations) + len(texts))


class _MeasuredSize:
    """Sampling constraint for Lhotse's bucket estimation over already measured sizes."""

    @staticmethod
    def measure_length(size: float) -> float:
        return size


def estimate_token_bins(
    lengths: Iterable[ConversationLengths],
    num_buckets: int = ExportConfig.num_buckets,
    *,
    token_equivalent_duration: float = 0.08,
    count_tokens: Callable[[str], int] | None = None,
) -> list[int]:
    """Bucket bins (token lengths) for NeMo's ``bucket_duration_bins``, estimated from the data
    with Lhotse's :func:`~lhotse.dataset.sampling.dynamic_bucketing.estimate_duration_buckets`
    (the logic NeMo's ``estimate_token_bins.py`` script uses).

    :param lengths: one :data:`ConversationLengths` per conversation.
    :param num_buckets: wanted buckets (fewer when there are fewer distinct lengths).
    :param count_tokens: your tokenizer's token count of a text (e.g.
        ``lambda t: len(tok.text_to_ids(t))``); default :func:`approx_token_count`.
    :return: ``num_buckets - 1`` increasing integer boundaries (empty for < 2 conversations).

    Example::

        >>> estimate_token_bins(result.lengths["en"], num_buckets=4)
        [61, 83, 120]
    """
    from lhotse.dataset.sampling.dynamic_bucketing import estimate_duration_buckets

    count = count_tokens or approx_token_count
    sizes = [conversation_token_length(x, token_equivalent_duration, count) for x in lengths]
    num_buckets = min(num_buckets, len(set(sizes)))
    if num_buckets < 2:
        return []
    bins = estimate_duration_buckets(sizes, num_buckets, constraint=_MeasuredSize())
    return sorted({int(b) for b in bins})


def sqa_lengths(cut: Cut) -> ConversationLengths:
    """The :data:`ConversationLengths` of the conversation NeMo's ``sqa_as_conversation`` makes
    of a cut as stored in Shar (system prompt, question + audio -> answer); no audio is read.

    Example::

        >>> sqa_lengths(shar_cut)
        ([1.9], ['Answer the spoken request about the image.', 'Two cubes.'])
    """
    custom = cut.custom or {}
    texts = [custom.get(fields.SYSTEM_PROMPT), custom.get(fields.QUESTION)]
    return [cut.duration], [t for t in texts if t] + [custom[fields.ANSWER]]


def shard_pattern(paths: Sequence[str]) -> str:
    """NeMo's compact form of numbered shard paths: ``manifest__OP_0..3_CL_.jsonl``.

    ``paths`` must be ``<prefix><i><suffix>`` for ``i = 0..N-1``; one path is returned as is.

    Example::

        >>> shard_pattern(["d/audio_0.tar", "d/audio_1.tar"])
        'd/audio__OP_0..1_CL_.tar'
    """
    if len(paths) == 1:
        return str(paths[0])
    first = str(paths[0])
    stem, _, suffix = first.rpartition("0")
    expected = [f"{stem}{i}{suffix}" for i in range(len(paths))]
    if [str(p) for p in paths] != expected:
        raise ValueError(f"Shard paths are not numbered 0..{len(paths) - 1}: {list(paths)[:3]}...")
    return f"{stem}_OP_0..{len(paths) - 1}_CL_{suffix}"


def conversation_data_config(
    shards: Mapping[str, Sequence[tuple[str, str]]],
    *,
    weights: Mapping[str, float] | None = None,
    lengths: Mapping[str, Iterable[ConversationLengths]] | None = None,
    num_buckets: int = ExportConfig.num_buckets,
    count_tokens: Callable[[str], int] | None = None,
    audio_locator_tag: str = DEFAULT_AUDIO_LOCATOR_TAG,
    **top: Any,
) -> DictConfig:
    """The NeMo data config for tarred ``multimodal_conversation`` shards: one ``input_cfg``
    entry per language (or any source name), blended by ``weights``, with bucket bins estimated
    from ``lengths``.

    :param shards: name (language) -> [(manifest path, tar path)] in shard order.
    :param weights: name -> sampling weight (missing names: 1.0). Unknown names are an error.
    :param lengths: name -> :data:`ConversationLengths` (e.g. a ``nemo`` export's
        ``details["lengths"]``); ``None``: no bucketing keys.
    :param top: the :class:`NemoDataConfig` keys (``sample_rate``, ...).
    :raises ValueError: for an unsafe path or a weight for a name that has no shards.

    Example::

        >>> cfg = conversation_data_config(shards, weights={"en": 2.0}, lengths=lengths)
        >>> [(i.tags.language, i.weight) for i in cfg.input_cfg]
        [('en', 2.0), ('fr', 1.0)]
    """
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(shards))
    if unknown:
        raise ValueError(
            f"Weights given for {unknown}, which have no shards; have {sorted(shards)}"
        )
    inputs = [
        {
            "type": CONVERSATION_TYPE,
            "manifest_filepath": shard_pattern(_resolved(m for m, _ in pairs)),
            "tarred_audio_filepaths": shard_pattern(_resolved(t for _, t in pairs)),
            "audio_locator_tag": audio_locator_tag,
            "weight": float(weights.get(name, 1.0)),
            "tags": {"language": name},
        }
        for name, pairs in sorted(shards.items())
        if pairs
    ]
    if not inputs:
        raise ValueError("No conversation shards to point the config at")
    bins = None
    if lengths is not None:
        bins = estimate_token_bins(
            [x for name in sorted(lengths) for x in lengths[name]],
            num_buckets,
            token_equivalent_duration=top.get(
                "token_equivalent_duration", NemoDataConfig.token_equivalent_duration
            ),
            count_tokens=count_tokens,
        )
    return _data_config(inputs, bins, top)


def _resolved(paths: Iterable[str]) -> list[str]:
    return [str(check_export_path(p).resolve()) for p in paths]


def _data_config(inputs: list[Any], bins: Sequence[int] | None, top: dict[str, Any]) -> DictConfig:
    known = [f.name for f in dataclass_fields(NemoDataConfig) if f.name != "input_cfg"]
    unknown = sorted(set(top) - set(known))
    if unknown:
        raise ValueError(f"Unknown NeMo data config key(s) {unknown}; known: {', '.join(known)}")
    cfg = OmegaConf.structured(NemoDataConfig(input_cfg=inputs, **top))
    return _with_buckets(cfg, bins)


def _with_buckets(cfg: DictConfig, bins: Sequence[int] | None) -> DictConfig:
    if not bins:
        return cfg
    buckets = BucketingConfig(
        num_buckets=len(bins) + 1, bucket_duration_bins=[int(b) for b in bins]
    )
    plain = OmegaConf.to_container(cfg)
    plain.update(OmegaConf.to_container(OmegaConf.structured(buckets)))
    return OmegaConf.create(plain)
