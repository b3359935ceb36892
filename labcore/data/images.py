"""Turning whatever a user uploads into an upright RGB picture, or one clear sentence why not.

A lecture hall may upload at once, so the work per upload is bounded: at most `DECODE_SLOTS`
photos decode at the same time (the others queue, first come first served, and a page can
say how many are ahead); a JPEG decodes straight at a fraction of its size (`draft`) and any
other picture is shrunk before its mode is converted, so a 50-megapixel 16-bit or transparent
image never becomes a full-size float or RGBA copy.
"""
from __future__ import annotations

import io
import threading
import warnings
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

MAX_UPLOAD_MB = 20  # keep in step with .streamlit/config.toml server.maxUploadSize
# Beyond this a "photo" is a decompression bomb, not a pet. Not less: phones take 48 and 50 MP
# photos (8064 x 6048 is 48.8 MP).
MAX_PIXELS = 50_000_000
# Decodes at once. Memory, not cores, sets it: a 50 MP picture holds up to 200 MB (RGBA) for
# the moment before it shrinks, so two bound a burst of uploads to about 0.4 GB; on a 2-core
# laptop more at once would not finish sooner either.
DECODE_SLOTS = 2
REDUCIBLE = ("L", "LA", "La", "RGB", "RGBA", "RGBa", "CMYK", "I", "F")  # the modes Image.reduce takes
STRIP_PIXELS = 4_000_000  # a strip shrunk at a time (16 MB of RGBA)
# The formats an upload may be, decoded by Pillow's own code: never EPS, PS or PDF, which Pillow
# hands to Ghostscript, a program a visitor's file would start. The Live page's uploader offers
# the same list (UPLOAD_EXTENSIONS); the decoder checks the content, whatever the name says.
UPLOAD_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")  # JPEG takes MPO too (a camera's JPEG with extra views)
UPLOAD_EXTENSIONS = ("jpg", "jpeg", "jfif", "png", "webp", "gif", "bmp")
FORMAT_NAMES = "JPEG, PNG, WebP, GIF or BMP"


class ImageError(ValueError):
    """The upload cannot be used; the message is meant for the user as it is."""


class DecodeGate:
    """At most `limit` decodes at once; the others wait their turn, first come first served."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._changed = threading.Condition()
        self._running = 0
        self._waiting: deque[object] = deque()

    def ahead(self) -> int:
        """How many photos one arriving now would wait behind (decoding or queued): 0 while a
        slot is free."""
        with self._changed:
            if self._running < self.limit and not self._waiting:
                return 0
            return self._running + len(self._waiting)

    def running(self) -> int:
        with self._changed:
            return self._running

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one of the slots for the block, after waiting for one."""
        ticket = object()
        with self._changed:
            self._waiting.append(ticket)
            while self._waiting[0] is not ticket or self._running >= self.limit:
                self._changed.wait()
            self._waiting.popleft()
            self._running += 1
            self._changed.notify_all()  # the next in line may take a slot that is still free
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                self._changed.notify_all()


DECODES = DecodeGate(DECODE_SLOTS)


@dataclass
class LoadedImage:
    image: Image.Image  # RGB, upright
    notes: list[str] = field(default_factory=list)  # what was done to it, for the user
    size: tuple[int, int] = (0, 0)  # (width, height) of the upright original, before any shrinking


