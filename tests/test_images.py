import io

import numpy as np
import pytest
from PIL import Image

from labcore.data.images import MAX_UPLOAD_MB, ImageError, load_image, resize_for_model


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def picture(w: int = 40, h: int = 20) -> Image.Image:
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 2] = (200, 30, 30)  # left half red
    return Image.fromarray(arr)


def test_plain_jpeg_loads_as_rgb():
    loaded = load_image(encode(picture(), "JPEG"))
    assert loaded.image.mode == "RGB" and loaded.image.size == (40, 20) and loaded.notes == []


def test_exif_rotated_photo_is_turned_upright():
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view"
    loaded = load_image(encode(picture(), "JPEG", exif=exif))
    assert loaded.image.size == (20, 40)
    assert any("EXIF" in n for n in loaded.notes)


def test_rgba_goes_onto_white_and_cmyk_and_16_bit_convert():
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    out = load_image(encode(rgba, "PNG")).image
    assert out.mode == "RGB" and out.getpixel((5, 5)) == (255, 255, 255)
    cmyk = load_image(encode(picture().convert("CMYK"), "JPEG"))
    assert cmyk.image.mode == "RGB" and cmyk.image.getpixel((2, 2))[0] > 150
    ramp = np.tile(np.linspace(0, 65535, 16, dtype=np.uint16), (4, 1))
    deep_image = Image.new("I;16", (16, 4))
    deep_image.frombytes(ramp.astype("<u2").tobytes())
    deep = load_image(encode(deep_image, "PNG"))
    values = np.asarray(deep.image)[..., 0]
    assert values.min() == 0 and values.max() == 255  # stretched, not clipped to white


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    loaded = load_image(data)
    assert loaded.image.getpixel((1, 1))[0] > 200
    assert any("first of 2 frames" in n for n in loaded.notes)


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"hello, not a picture", "not an image"),
    (b"x" * (MAX_UPLOAD_MB * 1024 * 1024 + 1), "limit"),
])
def test_bad_uploads_get_one_clear_line(data, message):
    with pytest.raises(ImageError, match=message) as err:
        load_image(data, "cat.jpg")
    assert "\n" not in str(err.value)


def test_truncated_and_giant_images_are_refused():
    jpeg = encode(picture(400, 300), "JPEG")
    with pytest.raises(ImageError, match="damaged"):
        load_image(jpeg[: len(jpeg) // 2])
    # A tiny file that claims 20000 x 20000 pixels (a decompression bomb).
    bomb = encode(Image.new("1", (20000, 20000)), "PNG")
    assert len(bomb) < MAX_UPLOAD_MB * 1024 * 1024
    with pytest.raises(ImageError, match="megapixels"):
        load_image(bomb)


def test_resize_for_model_shape_and_range():
    arr = resize_for_model(picture(), 32)
    assert arr.shape == (32, 32, 3) and arr.dtype == np.float32
    assert arr.max() <= 255 and arr[:, :8, 0].mean() > 150 and arr[:, -8:, 0].mean() < 50


def test_an_eps_file_gets_one_line_and_starts_no_program(monkeypatch):
    """Pillow decodes EPS (and PS, PDF) by running Ghostscript, where it is installed (most
    desktop Linux): an upload must never start a program on the server."""
    import subprocess

    from PIL import EpsImagePlugin

    from labcore.data.images import UPLOAD_FORMATS

    started = []

    def no_program(*args, **kwargs):
        started.append(args[0] if args else kwargs.get("args"))
        raise OSError("a program was started")

    monkeypatch.setattr(subprocess, "Popen", no_program)
    monkeypatch.setattr(EpsImagePlugin, "gs_binary", "gs")  # as where Ghostscript is installed
    with pytest.raises(ImageError) as err:
        load_image(encode(picture(), "EPS"), "cat.eps")
    assert str(err.value) == "cat.eps is not an image this app can read (JPEG, PNG, WebP, GIF or BMP)."
    assert started == []
    assert not {"EPS", "PS", "PDF"} & set(UPLOAD_FORMATS)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "BMP"])
def test_every_accepted_format_loads(fmt):
    assert load_image(encode(picture(), fmt)).image.size == (40, 20)
