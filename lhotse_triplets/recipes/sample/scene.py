"""The painter of the sample corpus: CLEVR-like scenes of three to six objects on a grey floor.

Objects are cubes, spheres and cylinders, small or large, rubber (matte) or metal (shiny), in
CLEVR's eight colours; they are placed apart (boxes and centres clearly separated, so spatial
questions have one answer) and drawn far to near with soft shadows.
"""

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import PIL.Image
    import PIL.ImageDraw

WIDTH, HEIGHT = 320, 240

Color = tuple[int, int, int]

#: CLEVR's palette.
COLORS: dict[str, Color] = {
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


def place_objects(rng: random.Random) -> list[SceneObject]:
    """3-6 objects with boxes apart and centres clearly left or right of each other, far to near.

    Example::

        >>> objects = place_objects(random.Random(0))
    """
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


def draw_scene(objects: Sequence[SceneObject]) -> "PIL.Image.Image":
    """The PIL image of a scene: objects drawn far to near on a grey floor, with soft shadows.

    Example::

        >>> image = draw_scene(place_objects(random.Random(0)))
    """
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


def _shade(color: Sequence[int], factor: float, white: float = 0.0) -> Color:
    """``color`` scaled by ``factor``, then blended with white by ``white`` (0..1)."""
    return tuple(round(min(255.0, c * factor) * (1 - white) + 255 * white) for c in color)


def _draw_sphere(
    draw: "PIL.ImageDraw.ImageDraw", x: float, y: float, r: float, color: Color, metal: bool
) -> None:
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


def _draw_cube(
    draw: "PIL.ImageDraw.ImageDraw", x: float, y: float, r: float, color: Color, metal: bool
) -> None:
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


def _draw_cylinder(
    draw: "PIL.ImageDraw.ImageDraw", x: float, y: float, r: float, color: Color, metal: bool
) -> None:
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


_DRAW: dict[str, Callable[..., None]] = {
    "cube": _draw_cube,
    "sphere": _draw_sphere,
    "cylinder": _draw_cylinder,
}
