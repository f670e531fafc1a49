"""The NeMo data config (YAML) that points a SALM / speechlm2 trainer at a Shar export.

The file holds the data-source part of a ``train_ds`` section: a SALM user either sets
``data.train_ds.input_cfg`` to this file's ``input_cfg`` list or merges the whole file into
``train_ds`` and adds the batching options (``batch_size`` or ``batch_duration``, ``num_workers``,
``shuffle``, ...)::

    sample_rate: 16000
    prompt_format: llama3
    token_equivalent_duration: 0.08
    input_cfg:
      - type: sqa_as_conversation
        shar_path: /data/triplets/en/shar
        audio_locator_tag: <|audioplaceholder|>
        weight: 1.0

Each Shar cut becomes ``question + <audio> -> answer`` (NeMo's ``sqa_as_conversation``); the
image bytes are in ``conversation.custom["image"]``.
"""

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lhotse.cut import Cut
from lhotse.utils import Pathlike
from omegaconf import DictConfig, OmegaConf

from lhotse_triplets import fields
from lhotse_triplets.export.shar import DEFAULT_QUESTION, check_export_path, is_rejected

#: NeMo's input type for cuts with ``question`` and ``answer`` custom fields.
INPUT_TYPE = "sqa_as_conversation"
DEFAULT_AUDIO_LOCATOR_TAG = "<|audioplaceholder|>"


@dataclass
class InputConfig:
    """One ``input_cfg`` entry: a Shar directory read as ``sqa_as_conversation``."""

    type: str = INPUT_TYPE
    shar_path: str = "???"
    audio_locator_tag: str = DEFAULT_AUDIO_LOCATOR_TAG
    weight: float = 1.0


