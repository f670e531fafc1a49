"""The shared seams of issue 10: safe names from ids, paths kept inside their roots, speakable
text, and redaction of secrets and cloning references."""

import os

import pytest

from lhotse_triplets.backends.registry import BackendSpec
from lhotse_triplets.errors import ItemError, reason_code
from lhotse_triplets.paths import MAX_NAME_BYTES, inside, is_safe_name, safe_name
from lhotse_triplets.redact import REDACTED, redact, without_redacted
from lhotse_triplets.text import length_reason, unspeakable_reason

HOSTILE_IDS = [
    "../../x/ESCAPED",
    "/etc/passwd",
    "..",
    ".",
    ".hidden",
    "-rf",
    "a" * 300,
    "日本" * 100,
    "{'x': 1}-t0",
    "a b\tc\nd",
    "nul\x00byte",
    "a/b",
    "a_b",
    "",
]


@pytest.mark.parametrize("cut_id", ["clevr_1-t0-en-v0", "row-7", "日本語-t0", "a.b-c_d"])
def test_plain_ids_are_their_own_file_names(cut_id):
    assert is_safe_name(cut_id)
    assert safe_name(cut_id) == cut_id


def test_hostile_ids_become_short_distinct_plain_names():
    names = [safe_name(i) for i in HOSTILE_IDS]
    assert len(set(names)) == len(names), "two ids share a file name"
    for cut_id, name in zip(HOSTILE_IDS, names):
        assert "/" not in name and "\x00" not in name, (cut_id, name)
        assert not name.startswith((".", "-")), (cut_id, name)
        assert len(name.encode()) <= MAX_NAME_BYTES, (cut_id, name)
        assert safe_name(cut_id) == name  # deterministic
    # Changed ids keep their readable part and carry a digest; unchanged names never have one.
    assert safe_name("../../x/ESCAPED") == "x_ESCAPED~56ca515935c7"
    assert safe_name("a/b") != safe_name("a_b") == "a_b"


def test_inside_confines_relative_absolute_and_symlinked_paths(tmp_path):
    root = tmp_path / "images"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "a.png").write_bytes(b"x")
    (tmp_path / "secret.png").write_bytes(b"s")
    os.symlink(tmp_path / "secret.png", root / "link.png")
    assert inside("sub/a.png", root) == (root / "sub" / "a.png").resolve()
    for bad in ("../secret.png", str(tmp_path / "secret.png"), "link.png", "sub/../../secret.png"):
        with pytest.raises(ItemError) as e:
            inside(bad, root, what="image")
        assert reason_code(e.value.reason) == "outside_root"
        assert "image" in e.value.reason
    assert inside("link.png", root, allow_outside=True) == (tmp_path / "secret.png").resolve()


@pytest.mark.parametrize(
    "text, language, code",
    [
        ("\u200b\u200b", "en", "no_speakable_text"),
        ("😀😀😀", "en", "no_speakable_text"),
        ("...", "fr", "no_speakable_text"),
        ("bell\x07", "en", "control_characters"),
        ("What colour is the cube?", "ja", "wrong_script"),
        ("あかい立方体", "zh", "wrong_script"),
        ("Какого цвета куб?", "de", "wrong_script"),
        ("What colour is the cube?", "en", None),
        ("赤い立方体はいくつ？", "ja", None),
        ("红色的立方体有几个？", "zh", None),
        ("Line one\nline two\t!", "en", None),
    ],
)
def test_unspeakable_text_has_a_named_reason(text, language, code):
    reason = unspeakable_reason(text, language)
    assert (reason_code(reason) if reason else None) == code


def test_length_caps():
    assert length_reason("x" * 10, 10) is None
    assert reason_code(length_reason("x" * 11, 10)) == "prompt_too_long"
    assert reason_code(length_reason("x" * 11, 10, "answer_too_long")) == "answer_too_long"
    assert length_reason("x" * 10**6, None) is None


def test_redact_hides_secrets_and_references_but_keeps_the_rest():
    refs = {"anna": {"audio": "/data/anna.wav", "text": "Hello, I am Anna."}}
    cfg = {
        "tts": {
            "name": "openai_speech",
            "options": {"api_key": "sk-SECRET", "max_tokens": 5, "references": refs},
        },
        "hf_token": "hf_SECRET",
        "list": [{"password": "p"}, 3],
        "voice": "anna",
    }
    out = redact(cfg)
    text = repr(out)
    for leaked in ("sk-SECRET", "hf_SECRET", "anna.wav", "Hello, I am Anna", "'p'"):
        assert leaked not in text
    assert out["tts"]["options"]["api_key"] == REDACTED
    assert out["tts"]["options"]["max_tokens"] == 5
    assert out["voice"] == "anna" and out["list"][1] == 3
    assert cfg["tts"]["options"]["api_key"] == "sk-SECRET"  # the input is not modified
    other = redact({"references": {"anna": {"audio": "/data/other.wav", "text": "Hi"}}})
    assert other["references"] != out["tts"]["options"]["references"]  # a change is noticed
    assert without_redacted(out["tts"]["options"]) == {"max_tokens": 5}


def test_backend_specs_print_without_secrets():
    spec = BackendSpec("tts", "openai_speech", {"api_key": "sk-SECRET", "base_url": "http://h"})
    assert "sk-SECRET" not in repr(spec) and "http://h" in repr(spec)
    assert spec.options["api_key"] == "sk-SECRET"  # still built with it
