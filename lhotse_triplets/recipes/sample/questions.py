"""The questions of the sample corpus, in five languages, with answers true for the scene.

Seven kinds of templated question (counting by colour, by shape and in total; the colour,
material or shape of an object named so that it is the only one; whether an object stands left or
right of another) are asked in English, French, German, Japanese and Chinese. Each language's
noun phrases agree in gender, number and case (French adjective agreement and ``du``/``de la``,
German weak endings and ``vom``/``von der``); the answer is English and computed from the scene.
"""

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from lhotse_triplets.recipes.sample.scene import COLORS, MATERIALS, SHAPES, SceneObject

LANGUAGES = ("en", "fr", "de", "ja", "zh")


@dataclass
class Question:
    """A question in every language (``texts``) and its English answer, true for the scene."""

    kind: str
    texts: dict[str, str]
    answer: str


#: A noun phrase: which attributes of the object it names (shape ``None``: "object").
Desc = tuple[str | None, str | None, str | None]  # (size, color, shape)

#: Each kind of question in each language; ``{slots}`` are filled by the question's function.
TEMPLATES: dict[str, dict[str, str]] = {
    "count_color": {
        "en": "How many {color} objects are there?",
        "fr": "Combien y a-t-il d'objets {fr_colors} ?",
        "de": "Wie viele {de_color}e Objekte gibt es?",
        "ja": "{ja_color}物体はいくつありますか？",
        "zh": "有多少个{zh_color}的物体？",
    },
    "count_shape": {
        "en": "How many {shapes} are there?",
        "fr": "Combien y a-t-il de {fr_shapes} ?",
        "de": "Wie viele {de_shapes} gibt es?",
        "ja": "{ja_shape}はいくつありますか？",
        "zh": "有多少个{zh_shape}？",
    },
    "count_total": {
        "en": "How many objects are there in total?",
        "fr": "Combien y a-t-il d'objets au total ?",
        "de": "Wie viele Objekte gibt es insgesamt?",
        "ja": "物体は全部でいくつありますか？",
        "zh": "总共有多少个物体？",
    },
    "color_of": {
        "en": "What color is {en}?",
        "fr": "De quelle couleur est {fr} ?",
        "de": "Welche Farbe hat {de}?",
        "ja": "{ja}は何色ですか？",
        "zh": "那个{zh}是什么颜色的？",
    },
    "material_of": {
        "en": "What material is {en} made of?",
        "fr": "En quelle matière est {fr} ?",
        "de": "Aus welchem Material ist {de}?",
        "ja": "{ja}は何でできていますか？",
        "zh": "那个{zh}是什么材质的？",
    },
    "shape_of": {
        "en": "What shape is {en}?",
        "fr": "Quelle est la forme {fr_de} ?",
        "de": "Welche Form hat {de}?",
        "ja": "{ja}はどんな形ですか？",
        "zh": "那个{zh}是什么形状的？",
    },
    "exists_beside": {
        "en": "Is there a {material} {shape} {where}?",
        "fr": "Y a-t-il {fr_article} {fr_shape} {fr_material} {fr_side} {fr_de} ?",
        "de": "Gibt es {de_article} {de_shape} aus {de_material} {de_side} {de_dat}?",
        "ja": "{ja}の{ja_side}に{ja_material}{ja_shape}はありますか？",
        "zh": "那个{zh}的{zh_side}有{zh_material}{zh_shape}吗？",
    },
}

_EN_PLURAL = {"cube": "cubes", "sphere": "spheres", "cylinder": "cylinders", "object": "objects"}


def pick_questions(rng: random.Random, objects: list[SceneObject], n: int) -> list[Question]:
    """``n`` questions of different kinds about the scene of ``objects``.

    Example::

        >>> from lhotse_triplets.recipes.sample.scene import place_objects
        >>> rng = random.Random(0)
        >>> [q.texts["en"] for q in pick_questions(rng, place_objects(rng), 2)]
    """
    kinds = list(_QUESTIONS)
    questions: list[Question] = []
    while len(questions) < n:
        kind = rng.choice(kinds)
        question = _QUESTIONS[kind](rng, objects)
        if question is not None and kind not in {q.kind for q in questions}:
            questions.append(question)
    return questions


