import io
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labcore.data.images import MAX_UPLOAD_MB, ImageError, load_image, prepare_photo, resize_for_model

ROOT = Path(__file__).resolve().parents[1]


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


# --------------------------------------------------------------------------- bounded work per upload

PEAK_PROBE = """
import io, sys
from pathlib import Path
from PIL import Image
from labcore.data.images import prepare_photo
kind, width, height = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if kind == "jpeg":
    import numpy as np
    noise = np.random.default_rng(0).integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    picture, fmt = Image.fromarray(noise).resize((width, height)), "JPEG"
else:
    picture, fmt = Image.new(kind, (width, height), 1000 if kind == "I;16" else (10, 20, 30, 0)), "PNG"
buffer = io.BytesIO()
picture.save(buffer, fmt)
data = buffer.getvalue()
del picture, buffer
def mb(key):
    return next(int(l.split()[1]) / 1024 for l in Path("/proc/self/status").read_text().splitlines() if l.startswith(key))
before = mb("VmRSS:")
Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from here
photo = prepare_photo(data, "big", 420, (64, 128, 224))
assert (photo.width, photo.height) == (width, height) and photo.shown.width == 420
print(len(data), mb("VmHWM:") - before)
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc/self/clear_refs")
@pytest.mark.parametrize("kind, width, height, bytes_per_pixel, bound", [
    ("I;16", 7000, 7000, 2, 1.25),  # the few-KB 16-bit PNG: no float copy, no RGB copy at full size
    ("RGBA", 7000, 7000, 4, 1.25),  # no premultiplied or composited copy at full size
    ("jpeg", 6000, 4000, 3, 0.25),  # decoded at a quarter of its size or less (draft), never at full size
])
def test_a_huge_upload_decodes_within_a_memory_bound(kind, width, height, bytes_per_pixel, bound):
    """Peak memory of prepare_photo, in a fresh process, over what it held before: at most
    `bound` times the full-size picture's own pixels (in its mode)."""
    done = subprocess.run([sys.executable, "-c", PEAK_PROBE, kind, str(width), str(height)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    size, peak_mb = done.stdout.split()
    assert int(size) < MAX_UPLOAD_MB * 2**20
    full_mb = width * height * bytes_per_pixel / 2**20
    assert float(peak_mb) <= bound * full_mb, (kind, peak_mb, full_mb)


def test_a_big_photo_decoded_small_gives_the_models_nearly_the_same_pixels():
    """Decoding a JPEG at a fraction of its size and shrinking before converting costs the
    models' inputs almost nothing against resizing the full-size picture."""
    rng = np.random.default_rng(3)
    scene = Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).resize((4000, 3000), Image.BICUBIC)
    data = encode(scene, "JPEG", quality=92)
    photo = prepare_photo(data, "scene.jpg", 420, (64, 224))
    full = load_image(data).image
    assert full.size == (4000, 3000) and (photo.width, photo.height) == (4000, 3000)
    for size in (64, 224):
        small = np.asarray(photo.inputs[size], np.float32)
        assert np.abs(small - resize_for_model(full, size)).mean() < 2.0, size


def test_an_exif_rotated_photo_reports_its_upright_size_when_decoded_small():
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(picture(1800, 1200), "JPEG", exif=exif)
    photo = prepare_photo(data, "turned.jpg", 420, (64,))
    assert (photo.width, photo.height) == (1200, 1800) and photo.shown.size[0] == 420
    assert photo.shown.size[1] > 420  # upright: taller than wide


def test_at_most_k_decodes_run_at_once_and_the_next_waits_its_turn(monkeypatch):
    from labcore.data import images

    gate = images.DecodeGate(2)
    monkeypatch.setattr(images, "DECODES", gate)
    inside, release = [], threading.Event()
    real = images.load_image

    def held(data, name, at_least=None):
        inside.append(name)
        assert release.wait(30)
        return real(data, name, at_least)

    monkeypatch.setattr(images, "load_image", held)
    data = encode(picture(), "PNG")
    results = {}
    threads = [threading.Thread(target=lambda n=n: results.setdefault(n, prepare_photo(data, n, 40, (32,))))
               for n in ("a", "b", "c")]
    for thread in threads:
        thread.start()
        time.sleep(0.2)  # in this order
    deadline = time.monotonic() + 10
    while len(inside) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # time for a third to come in, were it let in
    assert inside == ["a", "b"] and gate.running() == 2
    assert gate.ahead() == 3  # a fourth would wait behind two decoding and one queued
    release.set()
    for thread in threads:
        thread.join(30)
    assert inside == ["a", "b", "c"] and sorted(results) == ["a", "b", "c"]
    assert gate.running() == 0 and gate.ahead() == 0


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
