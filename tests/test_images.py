import io

import numpy as np
import PIL.Image
import pytest
from lhotse import CutSet

from lhotse_triplets import fields
from lhotse_triplets.cuts import make_prompt_cut
from lhotse_triplets.errors import ItemError
from lhotse_triplets.images import (
    attach_image,
    has_image,
    image_extension,
    load_image,
    load_image_bytes,
    verify_image,
    with_image_array,
)


def _pixels(img: PIL.Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"))


@pytest.fixture
def picture() -> PIL.Image.Image:
    rng = np.random.default_rng(0)
    return PIL.Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8))


@pytest.fixture
def cut():
    return make_prompt_cut("c-t0", "What is this?", "en", {fields.TURN: 0})


def test_path_bytes_array_pil_roundtrip(tmp_path, picture, cut):
    path = tmp_path / "pic.png"
    picture.save(path)
    with_path = attach_image(cut, path)
    assert with_path.custom[fields.IMAGE].storage_type == "pillow_files"

    data = load_image_bytes(with_path)
    assert data == path.read_bytes()  # the original file, not a re-encoding

    array = np.frombuffer(data, dtype=np.uint8)
    with_array = cut.attach_tensor(fields.IMAGE, array)
    assert with_array.load_custom(fields.IMAGE).tobytes() == data
    np.testing.assert_array_equal(_pixels(load_image(with_array)), _pixels(picture))
    np.testing.assert_array_equal(_pixels(load_image(with_path)), _pixels(picture))


def test_in_memory_keeps_encoded_bytes(picture, cut):
    buf = io.BytesIO()
    picture.save(buf, format="JPEG", quality=90)
    jpeg = buf.getvalue()
    for value in (jpeg, np.frombuffer(jpeg, dtype=np.uint8)):
        attached = attach_image(cut, value)
        assert attached.custom[fields.IMAGE].storage_type == "pillow_memory"
        assert load_image_bytes(attached) == jpeg
        assert load_image(attached).size == (32, 24)
    assert image_extension(jpeg) == "jpg"

    from_pil = attach_image(cut, picture)
    assert image_extension(load_image_bytes(from_pil)) == "png"
    np.testing.assert_array_equal(_pixels(load_image(from_pil)), _pixels(picture))
    # lhotse's own loader reads our in-memory manifest too
    np.testing.assert_array_equal(from_pil.load_custom(fields.IMAGE)[..., :3], _pixels(picture))


def test_copy_on_write(tmp_path, picture, cut):
    path = tmp_path / "pic.png"
    picture.save(path)
    attached = attach_image(cut, path)
    assert not has_image(cut) and fields.IMAGE not in cut.custom
    as_array = with_image_array(attached)
    assert has_image(attached) and attached.custom[fields.IMAGE].storage_type == "pillow_files"
    assert as_array.load_custom(fields.IMAGE).dtype == np.uint8


def test_image_travels_through_shar(tmp_path, picture, cut):
    path = tmp_path / "pic.png"
    picture.save(path)
    cuts = CutSet.from_cuts([with_image_array(attach_image(cut, path))])
    (tmp_path / "shar").mkdir()
    shards = cuts.to_shar(tmp_path / "shar", fields={fields.IMAGE: "numpy"}, shard_size=10)
    path.unlink()  # the reader must not need the original file
    (back,) = list(CutSet.from_shar(fields=shards))
    np.testing.assert_array_equal(_pixels(load_image(back)), _pixels(picture))


def test_errors(cut):
    with pytest.raises(ItemError, match="no image") as info:
        load_image_bytes(cut)
    assert info.value.cut_id == "c-t0"
    with pytest.raises(ValueError, match="1-D uint8"):
        attach_image(cut, np.zeros((4, 4, 3), dtype=np.uint8))
    with pytest.raises(TypeError, match="got int"):
        attach_image(cut, 42)
    with pytest.raises(ItemError, match="undecodable"):
        image_extension(b"not an image")


def test_verify_image_decodes_every_pixel(tmp_path, picture):
    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    data = buf.getvalue()
    assert verify_image(data) == (32, 24)
    (tmp_path / "ok.png").write_bytes(data)
    assert verify_image(tmp_path / "ok.png") == (32, 24)
    truncated = data[: len(data) // 2]
    with PIL.Image.open(io.BytesIO(truncated)) as img:  # the header alone reads fine
        assert img.size == (32, 24)
    with pytest.raises(ItemError, match=r"^unreadable_image: bytes \(OSError: image file is trunc"):
        verify_image(truncated)
    (tmp_path / "cut.png").write_bytes(truncated)
    with pytest.raises(ItemError, match=f"^unreadable_image: {tmp_path / 'cut.png'}"):
        verify_image(tmp_path / "cut.png")
    for bad in (b"", b"not an image"):
        with pytest.raises(ItemError, match="^unreadable_image: "):
            verify_image(bad)
        with pytest.raises(ItemError, match="^unreadable_image: "):
            image_extension(bad)
