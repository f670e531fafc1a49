"""The recipe registry and the ``prepare`` CLI generated from it."""

import io
import json
from pathlib import Path
from typing import Literal

import PIL.Image
import pytest
from click.testing import CliRunner
from lhotse import CutSet
from lhotse.utils import Pathlike

from lhotse_triplets import fields
from lhotse_triplets.bin.prepare_cmds import prepare, recipe_command
from lhotse_triplets.cuts import make_prompt_cut
from lhotse_triplets.errors import Failure
from lhotse_triplets.images import load_image_bytes
from lhotse_triplets.recipes import (
    RECIPES,
    available_recipes,
    get_recipe,
    prepare_llava_instruct,
    prepare_sample,
    recipe,
    registry,
)
from lhotse_triplets.recipes.utils import prepare_manifest


def prepare_toy_turns(
    corpus_dir: Pathlike,
    output_dir: Pathlike | None = None,
    *,
    part: Literal["train", "dev"] = "train",
    languages: list[str] | None = None,
    lowercase: bool = False,
    limit: int | None = None,
) -> CutSet:
    """Toy turns (``<id><TAB><text>`` lines) -> prompt cuts, one per language.

    :param corpus_dir: folder with ``<part>.tsv``.
    :param output_dir: where the manifest goes.
    :param part: which file to read.
    :param languages: a cut per language (repeat the option); default ``en``.
    :param lowercase: lowercase the
        text first.
    :param limit: read only the first ``limit`` lines.
    """
    languages = languages or ["en"]
    lines = (Path(corpus_dir) / f"{part}.tsv").read_text().splitlines()[:limit]

    def items():
        for number, line in enumerate(lines):
            conversation_id, tab, text = line.partition("\t")
            if not tab:
                yield Failure(f"line-{number}", "prepare", "no tab")
                continue
            text = text.lower() if lowercase else text
            yield [
                make_prompt_cut(f"{conversation_id}-{lang}", text, lang, {}) for lang in languages
            ]

    params = dict(part=part, languages=languages, lowercase=lowercase, limit=limit)
    return prepare_manifest(
        items(), corpus="toy_turns", part=part, output_dir=output_dir, params=params
    )


@pytest.fixture
def toy_recipe(monkeypatch):
    """``toy_turns`` registered with the decorator, for this test only."""
    available_recipes()  # the built-ins are in the registry before it is swapped for a copy
    monkeypatch.setattr(registry.RECIPES, "_items", dict(registry.RECIPES._items))
    return recipe("toy_turns", short={"limit": "l"})(prepare_toy_turns)


@pytest.fixture
def toy_corpus(tmp_path):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "dev.tsv").write_text("a\tHow MANY?\nbroken line\nb\tWhat Color?\n")
    return tmp_path / "corpus"


