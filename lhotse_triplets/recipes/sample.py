"""A small CLEVR-like sample corpus, generated on the spot (no download, no licence to check).

About the corpus: every conversation is about one drawn scene (320x240 PNG) of three to six
objects in the manner of CLEVR (Johnson et al., 2017): cubes, spheres and cylinders, small or
large, rubber (matte) or metal (shiny), in CLEVR's eight colours, standing on a grey floor. The
user asks templated questions (counting, attribute and spatial questions), some conversations
have a follow-up question, and the assistant answers are computed from the scene, so they are
true for the image. Each question comes with translations into French, German, Japanese and
Chinese (``"translations"`` of the user turn), which the rephrase stage uses as supplied texts.

The corpus is written in the JSONL dump format that :func:`prepare_llava_instruct` reads
(``sample.jsonl`` plus ``images/<id>.png``; each row also keeps its ``scene`` description), so the
sample exercises the same code path as real data. The same ``seed`` gives byte-identical files,
and conversation ``i`` does not depend on ``num_conversations``.
"""

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from lhotse import CutSet
from lhotse.utils import Pathlike

from lhotse_triplets.images import encode_image
from lhotse_triplets.recipes.llava_instruct import prepare_llava_instruct

WIDTH, HEIGHT = 320, 240
DATA_SOURCE = "CLEVR-sample"
LANGUAGES = ("en", "fr", "de", "ja", "zh")

#: CLEVR's palette.
COLORS: dict[str, tuple[int, int, int]] = {
    "gray": (87, 87, 87),
    "red": (173, 35, 35),
    "blue": (42, 75, 215),
    "green": (29, 105, 20),
    "brown": (129, 74, 25),
    "purple": (129, 38, 192),
    "cyan": (41, 208, 208),
    "yellow": (255, 238, 51),
}
SHAPES = ("cube", "sphere", "cylinder")
SIZES = ("small", "large")
MATERIALS = ("rubber", "metal")
_FLOOR = (150, 150, 148)


@dataclass
class SceneObject:
    """One drawn object: attributes, where it stands and the box it covers (with its shadow)."""

    shape: str
    color: str
    size: str
    material: str
    x: float
    depth: float
    bbox: tuple[int, int, int, int]


