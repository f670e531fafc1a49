"""A small CLEVR-like sample corpus, generated on the spot (no download, no licence to check).

About the corpus: every conversation is about one drawn scene (320x240 PNG, :mod:`.scene`) of
three to six objects in the manner of CLEVR (Johnson et al., 2017): cubes, spheres and cylinders,
small or large, rubber (matte) or metal (shiny), in CLEVR's eight colours, standing on a grey
floor. The user asks templated questions (:mod:`.questions`: counting, attribute and spatial
questions), some conversations have a follow-up question, and the assistant answers are computed
from the scene, so they are true for the image. Each question comes with translations into
French, German, Japanese and Chinese (``"translations"`` of the user turn), which the rephrase
stage uses as supplied texts.

The corpus is written in the JSONL dump format that :func:`prepare_llava_instruct` reads
(``sample.jsonl`` plus ``images/<id>.png``; each row also keeps its ``scene`` description), so the
sample exercises the same code path as real data. The same ``seed`` gives byte-identical files,
and conversation ``i`` does not depend on ``num_conversations``.
"""

import json
import random
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lhotse import CutSet
from lhotse.utils import Pathlike

from lhotse_triplets import text
from lhotse_triplets.images import encode_image
from lhotse_triplets.recipes.llava_instruct import prepare_llava_instruct
from lhotse_triplets.recipes.registry import recipe
from lhotse_triplets.recipes.sample.questions import LANGUAGES, Question, pick_questions
from lhotse_triplets.recipes.sample.scene import (
    COLORS,
    HEIGHT,
    MATERIALS,
    SHAPES,
    SIZES,
    WIDTH,
    SceneObject,
    draw_scene,
    place_objects,
)

DATA_SOURCE = "CLEVR-sample"


def generate_sample_corpus(
    output_dir: Pathlike, num_conversations: int = 20, seed: int = 0
) -> Path:
    """Draw ``num_conversations`` CLEVR-like scenes with true Q&A; return the ``sample.jsonl`` path.

    Images go to ``output_dir/images/<id>.png``. Files whose content would not change are not
    rewritten, so a finished :func:`prepare_llava_instruct` run on them stays valid.

    :param output_dir: where ``sample.jsonl`` and ``images/`` are written.
    :param num_conversations: how many conversations (one scene each).
    :param seed: the same seed gives the same files.

    Example::

        >>> jsonl = generate_sample_corpus("data/sample", num_conversations=5)
        >>> cuts = prepare_llava_instruct(jsonl, "data/sample", image_dir=jsonl.parent)
    """
    output_dir = Path(output_dir)
    (output_dir / "images").mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(_conversation(output_dir, index, seed), ensure_ascii=False)
        for index in range(num_conversations)
    ]
    jsonl = output_dir / "sample.jsonl"
    _write_if_changed(jsonl, ("\n".join(lines) + "\n").encode("utf-8"))
    return jsonl


@recipe("sample", short={"num_conversations": "n"})
def prepare_sample(
    output_dir: Pathlike,
    num_conversations: int = 20,
    seed: int = 0,
    *,
    max_prompt_chars: int | None = text.MAX_PROMPT_CHARS,
    max_answer_chars: int | None = text.MAX_ANSWER_CHARS,
) -> CutSet:
    """The bundled CLEVR-like sample corpus (generated, no download) -> prompt cuts.

    Generates the corpus in ``output_dir`` (:func:`generate_sample_corpus`) and prepares it with
    :func:`prepare_llava_instruct`.

    :param output_dir: where the corpus, its images and the prepared manifest are written.
    :param num_conversations: how many conversations (one scene each) to generate.
    :param seed: the same seed gives byte-identical files.
    :param max_prompt_chars: longest user text kept as a prompt (``none``: no cap).
    :param max_answer_chars: longest answer kept (``none``: no cap).
    :return: the prompt cuts (lazy, read from ``llava_instruct_cuts_train.jsonl.gz``).

    Example::

        >>> cuts = prepare_sample("data/sample")
        >>> cuts[0].custom["translations"]["fr"]
    """
    jsonl = generate_sample_corpus(output_dir, num_conversations=num_conversations, seed=seed)
    return prepare_llava_instruct(
        jsonl,
        output_dir,
        image_dir=jsonl.parent,
        max_prompt_chars=max_prompt_chars,
        max_answer_chars=max_answer_chars,
    )


def _conversation(output_dir: Path, index: int, seed: int) -> dict[str, Any]:
    """Conversation ``index``: its scene drawn into ``images/``, and its row."""
    rng = random.Random(f"lhotse-triplets-sample-{seed}-{index}")
    conversation_id = f"sample-{index:06d}"
    objects = place_objects(rng)
    image_path = f"images/{conversation_id}.png"
    _write_if_changed(output_dir / image_path, encode_image(draw_scene(objects)))
    num_turns = 2 if rng.random() < 0.35 else 1
    questions = pick_questions(rng, objects, num_turns)
    return {
        "id": conversation_id,
        "data_source": DATA_SOURCE,
        "image": image_path,
        "conversations": [turn for i, q in enumerate(questions) for turn in _turns(q, i)],
        "scene": {"width": WIDTH, "height": HEIGHT, "objects": [asdict(o) for o in objects]},
    }


def _turns(question: Question, turn: int) -> list[dict[str, Any]]:
    """The user turn (``<image>`` on the first) and the assistant reply of one question."""
    en = question.texts["en"]
    return [
        {
            "role": "user",
            "content": f"<image>\n{en}" if turn == 0 else en,
            "translations": question.texts,
        },
        {"role": "assistant", "content": question.answer},
    ]


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        return
    path.write_bytes(data)


__all__ = [
    "COLORS",
    "DATA_SOURCE",
    "HEIGHT",
    "LANGUAGES",
    "MATERIALS",
    "SHAPES",
    "SIZES",
    "WIDTH",
    "Question",
    "SceneObject",
    "draw_scene",
    "generate_sample_corpus",
    "pick_questions",
    "place_objects",
    "prepare_sample",
]
