"""The rule-based rephraser on the 1,000 reference CLEVR conversations: every rewrite validated."""

import json
import time
from collections import Counter

import pytest
from lhotse import CutSet

from lhotse_triplets import fields
from lhotse_triplets.recipes import prepare_llava_instruct
from lhotse_triplets.rephrasing.spoken import clean_supplied
from lhotse_triplets.rephrasing.translations import read_translation_files
from lhotse_triplets.testing import REFERENCE_DATA
from lhotse_triplets.transforms.rephrase import Rephrase, rephrase_report

REFERENCE = REFERENCE_DATA / "clevr" / "clevr_first1000_raw.jsonl"
TTS_INPUTS = REFERENCE_DATA / "tts_inputs"


@pytest.fixture(scope="module")
def clevr(tmp_path_factory):
    if not REFERENCE.is_file():
        pytest.skip(f"reference data not found: {REFERENCE}")
    out = tmp_path_factory.mktemp("clevr")
    return prepare_llava_instruct(REFERENCE, out).to_eager()


@pytest.mark.slow
def test_every_english_rewrite_passes_validation(clevr):
    start = time.perf_counter()
    out = Rephrase(["en"]).apply(clevr).to_eager()  # USE multilingual meaning check included
    seconds = time.perf_counter() - start
    assert len(out) == len(clevr) == 1000
    report = rephrase_report(out)
    print(f"\n1000 CLEVR prompts: {seconds:.1f} s (rules + validation)\n{report}")
    assert report.kept_by == {"rules": 1000} and not report.reasons
    changed = 0
    for src, cut in zip(clevr, out, strict=True):
        assert cut.id == f"{src.id}-en"
        assert cut.custom[fields.REPHRASE_REJECTED] == []
        assert cut.custom[fields.REPHRASE_SIMILARITY] >= 0.8  # measured minimum: 0.82
        # <image> handling: removed from the spoken text, kept in placeholders, like the input.
        text = cut.supervisions[0].text
        assert "<image>" not in text and "\n" not in text
        assert cut.custom[fields.PLACEHOLDERS] == src.custom[fields.PLACEHOLDERS] == ["<image>"]
        # Only the spoken text changes.
        assert cut.custom[fields.USER_TEXT] == src.custom[fields.USER_TEXT]
        assert cut.custom[fields.ANSWER] == src.custom[fields.ANSWER]
        assert cut.custom[fields.CONVERSATION_ID] == src.custom[fields.CONVERSATION_ID]
        changed += text != src.supervisions[0].text
    assert changed > 700  # the written forms are common: most prompts are rewritten


def test_translation_files_join_on_conversation_id(clevr):
    table = read_translation_files([TTS_INPUTS], skip_languages=["en"])
    # hf_id == uid == the CLEVR row id; each of the 1000 ids has exactly one language there.
    assert len(table) == 800 and all(turn == 0 for _, turn in table)
    rows = {json.loads(line)["id"] for line in REFERENCE.read_text().splitlines()}
    assert {cid for cid, _ in table} <= rows
    assert table[("000000", 0)]["fr"].startswith("<image>\nCombien de cylindres")

    failures = []
    stage = Rephrase(["fr", "de", "ja", "zh"], translation_files=[TTS_INPUTS])
    out = stage.apply(clevr, on_failure=failures.append).to_eager()
    by_language = Counter(c.supervisions[0].language for c in out)
    assert by_language == {"fr": 200, "de": 200, "ja": 200, "zh": 200}
    assert len(failures) == 4 * 800 and all("no " in f.reason for f in failures)
    fr = next(c for c in out if c.id == "000000-t0-fr")
    assert fr.supervisions[0].text == clean_supplied(table[("000000", 0)]["fr"], "fr")
    assert "<image>" not in fr.supervisions[0].text
    report = rephrase_report(out)
    assert report.kept_by == {"rules": 800} and not report.reasons, str(report)
    assert all(c.custom[fields.ANSWER] for c in out)


def test_in_cut_translations_win_over_files(clevr):
    cut = clevr[0].with_custom(fields.TRANSLATIONS, {"fr": "Combien de cylindres en métal ?"})
    out = Rephrase(["fr"], translation_files=[TTS_INPUTS]).apply(CutSet([cut])).to_eager()
    assert out[0].supervisions[0].text == "Combien de cylindres en métal ?"
