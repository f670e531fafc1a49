import math

import numpy as np
import pytest

from lhotse_triplets.metrics import (
    cosine,
    error_rate,
    is_finite_number,
    non_finite,
    normalize_text,
    unit_rows,
    uses_cer,
)


@pytest.mark.parametrize(
    "text, language, expected",
    [
        ("Is the cube RED?", "en", "is the cube red"),
        ("  What   colour, exactly... is it?! ", "en", "what colour exactly is it"),
        ("There are 3 cubes and 12 balls.", "en", "there are 3 cubes and 12 balls"),
        ("L'objet est-il rouge ?", "fr", "l objet est il rouge"),
        ("Ist der Würfel groß?", "de", "ist der würfel groß"),
        ("「赤い」立方体は、何個ありますか？", "ja", "赤い立方体は何個ありますか"),
        ("緑色の大きな物体が 青い物体と", "ja", "緑色の大きな物体が青い物体と"),
        ("有几个红色的球？（请数一数）", "zh", "有几个红色的球请数一数"),
        ("有１２个球。", "zh", "有12个球"),
    ],
)
def test_normalize_text(text, language, expected):
    if language == "zh":
        pytest.importorskip("zhconv")
    assert normalize_text(text, language) == expected


def test_traditional_and_simplified_chinese_are_equal_after_normalisation():
    pytest.importorskip("zhconv")
    traditional = "這個紅色的球體是什麼顏色？"
    simplified = "这个红色的球体是什么颜色"
    assert normalize_text(traditional, "zh") == normalize_text(simplified, "zh")
    assert normalize_text(traditional, "zh-TW") == simplified
    assert error_rate(simplified, traditional, "zh") == (0.0, 0.0)


def test_punctuation_and_case_are_not_errors():
    assert error_rate("Is it red?", "is it red", "en") == (0.0, 0.0)
    assert error_rate("Y a-t-il un cube ?", "Y a-t-il un cube.", "fr") == (0.0, 0.0)
    assert error_rate("赤いですか？", "赤いですか。", "ja") == (0.0, 0.0)


def test_known_error_rates():
    wer, cer = error_rate("a b c d", "a x c d", "en")
    assert wer == pytest.approx(1 / 4)
    assert cer == pytest.approx(1 / 7)
    wer, cer = error_rate("the cat sat on the mat", "the cat sit on mat", "en")
    assert wer == pytest.approx(2 / 6)
    # Languages written without spaces: errors per character, and wer == cer.
    assert error_rate("赤い球です", "赤い玉です", "ja") == pytest.approx((1 / 5, 1 / 5))
    # Insertions are not capped: a looping transcript scores above 1.
    assert error_rate("red", "red red red", "en")[0] == pytest.approx(2.0)


def test_empty_texts():
    assert error_rate("", "", "en") == (0.0, 0.0)
    assert error_rate("?!", "", "en") == (0.0, 0.0)  # nothing left after normalisation
    assert error_rate("", "hello", "en") == (1.0, 1.0)
    assert error_rate("hello there", "", "en") == (1.0, 1.0)
    assert error_rate("いいえ", "", "ja") == (1.0, 1.0)


@pytest.mark.parametrize("language", ["ja", "zh", "ko", "th", "zh-TW", "JA"])
def test_uses_cer(language):
    assert uses_cer(language)


@pytest.mark.parametrize("language", ["en", "fr", "de", "en-US", None])
def test_uses_wer(language):
    assert not uses_cer(language)


def test_cosine():
    assert cosine(np.array([1.0, 2.0]), np.array([2.0, 4.0])) == pytest.approx(1.0)
    assert cosine(np.array([1.0, 0.0]), np.array([0.0, 3.0])) == pytest.approx(0.0)
    assert cosine(np.array([1.0, 1.0]), np.array([-1.0, -1.0])) == pytest.approx(-1.0)
    assert cosine(np.zeros(3), np.ones(3)) == 0.0
    rows = cosine(np.array([[1.0, 0.0], [1.0, 1.0]]), np.array([[1.0, 0.0], [1.0, 0.0]]))
    assert rows.shape == (2,)
    np.testing.assert_allclose(rows, [1.0, np.sqrt(0.5)])
    with pytest.raises(ValueError, match="same shape"):
        cosine(np.ones(3), np.ones(4))


def test_unit_rows():
    rows = unit_rows(np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 1.0]]), ["a", "b", "  "])
    assert rows.dtype == np.float32
    np.testing.assert_allclose(rows, [[0.6, 0.8], [0.0, 0.0], [0.0, 0.0]], rtol=1e-6)


def test_cosine_of_non_finite_vectors_is_nan_not_a_plausible_score():
    assert math.isnan(cosine(np.array([np.nan, 1.0]), np.array([1.0, 1.0])))
    rows = cosine(np.array([[np.inf, 0.0], [1.0, 0.0]]), np.array([[1.0, 0.0], [1.0, 0.0]]))
    assert math.isnan(rows[0]) and rows[1] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("value", "finite"),
    [
        (0.5, True),
        (3, True),
        (np.float32(2.5), True),
        (math.nan, False),
        (-math.inf, False),
        (np.float32("nan"), False),
        (None, False),
        ("4.0", False),
        (True, False),
    ],
)
def test_is_finite_number(value, finite):
    assert is_finite_number(value) is finite


def test_non_finite_names_every_bad_score():
    assert non_finite({"wer": 0.0, "mos": 3.2}) is None
    assert non_finite({"wer": 0.0, "mos": math.nan, "similarity": math.inf}) == (
        "mos=nan, similarity=inf"
    )
    assert non_finite({"mos": None}) == "mos=None"
