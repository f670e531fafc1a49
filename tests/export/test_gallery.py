"""The report's static gallery: sampled clips per language and per reject reason, as cards with
inline image and audio in one self-contained ``report.html``."""

import base64
import copy
import io
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from click.testing import CliRunner
from lhotse import CutSet, Recording
from lhotse.testing.dummies import dummy_cut
from PIL import Image as PILImage

from lhotse_triplets import fields
from lhotse_triplets.bin.export_cmds import export
from lhotse_triplets.cuts import make_prompt_cut, with_audio, with_custom
from lhotse_triplets.export import export_report
from lhotse_triplets.export.gallery import IMAGE_SIZE, GallerySampler, word_diff
from lhotse_triplets.images import attach_image
from lhotse_triplets.testing.dialogues import dialogue_turn_cuts

from .test_shar import draw_image

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SPOKEN = "Is the cube red?"
HEARD = "is the cube bread"


def clip(workdir: Path, cut_id: str, language: str, voice: str, engine: str, **custom):
    """A synthesized, scored cut: 0.3 s of 24 kHz stereo WAV, a PNG image, texts, scores."""
    t = np.arange(7200) / 24000
    tone = 0.2 * np.sin(2 * np.pi * 300 * t)
    path = workdir / f"{cut_id}.wav"
    sf.write(path, np.stack([tone, tone], axis=1), 24000)
    recording = Recording.from_file(path, recording_id=cut_id)
    image = custom.pop("image", None) or draw_image(workdir / f"{cut_id}.png", seed=len(cut_id) % 7)
    values = {
        fields.USER_TEXT: "Is the cube red ?",
        fields.ANSWER: "No, it is blue.",
        fields.TTS_MODEL: engine,
        fields.ASR_TEXT: HEARD,
        fields.SIMILARITY: 0.8,
        fields.ERROR_RATE: 0.25,
        fields.MOS: 3.9,
        fields.REJECT_REASON: None,
        **custom,
    }
    prompt = make_prompt_cut(cut_id, SPOKEN, language, values)
    return attach_image(with_audio(prompt, voice, recording), str(image))


