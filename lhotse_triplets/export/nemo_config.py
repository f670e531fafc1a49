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

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lhotse.utils import Pathlike
from omegaconf import DictConfig, OmegaConf

from lhotse_triplets.export.shar import check_export_path

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


def nemo_data_config(
    shar_dir: Pathlike | Sequence[Pathlike],
    *,
    audio_locator_tag: str = DEFAULT_AUDIO_LOCATOR_TAG,
    prompt_format: str = "llama3",
    token_equivalent_duration: float = 0.08,
    sample_rate: int = 16000,
    weight: float | Sequence[float] = 1.0,
) -> DictConfig:
    """The NeMo data config for one or more Shar exports (absolute paths), as a DictConfig.

    :param shar_dir: a Shar directory written by
        :func:`~lhotse_triplets.export.shar.export_shar`, or several (e.g. one per language).
    :param weight: sampling weight, one for all or one per directory.
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
    return OmegaConf.merge(
        schema,
        NemoDataConfig(
            sample_rate=sample_rate,
            prompt_format=prompt_format,
            token_equivalent_duration=token_equivalent_duration,
            input_cfg=inputs,
        ),
    )


def write_nemo_config(
    shar_dir: Pathlike | Sequence[Pathlike],
    path: Pathlike | None = None,
    *,
    audio_locator_tag: str = DEFAULT_AUDIO_LOCATOR_TAG,
    prompt_format: str = "llama3",
    token_equivalent_duration: float = 0.08,
    sample_rate: int = 16000,
    weight: float | Sequence[float] = 1.0,
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