def _question(kind: str, answer: str, **slots: str) -> Question:
    """The question ``kind`` with its templates filled in every language."""
    texts = {lang: template.format(**slots) for lang, template in TEMPLATES[kind].items()}
    return Question(kind, texts, answer)


def _matches(obj: SceneObject, desc: Desc) -> bool:
    size, color, shape = desc
    return (
        (size is None or obj.size == size)
        and (color is None or obj.color == color)
        and (shape is None or obj.shape == shape)
    )


def _unique_desc(
    obj: SceneObject, objects: Sequence[SceneObject], patterns: Sequence[str]
) -> Desc | None:
    """The first description (``patterns`` of 's'ize/'c'olor/'h'shape) that names ``obj`` alone."""
    for pattern in patterns:
        desc = (
            obj.size if "s" in pattern else None,
            obj.color if "c" in pattern else None,
            obj.shape if "h" in pattern else None,
        )
        if sum(_matches(o, desc) for o in objects) == 1:
            return desc
    return None


def _noun_phrases(desc: Desc) -> dict[str, str]:
    """The definite noun phrase of ``desc`` in every language (and the forms templates need)."""
    fr = _fr_np(desc)
    return {
        "en": _en_np(desc),
        "fr": fr,
        "fr_de": _fr_de(fr),
        "de": _de_np(desc, "nom"),
        "de_dat": _de_np(desc, "dat"),
        "ja": _ja_np(desc),
        "zh": _zh_np(desc),
    }


def _count_sentence(n: int, what_singular: str, what_plural: str) -> str:
    if n == 0:
        return f"There are no {what_plural}."
    if n == 1:
        return f"There is 1 {what_singular}."
    return f"There are {n} {what_plural}."


# --- the questions ------------------------------------------------------------------------------


def _q_count_color(rng: random.Random, objects: list[SceneObject]) -> Question:
    present = sorted({o.color for o in objects})
    color = rng.choice(present) if rng.random() < 0.75 else rng.choice(list(COLORS))
    n = sum(o.color == color for o in objects)
    return _question(
        "count_color",
        _count_sentence(n, f"{color} object", f"{color} objects"),
        color=color,
        fr_colors=_FR_COLORS[color][2],
        de_color=_DE_COLORS[color],
        ja_color=_JA_COLORS[color],
        zh_color=_ZH_COLORS[color],
    )


def _q_count_shape(rng: random.Random, objects: list[SceneObject]) -> Question:
    shape = rng.choice(SHAPES)
    n = sum(o.shape == shape for o in objects)
    return _question(
        "count_shape",
        _count_sentence(n, shape, _EN_PLURAL[shape]),
        shapes=_EN_PLURAL[shape],
        fr_shapes=_FR_NOUNS[shape][1],
        de_shapes=_DE_NOUNS[shape][2],
        ja_shape=_JA_NOUNS[shape],
        zh_shape=_ZH_NOUNS[shape],
    )


def _q_count_total(rng: random.Random, objects: list[SceneObject]) -> Question:
    return _question("count_total", f"There are {len(objects)} objects in total.")


@dataclass(frozen=True)
class _AttributeQuestion:
    """What is the colour/material/shape of an object named so that it is the only one."""

    kind: str
    patterns: tuple[str, ...]  # descriptions tried, see :func:`_unique_desc`
    answer: str  # ``{subject}`` and the object's attributes, e.g. ``{subject} is {color}.``

    def __call__(self, rng: random.Random, objects: list[SceneObject]) -> Question | None:
        obj = rng.choice(objects)
        desc = _unique_desc(obj, objects, self.patterns)
        if desc is None:
            return None
        phrases = _noun_phrases(desc)
        answer = self.answer.format(subject=phrases["en"].capitalize(), **asdict(obj))
        return _question(self.kind, answer, **phrases)