@pytest.fixture(scope="module")
def cuts(tmp_path_factory):
    """en and fr: 6 kept each over 2 voices x 2 engines; rejected: en 3 x low_similarity, one
    for low_similarity *and* low_mos, fr one high_error_rate; one image is large (1000 x 500)."""
    workdir = tmp_path_factory.mktemp("clips")
    big = workdir / "big.png"
    PILImage.new("RGB", (1000, 500), (10, 200, 10)).save(big)
    out = []
    for language in ("en", "fr"):
        for i in range(6):
            extra = {"image": big} if (language, i) == ("en", 0) else {}
            out.append(
                clip(workdir, f"k{i}-{language}", language, f"v{i % 2}", "ab"[i // 3], **extra)
            )
    for i in range(3):
        out.append(clip(workdir, f"r{i}-en", "en", "v0", "a", reject_reason="low_similarity"))
    out.append(clip(workdir, "r3-en", "en", "v1", "b", reject_reason="low_similarity,low_mos"))
    out.append(clip(workdir, "r4-fr", "fr", "v0", "a", reject_reason="high_error_rate"))
    return out


class Page(HTMLParser):
    """The cards of a report page by section, and every ``src``/``href`` value."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.sections: dict[str, list[str]] = {}
        self.sources: list[tuple[str, str]] = []
        self.links: list[str] = []
        self._section = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "data-section" in attrs:
            self._section = attrs["data-section"]
            self.sections[self._section] = []
        if tag == "div" and (attrs.get("class") or "").startswith("card "):
            self.sections[self._section].append(attrs["data-cut-id"])
        if "src" in attrs:
            self.sources.append((tag, attrs["src"]))
        if "href" in attrs:
            self.links.append(attrs["href"])

    def counts(self) -> dict[str, int]:
        return {name: len(ids) for name, ids in self.sections.items()}


def report_page(result) -> str:
    return Path(result.details["html"]).read_text(encoding="utf-8")


def decoded(uri: str) -> bytes:
    header, payload = uri.split(",", 1)
    assert header.startswith("data:") and header.endswith(";base64")
    return base64.b64decode(payload)


def test_cards_per_language_and_per_reason_spread_over_voices_and_engines(cuts, tmp_path):
    result = export_report(CutSet(cuts), tmp_path / "a", samples=2)
    page = Page(report_page(result))
    expected = {
        "kept:en": 2,
        "kept:fr": 2,
        "rejected:low_similarity": 2,
        "rejected:low_mos": 1,
        "rejected:high_error_rate": 1,
    }
    assert page.counts() == expected
    assert result.details["gallery"] == {
        "kept": {"en": 2, "fr": 2},
        "rejected": {"high_error_rate": 1, "low_mos": 1, "low_similarity": 2},
    }
    by_id = {c.id: c for c in cuts}
    for section in ("kept:en", "kept:fr"):
        groups = {
            (by_id[i].supervisions[0].speaker, by_id[i].custom[fields.TTS_MODEL])
            for i in page.sections[section]
        }
        assert len(groups) == 2  # two different voice/engine groups, not two of one
    assert page.sections["rejected:low_mos"] == ["r3-en"]
    md = Path(result.paths["report"]).read_text(encoding="utf-8")
    assert "7 sample clips" in md and "report.html" in md
    # Deterministic: the same cuts in another order give the same cards.
    again = Page(report_page(export_report(CutSet(cuts[::-1]), tmp_path / "b", samples=2)))
    assert again.sections == page.sections


def test_page_is_self_contained_and_its_media_decode(cuts, tmp_path):
    text = report_page(export_report(CutSet(cuts), tmp_path, samples=6))  # every clip
    page = Page(text)
    for needle in ('src="http', "src='http", 'href="http', "href='http", "<link", "url("):
        assert needle not in text
    assert page.links == []
    assert page.sources and all(src.startswith("data:") for _, src in page.sources)
    audio = [src for tag, src in page.sources if tag == "audio"]
    images = [src for tag, src in page.sources if tag == "img"]
    assert len(audio) == sum(page.counts().values()) == 18  # r3-en: in two reasons
    assert len(set(sum(page.sections.values(), []))) == len(cuts) == 17
    for uri in audio:
        samples, rate = sf.read(io.BytesIO(decoded(uri)))
        assert uri.startswith("data:audio/flac;base64,")
        assert rate == 16000 and samples.ndim == 1 and len(samples) == 4800
    sizes = set()
    for uri in images:
        img = PILImage.open(io.BytesIO(decoded(uri)))
        img.load()
        sizes.add(img.size)
    assert (IMAGE_SIZE, IMAGE_SIZE // 2) in sizes  # the 1000 x 500 image, downscaled
    assert (64, 48) in sizes  # small images are not enlarged
    assert len(images) > 18  # the cards' images and the score plots (inline too)


def test_diff_marks_a_substituted_word(cuts, tmp_path):
    assert word_diff(SPOKEN, HEARD, "en") == "is the cube <del>red?</del> <ins>bread</ins>"
    assert word_diff("Is the cube RED?", "is the cube red", "en") == "is the cube red"
    assert word_diff("猫が好き", "猫は好き", "ja") == "猫<del>が</del><ins>は</ins>好き"
    text = report_page(export_report(CutSet(cuts), tmp_path, samples=1))
    assert "<dd>is the cube <del>red?</del> <ins>bread</ins></dd>" in text
    for shown in ("Is the cube red ?", "No, it is blue.", "similarity 0.800", "rejected: "):
        assert shown in text


def test_no_gallery_without_samples(cuts, tmp_path):
    result = export_report(CutSet(cuts), tmp_path)
    text = report_page(result)
    assert "class='card" not in text and "Gallery" not in text
    assert all(src.startswith("data:") for _, src in Page(text).sources)  # plots inline
    assert "sample clips" not in Path(result.paths["report"]).read_text(encoding="utf-8")
    assert result.details["gallery"] == {"kept": {}, "rejected": {}}


@pytest.mark.parametrize("value", [-1, "x", 1.5])
def test_bad_samples_is_a_one_line_error(cuts, tmp_path, value):
    with pytest.raises(ValueError) as e:
        export_report(CutSet(cuts), tmp_path / "e", samples=value)
    assert str(e.value).startswith("export.samples: must be an integer >= 0")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("value", ["-1", "x"])
def test_bad_samples_on_the_command_line(cuts, tmp_path, value):
    CutSet(cuts).to_file(tmp_path / "cuts.jsonl.gz")
    args = ["report", str(tmp_path / "cuts.jsonl.gz"), str(tmp_path / "e"), f"samples={value}"]
    result = CliRunner().invoke(export, args)
    assert result.exit_code != 0
    message = str(result.exception)
    assert "export.samples" in message and value in message and "\n" not in message
    assert not (tmp_path / "e" / "report").exists()


def test_command_line_samples(cuts, tmp_path):
    CutSet(cuts).to_file(tmp_path / "cuts.jsonl.gz")
    args = ["report", str(tmp_path / "cuts.jsonl.gz"), str(tmp_path / "e"), "samples=1"]
    result = CliRunner().invoke(export, args)
    assert result.exit_code == 0, result.output
    text = (tmp_path / "e" / "report" / "report.html").read_text(encoding="utf-8")
    assert Page(text).counts()["kept:en"] == 1


def test_dialogue_turns_show_conversation_turn_and_role(tmp_path):
    turns = dialogue_turn_cuts(tmp_path / "w", {"c1": 3, "c2": 2}, missing={("c1", 2)})
    text = report_page(export_report(turns, tmp_path / "e", samples=10))
    assert Page(text).counts() == {"kept:en": 5}
    assert "c1 · turn 1 · assistant" in text and "c2 · turn 0 · user" in text
    assert "<img class='thumb'" not in text  # turns have no image
    assert text.count("<audio") == 4 and text.count("no audio") == 1  # c1 turn 2 is text only


def test_unreadable_image_is_recorded_and_the_card_still_shown(cuts, tmp_path):
    broken = attach_image(cuts[0], str(draw_image(tmp_path / "gone.png", seed=1)))
    (tmp_path / "gone.png").unlink()
    failures = []
    result = export_report([broken], tmp_path / "e", samples=1, on_failure=failures.append)
    text = report_page(result)
    assert Page(text).counts() == {"kept:en": 1} and "<audio" in text
    assert [(f.cut_id, f.stage) for f in failures] == [(broken.id, "report")]
    assert "gallery image" in failures[0].reason and "gallery image" in text


def test_sampler_holds_at_most_n_per_section_and_group():
    sampler = GallerySampler(3)
    cuts = (
        with_custom(dummy_cut(i), **{fields.REJECT_REASON: "low_mos" if i % 4 == 0 else None})
        for i in range(2000)
    )
    peak = 0
    for _ in sampler.watch(cuts):
        peak = max(peak, sampler.held)
    assert peak == 6  # one language and voice: 3 kept + 3 rejected, never more
    counts = sampler.gallery().counts()
    assert counts == {"kept": {"und": 3}, "rejected": {"low_mos": 3}}


def test_run_config_export_samples(tmp_path):
    from lhotse_triplets.config import load_config
    from lhotse_triplets.pipeline import run_pipeline
    from lhotse_triplets.testing.configs import DUMMY_RUN

    cfg = copy.deepcopy(DUMMY_RUN)
    cfg["export"] = {"formats": ["report"], "samples": 1}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    run_pipeline(load_config(tmp_path / "run.yaml"), tmp_path / "run", progress=False)
    report = tmp_path / "run" / "export" / "report"
    page = Page((report / "report.html").read_text(encoding="utf-8"))
    assert page.counts() == {"kept:en": 1, "kept:fr": 1}  # the dummy gate keeps every clip
    assert "<dt>ASR</dt>" in (report / "report.html").read_text(encoding="utf-8")
    assert any(src.startswith("data:audio/flac") for tag, src in page.sources if tag == "audio")
    assert "sample clips" in (report / "report.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_gallery_in_headless_chromium(cuts, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip("chromium is not installed")
    result = export_report(CutSet(cuts), tmp_path / "e", samples=2)
    shots = Path(os.environ.get("LT_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--autoplay-policy=no-user-gesture-required", "--no-sandbox"],
        )
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        requests = []
        page.on("request", lambda r: requests.append(r.url))
        page.goto(Path(result.details["html"]).as_uri())
        page.wait_for_selector(".card")
        assert page.locator(".card").count() == 8
        assert page.evaluate(
            "() => [...document.querySelectorAll('img.thumb')].every(i => i.naturalWidth > 0)"
        )
        page.evaluate(
            """() => { const a = document.querySelector('.card audio'); window.__played = false;
               a.addEventListener('playing', () => { window.__played = true; }); a.play(); }"""
        )
        page.wait_for_function("() => window.__played", timeout=15000)
        page.locator(".card").first.scroll_into_view_if_needed()
        page.screenshot(path=str(shots / "report.png"), full_page=True)
        page.locator("img.thumb").first.click()
        assert page.locator("#overlay.open").is_visible()
        page.keyboard.press("Escape")
        assert not page.locator("#overlay.open").is_visible()
        browser.close()
    assert all(url.startswith(("file:", "data:")) for url in requests)
    assert (shots / "report.png").read_bytes()[:4] == b"\x89PNG"