def _invoke(*args: str):
    result = CliRunner().invoke(prepare, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout  # the progress bar goes to stderr


def _last_line(output: str) -> str:
    return output.strip().splitlines()[-1]


# --- the registry ---------------------------------------------------------------------------------


def test_builtin_recipes_are_registered():
    assert available_recipes() == [
        "deepdialogue",
        "instructs2s",
        "llava_instruct",
        "multidialog",
        "sample",
        "speakers",
    ]
    assert get_recipe("llava_instruct") is prepare_llava_instruct
    assert RECIPES["sample"] is prepare_sample and "sample" in RECIPES
    assert sorted(RECIPES) == available_recipes() and len(RECIPES) == 6
    with pytest.raises(ValueError, match="known recipes: deepdialogue, instructs2s, llava_"):
        get_recipe("llava-instruct")
    with pytest.raises(KeyError):
        RECIPES["nope"]


def test_registered_recipe_runs_through_get_recipe(toy_recipe, toy_corpus, tmp_path):
    assert "toy_turns" in RECIPES and "toy_turns" in available_recipes()
    run = get_recipe("toy_turns")
    assert run is prepare_toy_turns
    cuts = run(toy_corpus, tmp_path / "out", part="dev", languages=["en", "fr"])
    assert [c.id for c in cuts] == ["a-en", "a-fr", "b-en", "b-fr"]
    assert [c.supervisions[0].language for c in cuts] == ["en", "fr", "en", "fr"]
    failed = (tmp_path / "out" / "toy_turns_failed_dev.jsonl").read_text().splitlines()
    assert [json.loads(line)["cut_id"] for line in failed] == ["line-1"]


# --- the generated CLI ----------------------------------------------------------------------------


def test_cli_lists_every_registered_recipe(toy_recipe):
    output = _invoke("--help")
    assert "Import a corpus into cuts" in output
    for name in ("llava_instruct", "sample", "toy_turns", "deepdialogue", "instructs2s"):
        assert name in output
    assert "Toy turns (<id><TAB><text> lines) -> prompt cuts" in output


def test_cli_help_of_a_registered_recipe(toy_recipe):
    output = _invoke("toy-turns", "--help")
    assert "Usage: prepare toy_turns [OPTIONS] CORPUS_DIR OUTPUT_DIR" in output
    assert "Toy turns (<id><TAB><text> lines) -> prompt cuts, one per language." in output
    assert "CORPUS_DIR: folder with <part>.tsv." in output
    assert "--part [train|dev]" in output
    assert "which file to read." in output
    assert "--languages TEXT" in output
    assert "--lowercase" in output and "--no-lowercase" not in output
    assert "lowercase the text first." in output  # a :param: entry over two lines
    assert "-l, --limit INTEGER" in output


def test_cli_runs_a_registered_recipe(toy_recipe, toy_corpus, tmp_path):
    out = tmp_path / "out"
    args = ["toy_turns", str(toy_corpus), str(out), "--part", "dev", "--languages", "de"]
    output = _invoke(*args, "--languages", "fr", "--lowercase", "-l", "1")
    cuts = CutSet.from_file(out / "toy_turns_cuts_dev.jsonl.gz")
    assert [(c.id, c.supervisions[0].text) for c in cuts] == [
        ("a-de", "how many?"),
        ("a-fr", "how many?"),
    ]
    assert (
        _last_line(output) == f"Prepared 2 cuts in {out / 'toy_turns_cuts_dev.jsonl.gz'} (0 failed)"
    )
    # defaults come from the signature
    output = _invoke("toy-turns", str(toy_corpus), str(tmp_path / "defaults"), "--part", "dev")
    assert [
        c.id for c in CutSet.from_file(tmp_path / "defaults" / "toy_turns_cuts_dev.jsonl.gz")
    ] == [
        "a-en",
        "b-en",
    ]
    failed = tmp_path / "defaults" / "toy_turns_failed_dev.jsonl"
    assert _last_line(output).endswith(f"(1 failed, see {failed})")
    result = CliRunner().invoke(prepare, ["toy_turns", str(toy_corpus), str(out), "--part", "x"])
    assert result.exit_code == 2 and "'x' is not one of 'train', 'dev'" in result.output


def test_unknown_command_and_untyped_parameter():
    result = CliRunner().invoke(prepare, ["nope", "out"])
    assert result.exit_code == 2 and "No such command 'nope'" in result.output

    def prepare_odd(output_dir: str, *, table: dict | None = None) -> CutSet:
        """Odd."""

    with pytest.raises(TypeError, match="'table': no command-line type"):
        recipe_command("odd", prepare_odd)


def test_cli_sample_with_todays_flags(tmp_path):
    output = _invoke("sample", str(tmp_path), "-n", "3", "--seed", "0")
    cuts = CutSet.from_file(tmp_path / "llava_instruct_cuts_train.jsonl.gz")
    assert {c.custom[fields.CONVERSATION_ID] for c in cuts} == {
        "sample-000000",
        "sample-000001",
        "sample-000002",
    }
    manifest = tmp_path / "llava_instruct_cuts_train.jsonl.gz"
    assert _last_line(output) == f"Prepared {len(cuts)} cuts in {manifest} (0 failed)"
    python = prepare_sample(tmp_path / "python", num_conversations=3, seed=0)
    assert [c.supervisions[0].text for c in python] == [c.supervisions[0].text for c in cuts]


def _png(color) -> bytes:
    buf = io.BytesIO()
    PIL.Image.new("RGB", (8, 6), color).save(buf, format="PNG")
    return buf.getvalue()


def test_cli_llava_instruct_with_todays_flags(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rows = []
    for i in range(3):
        (images / f"r{i}.png").write_bytes(_png((10 * i, 0, 0)))
        turns = [{"from": "human", "value": f"<image>\nQ{i}?"}, {"from": "gpt", "value": f"A{i}."}]
        rows.append(json.dumps({"id": f"r{i}", "conversations": turns}))
    source = tmp_path / "rows.jsonl"
    source.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    output = _invoke(
        "llava-instruct",
        str(source),
        str(out),
        "--image-dir",
        str(images),
        "--config",
        "CLEVR",
        "--split",
        "dev",
        "--limit",
        "2",
        "--language",
        "fr",
    )
    manifest = out / "llava_instruct_cuts_dev.jsonl.gz"
    cuts = CutSet.from_file(manifest)
    assert [c.id for c in cuts] == ["r0-t0", "r1-t0"]
    assert {c.custom[fields.DATA_SOURCE] for c in cuts} == {"CLEVR"}
    assert {c.supervisions[0].language for c in cuts} == {"fr"}
    assert load_image_bytes(cuts[1]) == (images / "r1.png").read_bytes()
    assert _last_line(output) == f"Prepared 2 cuts in {manifest} (0 failed)"
    assert (out / "llava_instruct_failed_dev.jsonl").read_text() == ""
    # the underscore spelling of the command works too, and a missing image folder is an error
    result = CliRunner().invoke(
        prepare, ["llava_instruct", str(source), str(out), "--image-dir", str(tmp_path / "no")]
    )
    assert isinstance(result.exception, NotADirectoryError)
