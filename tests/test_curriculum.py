"""``curriculum``: conversations into token-length stages (Python API and CLI)."""

import json
import math
from collections import defaultdict

import pytest
from click.testing import CliRunner
from lhotse import CutSet

from lhotse_triplets import fields
from lhotse_triplets.bin.cli import Group
from lhotse_triplets.bin.curriculum_cmds import curriculum
from lhotse_triplets.curriculum import build_curriculum, manifest_name, parse_stages
from lhotse_triplets.errors import read_failures
from lhotse_triplets.testing.dialogues import dialogue_turn_cuts, turn_text
from lhotse_triplets.testing.tokenizers import make_hf_tokenizer, make_sentencepiece
from lhotse_triplets.tokenizers import load_tokenizer

CONVERSATIONS = {"c1": 4, "c2": 2, "c3": 6, "c4": 1}
#: Audio frames of the hand computation: NeMo's ceil(duration / token_equivalent_duration).
TED = 0.08


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A turn-cut manifest (c1's turn 3 text-only), and one with a conversation missing turn 0."""
    root = tmp_path_factory.mktemp("curriculum")
    cuts = dialogue_turn_cuts(root / "wav", CONVERSATIONS, missing={("c1", 3)})
    manifest = root / "turns.jsonl.gz"
    cuts.to_file(manifest)
    broken = dialogue_turn_cuts(root / "wav_bad", {"bad": 3})
    with_gap = root / "with_gap.jsonl.gz"
    CutSet.from_cuts([*cuts, *[c for c in broken if c.custom[fields.TURN] != 0]]).to_file(with_gap)
    texts = [turn_text(c, k) for c, n in CONVERSATIONS.items() for k in range(n)]
    return {
        "root": root,
        "cuts": cuts,
        "manifest": manifest,
        "with_gap": with_gap,
        "spm": make_sentencepiece(root / "spm", texts),
        "hf": make_hf_tokenizer(root / "hf", texts),
    }


def by_hand(cuts: CutSet, tokenizer_path, ted: float = TED) -> dict[str, int]:
    """Tokens per conversation: text tokens of each turn + ceil(duration / ted) with audio."""
    tok = load_tokenizer(tokenizer_path)
    totals: dict[str, int] = defaultdict(int)
    for cut in cuts:
        conv, turn = cut.custom[fields.CONVERSATION_ID], cut.custom[fields.TURN]
        totals[conv] += tok.count(turn_text(conv, turn))
        if cut.has_recording:
            totals[conv] += math.ceil(cut.duration / ted)
    return dict(totals)


def staged(out, limit) -> list:
    return list(CutSet.from_jsonl_lazy(out / manifest_name(limit)))


def stage_of(out, limits) -> dict[str, int]:
    """conversation id -> the stage limit its turns were written to (each in exactly one)."""
    where: dict[str, int] = {}
    for limit in limits:
        for cut in staged(out, limit):
            conv = cut.custom[fields.CONVERSATION_ID]
            assert where.setdefault(conv, limit) == limit, f"{conv} in two stages"
    return where


def test_parse_stages():
    assert parse_stages("16384, 8192") == [8192, 16384]
    for bad in ("0", "abc", "8,8", "", "8,-1", "1.5"):
        with pytest.raises(ValueError, match="--stages"):
            parse_stages(bad)


@pytest.mark.parametrize("kind", ["spm", "hf"])
def test_conversations_go_to_the_first_stage_they_fit(corpus, tmp_path, kind):
    totals = by_hand(corpus["cuts"], corpus[kind])
    assert totals["c4"] < totals["c2"] < totals["c1"] < totals["c3"]
    # Limits equal to c2's and c1's totals: a conversation fits a stage with tokens <= limit.
    limits = [totals["c2"], totals["c1"]]
    out = tmp_path / "cur"
    result = build_curriculum(corpus["manifest"], out, limits, corpus[kind], progress=False)

    assert stage_of(out, limits) == {"c4": limits[0], "c2": limits[0], "c1": limits[1]}
    for limit in limits:  # every turn, unchanged, in order
        cuts = staged(out, limit)
        for conv in {c.custom[fields.CONVERSATION_ID] for c in cuts}:
            turns = [
                c.custom[fields.TURN] for c in cuts if c.custom[fields.CONVERSATION_ID] == conv
            ]
            assert turns == list(range(CONVERSATIONS[conv]))
        original = {c.id: c.to_dict() for c in corpus["cuts"]}
        assert all(c.to_dict() == original[c.id] for c in cuts)
    too_long = [json.loads(line) for line in (out / "too_long.jsonl").read_text().splitlines()]
    assert too_long == [
        {
            "conversation_id": "c3",
            "language": "en",
            "tokens": totals["c3"],
            "turns": 6,
            "seconds": pytest.approx(sum(0.4 + 0.1 * k for k in range(6)), abs=1e-3),
        }
    ]
    summary = json.loads((out / "summary.json").read_text())
    assert summary == result.to_dict()
    first, second = summary["stages"]
    assert (first["limit"], first["conversations"], first["turns"]) == (limits[0], 2, 3)
    assert (first["tokens_min"], first["tokens_max"]) == (totals["c4"], totals["c2"])
    assert (second["conversations"], second["turns"], second["tokens_median"]) == (
        1,
        4,
        totals["c1"],
    )
    # c1's hours leave out its text-only turn 3.
    assert second["hours"] * 3600 == pytest.approx(0.4 + 0.5 + 0.6, abs=1e-3)
    assert summary["too_long"]["conversations"] == 1
    assert summary["failed"] == 0
    table = str(result)
    assert "too long" in table and str(limits[0]) in table


def test_conversation_with_a_gap_fails_and_the_others_are_staged(corpus, tmp_path):
    out = tmp_path / "cur"
    result = build_curriculum(corpus["with_gap"], out, [10**6], corpus["spm"], progress=False)
    failures = read_failures(out / "failed.jsonl")
    assert [(f.cut_id, f.stage, f.reason) for f in failures] == [
        ("bad-en", "curriculum", "turn_gaps: no turn 0")
    ]
    assert set(stage_of(out, [10**6])) == set(CONVERSATIONS)
    assert result.failed == 1 and result.stages[0].conversations == len(CONVERSATIONS)


def test_turn_without_text_fails_its_conversation(corpus, tmp_path):
    cuts = CutSet.from_cuts(
        c.map_supervisions(lambda s: s.transform_text(lambda _: "")) if c.id == "c2-t1" else c
        for c in corpus["cuts"]
    )
    out = tmp_path / "cur"
    build_curriculum(cuts, out, "1000000", corpus["spm"], progress=False)
    [failure] = read_failures(out / "failed.jsonl")
    assert failure.cut_id == "c2-en" and failure.reason.startswith("empty_text: turn 1 (c2-t1)")
    assert set(stage_of(out, [10**6])) == set(CONVERSATIONS) - {"c2"}


def test_stage_directory_input_gives_the_same_stages(corpus, tmp_path):
    stage_dir = tmp_path / "gate"
    stage_dir.mkdir()
    cuts = list(corpus["cuts"])
    CutSet.from_cuts(cuts[:5]).to_file(stage_dir / "cuts.000000.jsonl.gz")
    CutSet.from_cuts(cuts[5:]).to_file(stage_dir / "cuts.000001.jsonl.gz")
    totals = by_hand(corpus["cuts"], corpus["spm"])
    limits = [totals["c2"], totals["c3"]]
    build_curriculum(stage_dir, tmp_path / "a", limits, corpus["spm"], progress=False)
    build_curriculum(corpus["manifest"], tmp_path / "b", limits, corpus["spm"], progress=False)
    for limit in limits:
        assert [c.id for c in staged(tmp_path / "a", limit)] == [
            c.id for c in staged(tmp_path / "b", limit)
        ]
    assert stage_of(tmp_path / "a", limits)["c3"] == limits[1]


def run_cli(*args: str):
    root = Group("lhotse-triplets")
    root.add_command(curriculum)
    return CliRunner().invoke(root, ["curriculum", *map(str, args)])


def test_cli_writes_and_token_equivalent_duration_changes_totals(corpus, tmp_path):
    out = tmp_path / "cur"
    common = [corpus["manifest"], out, "--stages", "1000000", "--tokenizer", corpus["spm"]]
    first = run_cli(*common, "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["stages"][0]["conversations"] == len(CONVERSATIONS)

    again = run_cli(*common)  # like export: an existing output is not replaced silently
    assert again.exit_code == 1 and "--overwrite" in again.output

    coarse = run_cli(*common, "--overwrite", "--token-equivalent-duration", "0.04")
    assert coarse.exit_code == 0, coarse.output
    assert "too long" in coarse.output
    summary = json.loads((out / "summary.json").read_text())
    totals = by_hand(corpus["cuts"], corpus["spm"], ted=0.04)
    assert summary["token_equivalent_duration"] == 0.04
    assert summary["stages"][0]["tokens_max"] == totals["c3"]
    assert totals["c3"] > by_hand(corpus["cuts"], corpus["spm"])["c3"]
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize(
    "stages, tokenizer, message",
    [
        ("0", None, "'0' is not a positive whole number"),
        ("abc", None, "'abc' is not a positive whole number"),
        ("8,8", None, "8 given twice"),
        ("8192", "missing.model", "no such file or folder"),
    ],
)
def test_cli_bad_arguments_are_one_line_errors(corpus, tmp_path, stages, tokenizer, message):
    tokenizer = tmp_path / tokenizer if tokenizer else corpus["spm"]
    result = run_cli(
        corpus["manifest"], tmp_path / "out", "--stages", stages, "--tokenizer", tokenizer
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0]
    assert not (tmp_path / "out").exists()
