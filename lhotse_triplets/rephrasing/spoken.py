"""Text made speakable: numbers and symbols in words, per language (for TTS and rewrites).

Example::

    >>> verbalize("Add 2 cubes & 1 ball: 50% of 3.5 km.", "en")
    'Add two cubes and one ball: fifty percent of three point five kilometers.'
    >>> verbalize("有3个立方体吗？", "zh")
    '有三个立方体吗？'
"""

import re

#: ``<image>``, ``<video>``, ``<audio>``... : media placeholders of instruction corpora.
PLACEHOLDER = re.compile(r"<(?:image|video|audio|img)>", re.IGNORECASE)

_NUMBER = re.compile(r"(?<![A-Za-z0-9_.])(-?)(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(?![\d])")
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_FRACTION = re.compile(r"(?<![\w/])(\d{1,2})/(\d{1,2})(?![\w/])")
_PERCENT = {
    "en": " percent",
    "fr": " pour cent",
    "de": " Prozent",
    "ja": "パーセント",
}
_SYMBOLS = {
    "en": [(r"\s*&\s*", " and "), (r"\s+\+\s+", " plus "), (r"\s+=\s+", " equals ")],
    "fr": [(r"\s*&\s*", " et "), (r"\s+\+\s+", " plus "), (r"\s+=\s+", " égale ")],
    "de": [(r"\s*&\s*", " und "), (r"\s+\+\s+", " plus "), (r"\s+=\s+", " gleich ")],
}
#: English units after a number: symbol -> (singular, plural).
_EN_UNITS = {
    "km/h": ("kilometer per hour", "kilometers per hour"),
    "mph": ("mile per hour", "miles per hour"),
    "km": ("kilometer", "kilometers"),
    "cm": ("centimeter", "centimeters"),
    "mm": ("millimeter", "millimeters"),
    "kg": ("kilogram", "kilograms"),
    "lbs": ("pound", "pounds"),
    "°C": ("degree Celsius", "degrees Celsius"),
    "°F": ("degree Fahrenheit", "degrees Fahrenheit"),
    "°": ("degree", "degrees"),
}
_EN_UNIT = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)\s?(" + "|".join(re.escape(u) for u in _EN_UNITS) + r")(?![\w])"
)
_CURRENCY = re.compile(r"([$€£])(\d+(?:\.\d+)?)")
_CURRENCY_NAMES = {"$": ("dollar", "dollars"), "€": ("euro", "euros"), "£": ("pound", "pounds")}
_ZH_DIGITS = "零一二三四五六七八九"


def _num2words(number: int | float, language: str, to: str = "cardinal") -> str:
    from num2words import num2words

    return num2words(number, lang=language, to=to)


def zh_number(n: int) -> str | None:
    """Chinese numerals for 0..9999 (``None`` beyond: left as digits)."""
    if not 0 <= n <= 9999:
        return None
    if n < 10:
        return _ZH_DIGITS[n]
    out, zero = "", False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d = (n // value) % 10
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        out += ("" if (d == 1 and value == 10 and not out) else _ZH_DIGITS[d]) + unit
    return out


def number_words(n: int | float, language: str) -> str | None:
    """``n`` in words in ``language`` (en, fr, de, ja, zh), or ``None`` where that is not safe."""
    if language == "zh":
        if isinstance(n, float):
            whole, frac = str(n).split(".")
            w = zh_number(int(whole))
            return None if w is None else w + "点" + "".join(_ZH_DIGITS[int(c)] for c in frac)
        return zh_number(n)
    if language in ("en", "fr", "de", "ja"):
        if abs(n) >= 10**9:
            return None
        return _num2words(n, language)
    return None


def _sub_numbers(text: str, language: str) -> str:
    def repl(m: re.Match) -> str:
        sign, whole, frac = m.group(1), m.group(2).replace(",", ""), m.group(3)
        value: int | float = float(f"{whole}.{frac}") if frac else int(whole)
        words = number_words(value, language)
        if words is None:
            return m.group(0)
        if sign:
            minus = {"en": "minus", "fr": "moins", "de": "minus", "ja": "マイナス", "zh": "负"}
            words = minus[language] + ("" if language in ("ja", "zh") else " ") + words
        return words

    return _NUMBER.sub(repl, text)


def _english_special(text: str) -> str:
    def ordinal(m: re.Match) -> str:
        return _num2words(int(m.group(1)), "en", to="ordinal")

    def unit(m: re.Match) -> str:
        singular, plural = _EN_UNITS[m.group(2)]
        return f"{m.group(1)} {singular if m.group(1) == '1' else plural}"

    def currency(m: re.Match) -> str:
        singular, plural = _CURRENCY_NAMES[m.group(1)]
        return f"{m.group(2)} {singular if m.group(2) == '1' else plural}"

    def fraction(m: re.Match) -> str:
        a, b = int(m.group(1)), int(m.group(2))
        if b == 0:
            return m.group(0)
        if b == 2:
            denominator = "half" if a == 1 else "halves"
        else:
            denominator = _num2words(b, "en", to="ordinal") + ("" if a == 1 else "s")
        return f"{_num2words(a, 'en')} {denominator}"

    text = _ORDINAL.sub(ordinal, text)
    text = _CURRENCY.sub(currency, text)
    text = _EN_UNIT.sub(unit, text)
    text = _FRACTION.sub(fraction, text)
    return text


def verbalize(text: str, language: str) -> str:
    """``text`` with numbers, percentages and common symbols written as words.

    Only what is safe to say one way is changed: integers and decimals (Chinese up to 9999),
    ``%``, ``&``, ``+``/``=`` between spaces, and for English ordinals (``2nd``), currencies,
    simple fractions and common units. Anything else is left as it is.
    """
    if language == "en":
        text = _english_special(text)
    percent = _PERCENT.get(language)
    if language == "zh":
        text = re.sub(r"(\d+(?:\.\d+)?)\s*[%％]", r"百分之\1", text)
    elif percent is not None:
        text = re.sub(r"(\d+(?:\.\d+)?)\s*[%％]", lambda m: m.group(1) + percent, text)
    for pattern, repl in _SYMBOLS.get(language, []):
        text = re.sub(pattern, repl, text)
    if language in ("en", "fr", "de", "ja", "zh"):
        text = _sub_numbers(text, language)
    return " ".join(text.split()) if language not in ("ja", "zh") else text.strip()


def remove_placeholders(text: str) -> str:
    """``text`` without media placeholders (``<image>``...), whitespace collapsed."""
    return " ".join(PLACEHOLDER.sub(" ", text).split())


#: Light per-language clean-up of supplied (translated) texts.
_CLEANUP: dict[str, list[tuple[str, str]]] = {
    # "a- t- elle" -> "a-t-elle"; a space before ? ! : ; is French typography, keep one.
    "fr": [(r"(\w)- t- (\w)", r"\1-t-\2"), (r"(\w)- (\w)", r"\1-\2"), (r"\s*([?!:;])", r" \1")],
    "ja": [(r"\?", "？"), (r"!", "！")],
    "zh": [(r"\?", "？"), (r"!", "！"), (r",", "，")],
}


def clean_supplied(text: str, language: str) -> str:
    """A supplied text made ready to speak: placeholders removed, typography and numbers."""
    text = remove_placeholders(text)
    for pattern, repl in _CLEANUP.get(language, []):
        text = re.sub(pattern, repl, text)
    if language in ("ja", "zh"):
        text = re.sub(r"\s+", "", text) if language == "zh" else text
    return verbalize(text, language)