def _q_exists_beside(rng: random.Random, objects: list[SceneObject]) -> Question | None:
    ref = rng.choice(objects)
    desc = _unique_desc(ref, objects, ["h", "sh", "ch", "sch"])
    if desc is None:
        return None
    side = rng.choice(["left", "right"])
    others = [o for o in objects if o is not ref]
    if rng.random() < 0.6:  # often ask about an object that is there
        pick = rng.choice(others)
        material, shape = pick.material, pick.shape
    else:
        material, shape = rng.choice(MATERIALS), rng.choice(SHAPES)
    found = any(
        o.material == material
        and o.shape == shape
        and (o.x < ref.x if side == "left" else o.x > ref.x)
        for o in others
    )
    phrases = _noun_phrases(desc)
    where = f"to the {side} of {phrases['en']}"
    if found:
        answer = f"Yes, there is a {material} {shape} {where}."
    else:
        answer = f"No, there is no {material} {shape} {where}."
    return _question(
        "exists_beside",
        answer,
        material=material,
        shape=shape,
        where=where,
        **_beside_words(material, shape, side),
        **phrases,
    )


def _beside_words(material: str, shape: str, side: str) -> dict[str, str]:
    """The words for "a <material> <shape>" and "<side> of" in each language."""
    return {
        "fr_article": _FR_NOUNS[shape][3],
        "fr_shape": _FR_NOUNS[shape][0],
        "fr_material": _FR_MATERIALS[material],
        "fr_side": _FR_SIDES[side],
        "de_article": _DE_NOUNS[shape][3],
        "de_shape": _DE_NOUNS[shape][0],
        "de_material": _DE_MATERIALS[material],
        "de_side": _DE_SIDES[side],
        "ja_shape": _JA_NOUNS[shape],
        "ja_material": _JA_MATERIALS[material],
        "ja_side": _JA_SIDES[side],
        "zh_shape": _ZH_NOUNS[shape],
        "zh_material": _ZH_MATERIALS[material],
        "zh_side": _ZH_SIDES[side],
    }


_QUESTIONS: dict[str, Callable[[random.Random, list[SceneObject]], Question | None]] = {
    "count_color": _q_count_color,
    "count_shape": _q_count_shape,
    "count_total": _q_count_total,
    "color_of": _AttributeQuestion("color_of", ("h", "sh"), "{subject} is {color}."),
    "material_of": _AttributeQuestion(
        "material_of", ("h", "ch", "sh", "sch"), "{subject} is made of {material}."
    ),
    "shape_of": _AttributeQuestion("shape_of", ("c", "sc"), "{subject} is a {shape}."),
    "exists_beside": _q_exists_beside,
}


# --- English --------------------------------------------------------------------------------------


def _en_np(desc: Desc) -> str:
    size, color, shape = desc
    return " ".join(w for w in ("the", size, color, shape or "object") if w)


# --- French ---------------------------------------------------------------------------------------
#: shape -> (singular, plural, gender, indefinite article)
_FR_NOUNS = {
    "cube": ("cube", "cubes", "m", "un"),
    "sphere": ("sphère", "sphères", "f", "une"),
    "cylinder": ("cylindre", "cylindres", "m", "un"),
    None: ("objet", "objets", "m", "un"),
}
#: color -> (masculine, feminine, masculine plural, feminine plural)
_FR_COLORS = {
    "gray": ("gris", "grise", "gris", "grises"),
    "red": ("rouge", "rouge", "rouges", "rouges"),
    "blue": ("bleu", "bleue", "bleus", "bleues"),
    "green": ("vert", "verte", "verts", "vertes"),
    "brown": ("marron", "marron", "marron", "marron"),
    "purple": ("violet", "violette", "violets", "violettes"),
    "cyan": ("cyan", "cyan", "cyan", "cyan"),
    "yellow": ("jaune", "jaune", "jaunes", "jaunes"),
}
_FR_SIZES = {"small": ("petit", "petite"), "large": ("grand", "grande")}
_FR_MATERIALS = {"rubber": "en caoutchouc", "metal": "en métal"}
_FR_SIDES = {"left": "à gauche", "right": "à droite"}


