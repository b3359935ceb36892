"""Turning whatever a user uploads into an upright RGB picture, or one clear sentence why not."""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

MAX_UPLOAD_MB = 20  # keep in step with .streamlit/config.toml server.maxUploadSize
MAX_PIXELS = 50_000_000  # beyond this a "photo" is a decompression bomb, not a pet
# The formats an upload may be, decoded by Pillow's own code: never EPS, PS or PDF, which Pillow
# hands to Ghostscript, a program a visitor's file would start. The Live page's uploader offers
# the same list (UPLOAD_EXTENSIONS); the decoder checks the content, whatever the name says.
UPLOAD_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")  # JPEG takes MPO too (a camera's JPEG with extra views)
UPLOAD_EXTENSIONS = ("jpg", "jpeg", "jfif", "png", "webp", "gif", "bmp")
FORMAT_NAMES = "JPEG, PNG, WebP, GIF or BMP"


class ImageError(ValueError):
    """The upload cannot be used; the message is meant for the user as it is."""


@dataclass
class LoadedImage:
    image: Image.Image  # RGB, upright
    notes: list[str] = field(default_factory=list)  # what was done to it, for the user


def load_image(data: bytes, name: str = "the file") -> LoadedImage:
    """Decode an upload by content: EXIF rotation applied; CMYK, 16-bit, palette, grey and
    transparent images converted to RGB (transparency onto white); animations give their
    first frame."""
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
            image.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"{name} has too many pixels; the limit is {MAX_PIXELS // 1_000_000} megapixels.")
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not an image this app can read ({FORMAT_NAMES}).")
    except (OSError, SyntaxError, ValueError, EOFError):
        raise ImageError(f"{name} is damaged or cut short: it could not be decoded.")

    # exif_transpose returns a copy even when there is nothing to turn: ask the tag instead.
    if image.getexif().get(ExifTags.Base.Orientation, 1) not in (0, 1):
        notes.append("rotated upright from its EXIF orientation")
    upright = ImageOps.exif_transpose(image)
    return LoadedImage(to_rgb(upright, notes), notes)


def to_rgb(image: Image.Image, notes: list[str] | None = None) -> Image.Image:
    """Any PIL mode to 8-bit RGB."""
    notes = notes if notes is not None else []
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit or float grey: stretch to 0..255 rather than clip to white.
        arr = np.asarray(image, dtype=np.float64)
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
    """Decode (raises ImageError) and keep only the small pictures: the full-size image, up to
    50 megapixels, is let go at once."""
    loaded = load_image(data, name)
    image = loaded.image
    shown = image.resize((show_width, max(1, round(image.height * show_width / image.width))),
                         Image.Resampling.BILINEAR, reducing_gap=3.0)
    inputs = {size: Image.fromarray(resize_for_model(image, size).astype(np.uint8)) for size in sizes}
    return Photo(image.width, image.height, tuple(loaded.notes), shown, inputs)