def load_image(data: bytes, name: str = "the file", at_least: int | None = None) -> LoadedImage:
    """Decode an upload by content: EXIF rotation applied; CMYK, 16-bit, palette, grey and
    transparent images converted to RGB (transparency onto white); animations give their
    first frame. With `at_least`, the picture may come out smaller than the original, by a
    whole factor that keeps both its sides at least `at_least` pixels (or as they were): a
    JPEG decodes at that size directly, anything else shrinks (box filter) before its mode is
    converted."""
    if not data:
        raise ImageError(f"{name} is empty.")
    if len(data) > MAX_UPLOAD_MB * 1024 * 1024:
        raise ImageError(f"{name} is {len(data) / 2**20:.0f} MB; the limit is {MAX_UPLOAD_MB} MB.")
    notes = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=UPLOAD_FORMATS)
            if image.width * image.height > MAX_PIXELS:
                raise ImageError(f"{name} is {image.width} x {image.height} pixels; "
                                 f"the limit is {MAX_PIXELS // 1_000_000} megapixels.")
            if getattr(image, "n_frames", 1) > 1:
                notes.append(f"animated image: its first of {image.n_frames} frames is used")
                image.seek(0)
            size = image.size
            if at_least and image.format == "JPEG":
                image.draft(None, (at_least, at_least))  # the decoder scales by 1/2, 1/4 or 1/8
            image.load()
            image = shrunk(image, at_least) if at_least else image
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{name} has too many pixels; the limit is {MAX_PIXELS // 1_000_000} megapixels.")
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not an image this app can read ({FORMAT_NAMES}).")
    except (OSError, SyntaxError, ValueError, EOFError):
        raise ImageError(f"{name} is damaged or cut short: it could not be decoded.")

    # exif_transpose returns a copy even when there is nothing to turn: ask the tag instead.
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    if orientation not in (0, 1):
        notes.append("rotated upright from its EXIF orientation")
    upright = ImageOps.exif_transpose(image)
    return LoadedImage(to_rgb(upright, notes), notes, size[::-1] if orientation in (5, 6, 7, 8) else size)


def shrunk(image: Image.Image, at_least: int) -> Image.Image:
    """`image` made smaller by the largest whole factor that keeps both sides at least
    `at_least`, each new pixel the mean of the block it covers, in the image's own mode (16 bits
    and alpha included); the image itself where no factor of 2 or more does. Done in strips:
    Pillow shrinks an image with alpha through a premultiplied copy, which at full size would
    double a 50 MP picture's memory."""
    factor = min(image.width // at_least, image.height // at_least)
    if factor < 2:
        return image
    size = (-(-image.width // factor), -(-image.height // factor))
    if image.mode not in REDUCIBLE:  # 16-bit grey has no reduce; palette and 1-bit resize by nearest
        return image.resize(size, Image.Resampling.BOX)
    out = Image.new(image.mode, size)
    rows = factor * max(1, STRIP_PIXELS // (image.width * factor))
    for top in range(0, image.height, rows):
        strip = image.crop((0, top, image.width, min(top + rows, image.height)))
        out.paste(strip.reduce(factor), (0, top // factor))
    return out


def to_rgb(image: Image.Image, notes: list[str] | None = None) -> Image.Image:
    """Any PIL mode to 8-bit RGB."""
    notes = notes if notes is not None else []
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit or float grey: stretch to 0..255 rather than clip to white.
        arr = np.asarray(image, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        notes.append(f"{mode} image scaled to 8 bits")
        return Image.fromarray(arr.astype(np.uint8)).convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        notes.append("transparent areas shown on white")
        return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
    if mode == "CMYK":
        notes.append("CMYK converted to RGB")
    return image.convert("RGB") if mode != "RGB" else image


def resize_for_model(image: Image.Image, size: int) -> np.ndarray:
    """Square-resize to the model's input (as the training pipeline does: no crop, bilinear with
    antialiasing), as float32 0..255 of shape [size, size, 3]."""
    small = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    return np.asarray(small, dtype=np.float32)


@dataclass(frozen=True)
class Photo:
    """One upload, decoded once into what a page shows and what the models take."""
    width: int  # of the upright original
    height: int
    notes: tuple[str, ...]
    shown: Image.Image  # `show_width` wide, RGB
    inputs: dict[int, Image.Image]  # the models' square inputs (as `resize_for_model` makes them), by size


def prepare_photo(data: bytes, name: str, show_width: int, sizes: tuple[int, ...]) -> Photo:
    """Decode (raises ImageError), in one of the DECODES slots, and keep only the small
    pictures: the picture is decoded no larger than they need, and let go at once."""
    with DECODES.slot():
        loaded = load_image(data, name, at_least=max(show_width, *sizes))
        image = loaded.image
        shown = image.resize((show_width, max(1, round(image.height * show_width / image.width))),
                             Image.Resampling.BILINEAR, reducing_gap=3.0)
        inputs = {size: Image.fromarray(resize_for_model(image, size).astype(np.uint8)) for size in sizes}
    return Photo(*loaded.size, tuple(loaded.notes), shown, inputs)