def _fr_np(desc: Desc) -> str:
    """Definite French noun phrase: size before the noun, colour after, both agreeing."""
    size, color, shape = desc
    noun, _, gender, _ = _FR_NOUNS[shape]
    feminine = gender == "f"
    words = [_FR_SIZES[size][feminine]] if size else []
    words.append(noun)
    if color:
        words.append(_FR_COLORS[color][feminine])
    article = "la " if feminine else "le "
    if words[0][0] in "aeiouéèh":
        article = "l'"
    return article + " ".join(words)


def _fr_de(noun_phrase: str) -> str:
    """``de`` + a definite noun phrase, contracted (du, de la, de l')."""
    if noun_phrase.startswith("le "):
        return "du " + noun_phrase[3:]
    return "de " + noun_phrase


# --- German ---------------------------------------------------------------------------------------
#: shape -> (singular, gender, plural, accusative indefinite article)
_DE_NOUNS = {
    "cube": ("Würfel", "m", "Würfel", "einen"),
    "sphere": ("Kugel", "f", "Kugeln", "eine"),
    "cylinder": ("Zylinder", "m", "Zylinder", "einen"),
    None: ("Objekt", "n", "Objekte", "ein"),
}
#: color -> adjective stem (declined with -e/-en)
_DE_COLORS = {
    "gray": "grau",
    "red": "rot",
    "blue": "blau",
    "green": "grün",
    "brown": "braun",
    "purple": "violett",
    "cyan": "türkisfarben",
    "yellow": "gelb",
}
_DE_SIZES = {"small": "klein", "large": "groß"}
_DE_MATERIALS = {"rubber": "Gummi", "metal": "Metall"}
_DE_SIDES = {"left": "links", "right": "rechts"}
_DE_ARTICLES = {
    ("nom", "m"): "der",
    ("nom", "f"): "die",
    ("nom", "n"): "das",
    ("dat", "m"): "vom",
    ("dat", "f"): "von der",
    ("dat", "n"): "vom",
}


def _de_np(desc: Desc, case: str) -> str:
    """Definite German noun phrase in the nominative or (with ``von``) the dative; weak endings."""
    size, color, shape = desc
    noun, gender, _, _ = _DE_NOUNS[shape]
    ending = "e" if case == "nom" else "en"
    adjectives = [_DE_SIZES[size] + ending] if size else []
    if color:
        adjectives.append(_DE_COLORS[color] + ending)
    return " ".join([_DE_ARTICLES[case, gender], *adjectives, noun])


# --- Japanese -------------------------------------------------------------------------------------
_JA_NOUNS = {"cube": "立方体", "sphere": "球", "cylinder": "円柱", None: "物体"}
_JA_COLORS = {
    "gray": "灰色の",
    "red": "赤い",
    "blue": "青い",
    "green": "緑の",
    "brown": "茶色の",
    "purple": "紫の",
    "cyan": "シアンの",
    "yellow": "黄色い",
}
_JA_SIZES = {"small": "小さい", "large": "大きい"}
_JA_MATERIALS = {"rubber": "ゴムの", "metal": "金属の"}
_JA_SIDES = {"left": "左", "right": "右"}


def _ja_np(desc: Desc) -> str:
    size, color, shape = desc
    return (
        (_JA_SIZES[size] if size else "") + (_JA_COLORS[color] if color else "") + _JA_NOUNS[shape]
    )


# --- Chinese --------------------------------------------------------------------------------------
_ZH_NOUNS = {"cube": "立方体", "sphere": "球体", "cylinder": "圆柱体", None: "物体"}
_ZH_COLORS = {
    "gray": "灰色",
    "red": "红色",
    "blue": "蓝色",
    "green": "绿色",
    "brown": "棕色",
    "purple": "紫色",
    "cyan": "青色",
    "yellow": "黄色",
}
_ZH_SIZES = {"small": "小", "large": "大"}
_ZH_MATERIALS = {"rubber": "橡胶", "metal": "金属"}
_ZH_SIDES = {"left": "左边", "right": "右边"}


def _zh_np(desc: Desc) -> str:
    size, color, shape = desc
    return (
        (_ZH_COLORS[color] + "的" if color else "")
        + (_ZH_SIZES[size] if size else "")
        + _ZH_NOUNS[shape]
    )
