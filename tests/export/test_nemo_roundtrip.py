"""The acceptance test of the Shar export: NeMo's own dataloader + SALMDataset read it.

Builds triplet cuts (two languages, multi-line unicode answers, one rejected), exports them with
:func:`export_shar` (the Shar and its ``nemo_data.yaml``, bucketing included) and
:func:`write_nemo_config` (no bucketing), then reads the Shar with
``get_lhotse_dataloader_from_config`` (the generated YAML, unchanged, plus batching options) into
``speechlm2``'s ``SALMDataset`` with a SentencePiece tokenizer trained in the test. Every
conversation must train on the source answer, carry the source audio and the source image bytes.
"""

from pathlib import Path

import numpy as np
import pytest
from lhotse import CutSet
from omegaconf import OmegaConf

from lhotse_triplets import fields
from lhotse_triplets.export import DEFAULT_QUESTION, export_shar, write_nemo_config
from lhotse_triplets.export.nemo_config import DEFAULT_AUDIO_LOCATOR_TAG
from lhotse_triplets.images import load_image_bytes

from .nemo_reading import make_tokenizer, read_with_nemo
from .test_shar import kept, make_triplet_cuts

pytestmark = pytest.mark.slow

speechlm2 = pytest.importorskip("nemo.collections.speechlm2")


@pytest.fixture(scope="module")
def source_cuts(tmp_path_factory):
    return make_triplet_cuts(tmp_path_factory.mktemp("src"))


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory, source_cuts):
    """A SentencePiece tokenizer trained here (no download) covering every character used."""
    texts = [DEFAULT_QUESTION]
    for cut in source_cuts:
        texts += [cut.supervisions[0].text, cut.custom[fields.ANSWER]]
    return make_tokenizer(tmp_path_factory.mktemp("spm"), texts)


def export_with_config(cuts, out_dir: Path, **kwargs) -> Path:
    """The YAML the Shar export wrote next to the Shar."""
    return Path(export_shar(CutSet(cuts), out_dir, shard_size=2, **kwargs).paths["nemo_config"])


@pytest.fixture(scope="module", params=["export", "write_nemo_config"])
def nemo_batches(request, tmp_path_factory, source_cuts, tokenizer):
    config = export_with_config(source_cuts, tmp_path_factory.mktemp("export"))
    assert OmegaConf.load(config).use_bucketing
    if request.param == "write_nemo_config":  # the plain config, no bucketing keys
        config = write_nemo_config(config.parent / "shar", config.parent / "plain.yaml")
        assert "use_bucketing" not in OmegaConf.load(config)
    return read_with_nemo(config, tokenizer)


def expected_answer_ids(tokenizer, answer: str) -> list[int]:
    """The assistant-turn token ids NeMo's llama3 format makes of ``answer``."""
    from nemo.collections.common.prompts import PromptFormatter

    formatter = PromptFormatter.resolve("llama3")(tokenizer)
    encoded = formatter.encode_dialog(
        [
            {"role": "user", "slots": {"message": "x"}},
            {"role": "assistant", "slots": {"message": answer}},
        ]
    )
    return encoded["answer_ids"].tolist()


def conversations(batches: list[dict]) -> dict[str, tuple]:
    """conversation id -> (batch, row) over all batches."""
    out = {}
    for batch in batches:
        assert batch is not None, "SALMDataset returned None: NeMo could not collate the batch"
        for row, conv in enumerate(batch["conversations"]):
            out[conv.id] = (batch, row)
    return out


def test_nemo_reads_exactly_the_kept_cuts(nemo_batches, source_cuts):
    assert sorted(conversations(nemo_batches)) == sorted(c.id for c in kept(source_cuts))
    assert {c.supervisions[0].language for c in kept(source_cuts)} == {"en", "fr"}


def test_assistant_target_is_the_source_answer(nemo_batches, source_cuts, tokenizer):
    from nemo.collections.common.data.lhotse.text_adapters import AudioTurn, TextTurn

    by_id = {c.id: c for c in source_cuts}
    all_expected = {
        c.id: expected_answer_ids(tokenizer, c.custom[fields.ANSWER]) for c in kept(source_cuts)
    }
    # The tokenizer tells the answers apart and knows every character (no <unk>).
    assert len({tuple(ids) for ids in all_expected.values()}) == len(all_expected)
    unk = tokenizer.tokenizer.unk_id()
    assert all(unk not in ids for ids in all_expected.values())

    for conv_id, (batch, row) in conversations(nemo_batches).items():
        answer = by_id[conv_id].custom[fields.ANSWER]
        conv = batch["conversations"][row]
        # Turns: question (text) + audio from the user, then the verbatim answer.
        assert [type(t) for t in conv.turns] == [TextTurn, AudioTurn, TextTurn]
        assert conv.turns[0].value == DEFAULT_QUESTION
        assert conv.turns[1].audio_locator_tag == DEFAULT_AUDIO_LOCATOR_TAG
        assert conv.turns[2].role == "assistant" and conv.turns[2].value == answer
        # The training target: the tokens under the loss mask.
        ids, mask = batch["input_ids"][row], batch["loss_mask"][row]
        target = ids[mask].tolist()
        assert target == all_expected[conv_id]
        decoded = tokenizer.ids_to_text(target)
        assert tokenizer.ids_to_text(tokenizer.text_to_ids(answer)).strip() in decoded
        # One audio locator in the input, outside the loss.
        locator = tokenizer.text_to_ids(DEFAULT_AUDIO_LOCATOR_TAG)[-1]
        assert (ids == locator).sum() == 1 and not mask[ids == locator].any()


def test_audio_in_the_batch_is_the_source_audio(nemo_batches, source_cuts):
    by_id = {c.id: c for c in source_cuts}
    for conv_id, (batch, row) in conversations(nemo_batches).items():
        source = by_id[conv_id].load_audio()[0]
        n = int(batch["audio_lens"][row])
        assert n == len(source)
        np.testing.assert_allclose(batch["audios"][row, :n].numpy(), source, atol=1e-3)


def test_image_bytes_travel_in_the_conversation(nemo_batches, source_cuts):
    by_id = {c.id: c for c in source_cuts}
    for conv_id, (batch, row) in conversations(nemo_batches).items():
        conv = batch["conversations"][row]
        source_bytes = load_image_bytes(by_id[conv_id])
        # What a trainer does with NeMo's conversation: custom["image"] is a lhotse Array.
        assert np.asarray(conv.custom[fields.IMAGE].load()).tobytes() == source_bytes
        assert load_image_bytes(conv) == source_bytes
        assert conv.custom[fields.CONVERSATION_ID] == by_id[conv_id].custom[fields.CONVERSATION_ID]


def test_empty_question_makes_audio_the_whole_user_turn(tmp_path, source_cuts, tokenizer):
    batches = read_with_nemo(
        export_with_config(kept(source_cuts)[:2], tmp_path, question=""), tokenizer
    )
    convs = conversations(batches)
    assert len(convs) == 2
    for batch, row in convs.values():
        assert batch["conversations"][row].turns[0].value == ""
        assert batch["loss_mask"][row].any()