@dataclass
class NemoDataConfig:
    """The data-source keys of a NeMo ``train_ds`` section."""

    sample_rate: int = 16000
    prompt_format: str = "llama3"
    token_equivalent_duration: float = 0.08
    input_cfg: list[InputConfig] = field(default_factory=list)


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
    audio_locator_tag: str = DEFAULT_AUDIO_LOCATOR_TAG,
    prompt_format: str = "llama3",
    token_equivalent_duration: float = 0.08,
    sample_rate: int = 16000,
    weight: float | Sequence[float] = 1.0,
    bucket_duration_bins: Sequence[int] | None = None,
) -> DictConfig:
    """The NeMo data config for one or more Shar exports (absolute paths), as a DictConfig.

    :param shar_dir: a Shar directory written by
        :func:`~lhotse_triplets.export.shar.export_shar`, or several (e.g. one per language).
    :param weight: sampling weight, one for all or one per directory.
    :param bucket_duration_bins: token-length bucket bins (:func:`estimate_token_bins`); adds
        the :class:`BucketingConfig` keys.
    :raises FileNotFoundError: when a directory holds no Shar cuts shards.
    :raises ValueError: for a path NeMo would rewrite, or a weight list of the wrong length.

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
        if not any(d.glob("cuts.*.jsonl*")):
            raise FileNotFoundError(f"No Shar cuts shards (cuts.*.jsonl.gz) in {d}")
        inputs.append(
            InputConfig(shar_path=str(d), audio_locator_tag=audio_locator_tag, weight=float(w))
        )
    schema = OmegaConf.structured(NemoDataConfig)
    cfg = OmegaConf.merge(
        schema,
        NemoDataConfig(
            sample_rate=sample_rate,
            prompt_format=prompt_format,
            token_equivalent_duration=token_equivalent_duration,
            input_cfg=inputs,
        ),
    )
    return _with_buckets(cfg, bucket_duration_bins)


def write_nemo_config(
    shar_dir: Pathlike | Sequence[Pathlike],
    path: Pathlike | None = None,
    *,
    audio_locator_tag: str = DEFAULT_AUDIO_LOCATOR_TAG,
    prompt_format: str = "llama3",
    token_equivalent_duration: float = 0.08,
    sample_rate: int = 16000,
    weight: float | Sequence[float] = 1.0,
    bucket_duration_bins: Sequence[int] | None = None,
) -> Path:
    """Write the NeMo data config YAML for ``shar_dir`` (see :func:`nemo_data_config`).

    :param path: where to write it; default ``<shar_dir>.nemo.yaml`` next to a single Shar
        directory. It must not be inside a Shar directory (Lhotse's Shar reader takes every file
        there for a data field).
    :return: the path written.

    Example::

        >>> write_nemo_config("data/en/shar")
        PosixPath('data/en/shar.nemo.yaml')
    """
    cfg = nemo_data_config(
        shar_dir,
        audio_locator_tag=audio_locator_tag,
        prompt_format=prompt_format,
        token_equivalent_duration=token_equivalent_duration,
        sample_rate=sample_rate,
        weight=weight,
        bucket_duration_bins=bucket_duration_bins,
    )
    if path is None:
        if not isinstance(shar_dir, (str, Path)):
            raise ValueError("Pass `path` when writing a config for several Shar directories")
        shar = Path(shar_dir)
        path = shar.parent / f"{shar.name}.nemo.yaml"
    path = Path(path)
    for item in cfg.input_cfg:
        if path.resolve().parent == Path(item.shar_path):
            raise ValueError(
                f"{str(path)!r} is inside the Shar directory {item.shar_path}; Lhotse would read "
                f"it as a Shar field. Write the config next to the Shar directory instead."
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, path)
    return path


#: NeMo's input type for tarred multi-turn conversation JSONL.
CONVERSATION_TYPE = "multimodal_conversation"
#: Prompt-template tokens counted per turn when estimating lengths (llama3 role headers and
#: end-of-turn: ``<|start_header_id|>role<|end_header_id|>\n\n ... <|eot_id|>``).
TEMPLATE_TOKENS_PER_TURN = 5
DEFAULT_NUM_BUCKETS = 30

#: One conversation's lengths: (audio turn durations in seconds, text turn values).
ConversationLengths = tuple[Sequence[float], Sequence[str]]


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
    num_buckets: int = DEFAULT_NUM_BUCKETS,
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


def shar_lengths(
    cuts: Iterable[Cut], question: str | None = None, include_rejected: bool = False
) -> list[ConversationLengths]:
    """:data:`ConversationLengths` of the conversations NeMo's ``sqa_as_conversation`` makes of
    exported cuts (question + audio -> answer); reads manifests only, not audio.
    """
    out = []
    for cut in cuts:
        if not include_rejected and is_rejected(cut):
            continue
        custom = cut.custom or {}
        if not isinstance(custom.get(fields.ANSWER), str):
            continue
        q = question if question is not None else custom.get(fields.QUESTION)
        q = DEFAULT_QUESTION if q is None else q
        texts = [t for t in (custom.get(fields.SYSTEM_PROMPT), q) if t] + [custom[fields.ANSWER]]
        out.append(([cut.duration], texts))
    return out


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
    num_buckets: int = DEFAULT_NUM_BUCKETS,
    count_tokens: Callable[[str], int] | None = None,
    audio_locator_tag: str = DEFAULT_AUDIO_LOCATOR_TAG,
    prompt_format: str = "llama3",
    token_equivalent_duration: float = 0.08,
    sample_rate: int = 16000,
) -> DictConfig:
    """The NeMo data config for tarred ``multimodal_conversation`` shards: one ``input_cfg``
    entry per language (or any source name), blended by ``weights``, with bucket bins estimated
    from ``lengths``.

    :param shards: name (language) -> [(manifest path, tar path)] in shard order.
    :param weights: name -> sampling weight (missing names: 1.0). Unknown names are an error.
    :param lengths: name -> :data:`ConversationLengths` (e.g. ``ConversationExport.lengths``);
        ``None``: no bucketing keys.
    :raises ValueError: for an unsafe path or a weight for a name that has no shards.

    Example::

        >>> cfg = conversation_data_config(res.shards, weights={"en": 2.0}, lengths=res.lengths)
        >>> [(i.tags.language, i.weight) for i in cfg.input_cfg]
        [('en', 2.0), ('fr', 1.0)]
    """
    weights = dict(weights or {})
    unknown = sorted(set(weights) - set(shards))
    if unknown:
        raise ValueError(
            f"Weights given for {unknown}, which have no shards; have {sorted(shards)}"
        )
    inputs: list[dict[str, Any]] = []
    for name, pairs in sorted(shards.items()):
        if not pairs:
            continue
        manifests = [str(check_export_path(m).resolve()) for m, _ in pairs]
        tars = [str(check_export_path(t).resolve()) for _, t in pairs]
        inputs.append(
            {
                "type": CONVERSATION_TYPE,
                "manifest_filepath": shard_pattern(manifests),
                "tarred_audio_filepaths": shard_pattern(tars),
                "audio_locator_tag": audio_locator_tag,
                "weight": float(weights.get(name, 1.0)),
                "tags": {"language": name},
            }
        )
    if not inputs:
        raise ValueError("No conversation shards to point the config at")
    cfg = OmegaConf.create(
        {
            "sample_rate": sample_rate,
            "prompt_format": prompt_format,
            "token_equivalent_duration": token_equivalent_duration,
            "input_cfg": inputs,
        }
    )
    bins = None
    if lengths is not None:
        everything = [x for name in sorted(lengths) for x in lengths[name]]
        bins = estimate_token_bins(
            everything,
            num_buckets,
            token_equivalent_duration=token_equivalent_duration,
            count_tokens=count_tokens,
        )
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