def generate_sample_corpus(
    output_dir: Pathlike, num_conversations: int = 20, seed: int = 0
) -> Path:
    """Draw ``num_conversations`` CLEVR-like scenes with true Q&A; return the ``sample.jsonl`` path.

    Images go to ``output_dir/images/<id>.png``. Files whose content would not change are not
    rewritten, so a finished :func:`prepare_llava_instruct` run on them stays valid.

    Example::

        >>> jsonl = generate_sample_corpus("data/sample", num_conversations=5)
        >>> cuts = prepare_llava_instruct(jsonl, "data/sample", image_dir=jsonl.parent)
    """
    output_dir = Path(output_dir)
    (output_dir / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for index in range(num_conversations):
        rng = random.Random(f"lhotse-triplets-sample-{seed}-{index}")
        conversation_id = f"sample-{index:06d}"
        objects = _place_objects(rng)
        image_path = f"images/{conversation_id}.png"
        _write_if_changed(output_dir / image_path, encode_image(draw_scene(objects)))
        conversations = []
        num_turns = 2 if rng.random() < 0.35 else 1
        for turn, question in enumerate(_pick_questions(rng, objects, num_turns)):
            en = question.texts["en"]
            conversations.append(
                {
                    "role": "user",
                    "content": f"<image>\n{en}" if turn == 0 else en,
                    "translations": question.texts,
                }
            )
            conversations.append({"role": "assistant", "content": question.answer})
        row = {
            "id": conversation_id,
            "data_source": DATA_SOURCE,
            "image": image_path,
            "conversations": conversations,
            "scene": {"width": WIDTH, "height": HEIGHT, "objects": [asdict(o) for o in objects]},
        }
        lines.append(json.dumps(row, ensure_ascii=False))
    jsonl = output_dir / "sample.jsonl"
    _write_if_changed(jsonl, ("\n".join(lines) + "\n").encode("utf-8"))
    return jsonl


def prepare_sample(output_dir: Pathlike, num_conversations: int = 20, seed: int = 0) -> CutSet:
    """Generate the sample corpus in ``output_dir`` and prepare its prompt cuts.

    Example::

        >>> cuts = prepare_sample("data/sample")
        >>> cuts[0].custom["translations"]["fr"]
    """
    jsonl = generate_sample_corpus(output_dir, num_conversations=num_conversations, seed=seed)
    return prepare_llava_instruct(jsonl, output_dir, image_dir=jsonl.parent)


# --- the scene ----------------------------------------------------------------------------------


def _place_objects(rng: random.Random) -> list[SceneObject]:
    """3-6 objects with boxes apart and centres clearly left or right of each other."""
    wanted = rng.randint(3, 6)
    objects: list[SceneObject] = []
    for _ in range(400):
        if len(objects) == wanted:
            break
        shape, size = rng.choice(SHAPES), rng.choice(SIZES)
        depth = rng.uniform(0.0, 1.0)
        radius = _radius(size, depth)
        x = rng.uniform(radius + 6, WIDTH - 2 * radius - 6)
        bbox = _bbox(shape, x, depth, radius)
        if all(_apart(bbox, o.bbox) and abs(x - o.x) >= 14 for o in objects):
            objects.append(
                SceneObject(
                    shape,
                    rng.choice(list(COLORS)),
                    size,
                    rng.choice(MATERIALS),
                    round(x, 2),
                    round(depth, 4),
                    bbox,
                )
            )
    return sorted(objects, key=lambda o: o.depth)  # far to near: the drawing order


def _radius(size: str, depth: float) -> float:
    return (26.0 if size == "large" else 15.0) * (0.65 + 0.35 * depth)


def _ground(depth: float) -> float:
    return 105.0 + depth * 115.0


def _bbox(shape: str, x: float, depth: float, r: float) -> tuple[int, int, int, int]:
    y = _ground(depth)
    top = {"cube": y - 2.5 * r, "sphere": y - 2 * r, "cylinder": y - 2.2 * r}[shape]
    right = x + (1.5 * r if shape == "cube" else 1.4 * r)
    return (int(x - r) - 1, int(top) - 1, int(right) + 2, int(y + 0.45 * r) + 2)


def _apart(a: Sequence[int], b: Sequence[int], margin: int = 4) -> bool:
    return (
        a[2] + margin < b[0] or b[2] + margin < a[0] or a[3] + margin < b[1] or b[3] + margin < a[1]
    )


def _shade(color: Sequence[int], factor: float, white: float = 0.0) -> tuple[int, int, int]:
    """``color`` scaled by ``factor``, then blended with white by ``white`` (0..1)."""
    return tuple(round(min(255.0, c * factor) * (1 - white) + 255 * white) for c in color)


def draw_scene(objects: Sequence[SceneObject]):
    """The PIL image of a scene: objects drawn far to near on a grey floor, with soft shadows."""
    import PIL.Image
    import PIL.ImageDraw

    img = PIL.Image.new("RGB", (WIDTH, HEIGHT), _FLOOR)
    draw = PIL.ImageDraw.Draw(img)
    for row in range(HEIGHT):  # floor a little darker towards the back
        draw.line([(0, row), (WIDTH, row)], fill=_shade(_FLOOR, 0.82 + 0.18 * row / HEIGHT))
    for obj in objects:
        r, y = _radius(obj.size, obj.depth), _ground(obj.depth)
        draw.ellipse(
            [obj.x - 0.8 * r, y - 0.3 * r, obj.x + 1.4 * r, y + 0.45 * r],
            fill=_shade(_FLOOR, 0.6 + 0.15 * y / HEIGHT),
        )
        _DRAW[obj.shape](draw, obj.x, y, r, COLORS[obj.color], obj.material == "metal")
    return img


def _draw_sphere(draw, x: float, y: float, r: float, color, metal: bool) -> None:
    cx, cy, steps = x, y - r, 14
    for i in range(steps):  # rings from the shaded rim towards the lit point (up-left)
        t = i / (steps - 1)
        rr = r * (1 - 0.8 * t)
        ox, oy = cx - 0.35 * r * t, cy - 0.35 * r * t
        if metal:
            fill = _shade(color, 0.45 + 0.55 * min(1.0, 1.6 * t), max(0.0, 2.5 * (t - 0.6)))
        else:
            fill = _shade(color, 0.62 + 0.38 * min(1.0, 1.4 * t))
        draw.ellipse([ox - rr, oy - rr, ox + rr, oy + rr], fill=fill)


def _draw_cube(draw, x: float, y: float, r: float, color, metal: bool) -> None:
    d = 0.5 * r  # depth offset of the back faces
    front = [(x - r, y - 2 * r), (x + r, y - 2 * r), (x + r, y), (x - r, y)]
    top = [
        (x - r, y - 2 * r),
        (x - r + d, y - 2 * r - d),
        (x + r + d, y - 2 * r - d),
        (x + r, y - 2 * r),
    ]
    side = [(x + r, y - 2 * r), (x + r + d, y - 2 * r - d), (x + r + d, y - d), (x + r, y)]
    draw.polygon(side, fill=_shade(color, 0.55))
    draw.polygon(top, fill=_shade(color, 1.0, 0.35 if metal else 0.12))
    draw.polygon(front, fill=_shade(color, 1.0 if metal else 0.85))
    if metal:
        draw.line([(x - r, y - 2 * r), (x + r, y - 2 * r)], fill=(245, 245, 245), width=2)
        draw.line([(x + r, y - 2 * r), (x + r + d, y - 2 * r - d)], fill=(230, 230, 230))
    else:
        inset = 0.3 * r
        draw.rectangle(
            [x - r + inset, y - 2 * r + inset, x + r - inset, y - inset], fill=_shade(color, 1.0)
        )


def _draw_cylinder(draw, x: float, y: float, r: float, color, metal: bool) -> None:
    h, e = 1.8 * r, 0.35 * r  # body height, vertical radius of the caps
    draw.ellipse([x - r, y - e, x + r, y + e], fill=_shade(color, 0.6))
    strips = max(8, int(2 * r))
    for i in range(strips):  # body: lit from the left, highlight band on metal
        t = i / (strips - 1)
        factor = 1.0 - 0.45 * abs(t - 0.3) / 0.7
        white = 0.55 if metal and 0.18 < t < 0.3 else 0.0
        x0 = x - r + 2 * r * i / strips
        draw.rectangle([x0, y - h, x0 + 2 * r / strips + 1, y], fill=_shade(color, factor, white))
    draw.ellipse(
        [x - r, y - h - e, x + r, y - h + e], fill=_shade(color, 1.0, 0.35 if metal else 0.1)
    )


_DRAW: dict[str, Callable] = {
    "cube": _draw_cube,
    "sphere": _draw_sphere,
    "cylinder": _draw_cylinder,
}


# --- questions ----------------------------------------------------------------------------------


@dataclass
class Question:
    """A question in every language (``texts``) and its English answer, true for the scene."""

    kind: str
    texts: dict[str, str]
    answer: str


#: A noun phrase: which attributes of the object it names (shape ``None``: "object").
Desc = tuple[str | None, str | None, str | None]  # (size, color, shape)

_EN_PLURAL = {"cube": "cubes", "sphere": "spheres", "cylinder": "cylinders", "object": "objects"}


def _pick_questions(rng: random.Random, objects: list[SceneObject], n: int) -> list[Question]:
    kinds = list(_QUESTIONS)
    questions: list[Question] = []
    while len(questions) < n:
        kind = rng.choice(kinds)
        question = _QUESTIONS[kind](rng, objects)
        if question is not None and kind not in {q.kind for q in questions}:
            questions.append(question)
    return questions


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


def _en_np(desc: Desc) -> str:
    size, color, shape = desc
    return " ".join(w for w in ("the", size, color, shape or "object") if w)


def _count_sentence(n: int, what_singular: str, what_plural: str) -> str:
    if n == 0:
        return f"There are no {what_plural}."
    if n == 1:
        return f"There is 1 {what_singular}."
    return f"There are {n} {what_plural}."


def _q_count_color(rng: random.Random, objects: list[SceneObject]) -> Question:
    present = sorted({o.color for o in objects})
    color = rng.choice(present) if rng.random() < 0.75 else rng.choice(list(COLORS))
    n = sum(o.color == color for o in objects)
    texts = {
        "en": f"How many {color} objects are there?",
        "fr": f"Combien y a-t-il d'objets {_FR_COLORS[color][2]} ?",
        "de": f"Wie viele {_DE_COLORS[color]}e Objekte gibt es?",
        "ja": f"{_JA_COLORS[color]}物体はいくつありますか？",
        "zh": f"有多少个{_ZH_COLORS[color]}的物体？",
    }
    return Question("count_color", texts, _count_sentence(n, f"{color} object", f"{color} objects"))


def _q_count_shape(rng: random.Random, objects: list[SceneObject]) -> Question:
    shape = rng.choice(SHAPES)
    n = sum(o.shape == shape for o in objects)
    texts = {
        "en": f"How many {_EN_PLURAL[shape]} are there?",
        "fr": f"Combien y a-t-il de {_FR_NOUNS[shape][1]} ?",
        "de": f"Wie viele {_DE_NOUNS[shape][2]} gibt es?",
        "ja": f"{_JA_NOUNS[shape]}はいくつありますか？",
        "zh": f"有多少个{_ZH_NOUNS[shape]}？",
    }
    return Question("count_shape", texts, _count_sentence(n, shape, _EN_PLURAL[shape]))


def _q_count_total(rng: random.Random, objects: list[SceneObject]) -> Question:
    texts = {
        "en": "How many objects are there in total?",
        "fr": "Combien y a-t-il d'objets au total ?",
        "de": "Wie viele Objekte gibt es insgesamt?",
        "ja": "物体は全部でいくつありますか？",
        "zh": "总共有多少个物体？",
    }
    return Question("count_total", texts, f"There are {len(objects)} objects in total.")


def _q_color_of(rng: random.Random, objects: list[SceneObject]) -> Question | None:
    obj = rng.choice(objects)
    desc = _unique_desc(obj, objects, ["h", "sh"])
    if desc is None:
        return None
    texts = {
        "en": f"What color is {_en_np(desc)}?",
        "fr": f"De quelle couleur est {_fr_np(desc)} ?",
        "de": f"Welche Farbe hat {_de_np(desc, 'nom')}?",
        "ja": f"{_ja_np(desc)}は何色ですか？",
        "zh": f"那个{_zh_np(desc)}是什么颜色的？",
    }
    return Question("color_of", texts, f"{_en_np(desc).capitalize()} is {obj.color}.")


def _q_material_of(rng: random.Random, objects: list[SceneObject]) -> Question | None:
    obj = rng.choice(objects)
    desc = _unique_desc(obj, objects, ["h", "ch", "sh", "sch"])
    if desc is None:
        return None
    texts = {
        "en": f"What material is {_en_np(desc)} made of?",
        "fr": f"En quelle matière est {_fr_np(desc)} ?",
        "de": f"Aus welchem Material ist {_de_np(desc, 'nom')}?",
        "ja": f"{_ja_np(desc)}は何でできていますか？",
        "zh": f"那个{_zh_np(desc)}是什么材质的？",
    }
    return Question("material_of", texts, f"{_en_np(desc).capitalize()} is made of {obj.material}.")


def _q_shape_of(rng: random.Random, objects: list[SceneObject]) -> Question | None:
    obj = rng.choice(objects)
    desc = _unique_desc(obj, objects, ["c", "sc"])
    if desc is None:
        return None
    texts = {
        "en": f"What shape is {_en_np(desc)}?",
        "fr": f"Quelle est la forme {_fr_de(_fr_np(desc))} ?",
        "de": f"Welche Form hat {_de_np(desc, 'nom')}?",
        "ja": f"{_ja_np(desc)}はどんな形ですか？",
        "zh": f"那个{_zh_np(desc)}是什么形状的？",
    }
    return Question("shape_of", texts, f"{_en_np(desc).capitalize()} is a {obj.shape}.")


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
    where = f"to the {side} of {_en_np(desc)}"
    texts = {
        "en": f"Is there a {material} {shape} {where}?",
        "fr": f"Y a-t-il {_FR_NOUNS[shape][3]} {_FR_NOUNS[shape][0]} {_FR_MATERIALS[material]} "
        f"{_FR_SIDES[side]} {_fr_de(_fr_np(desc))} ?",
        "de": f"Gibt es {_DE_NOUNS[shape][3]} {_DE_NOUNS[shape][0]} aus {_DE_MATERIALS[material]} "
        f"{_DE_SIDES[side]} {_de_np(desc, 'dat')}?",
        "ja": f"{_ja_np(desc)}の{_JA_SIDES[side]}に{_JA_MATERIALS[material]}{_JA_NOUNS[shape]}"
        "はありますか？",
        "zh": f"那个{_zh_np(desc)}的{_ZH_SIDES[side]}有{_ZH_MATERIALS[material]}"
        f"{_ZH_NOUNS[shape]}吗？",
    }
    if found:
        answer = f"Yes, there is a {material} {shape} {where}."
    else:
        answer = f"No, there is no {material} {shape} {where}."
    return Question("exists_beside", texts, answer)


_QUESTIONS: dict[str, Callable[[random.Random, list[SceneObject]], Question | None]] = {
    "count_color": _q_count_color,
    "count_shape": _q_count_shape,
    "count_total": _q_count_total,
    "color_of": _q_color_of,
    "material_of": _q_material_of,
    "shape_of": _q_shape_of,
    "exists_beside": _q_exists_beside,
}

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


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        return
    path.write_bytes(data)
