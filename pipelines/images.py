"""Decoding, validation and encoding of images: the one place that knows about files.

Everything downstream works on a `Picture`: RGB float32 pixels in [0, 1] of shape
(H, W, 3), plus what is needed to write the result back faithfully (alpha, gray,
bit depth, ICC profile, EXIF) and a safe name. Colour modes, palettes, 16-bit,
EXIF orientation and size limits are handled here and nowhere else; every
problem with an input becomes an `InputImageError` with one readable sentence.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import struct
import unicodedata
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from pipelines.errors import InputImageError

MAX_PIXELS_ENV = "RESTORATION_MAX_PIXELS"


def _max_pixels_from_env() -> int:
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return 40_000_000
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"{MAX_PIXELS_ENV} must be a positive whole number of pixels, got {raw!r}")
    return value


DEFAULT_MAX_PIXELS: int = _max_pixels_from_env()

ImageSource = str | os.PathLike | bytes | bytearray | memoryview | Image.Image | np.ndarray

# Pillow plugins we accept; "JPEG" also opens MPO (camera JPEGs with a preview frame).
# Restricting them keeps exotic decoders (EPS via Ghostscript, PSD, ...) away from uploads.
_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF", "AVIF")
_FORMAT_LIST = "PNG, JPEG, WebP, BMP, TIFF, GIF and AVIF"
_PIL_GRAY_MODES = frozenset({"1", "L", "LA", "La"})
_PIL_COLOUR_MODES = frozenset({"P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "YCbCr", "LAB", "HSV"})
_IMAGE_EXTENSION = re.compile(r"png|jpe?g|jpe|jfif|webp|bmp|dib|tiff?|gif|avif|hei[cf]|jp2|p[gp]m")
_NAME_MAX = 100
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_EXIF_PREFIX = b"Exif\x00\x00"
_ORIENTATION = 0x0112
# Descriptive IFD0 tags worth keeping from a TIFF (the rest describe the TIFF's own layout).
_TIFF_EXIF_TAGS = (0x010E, 0x010F, 0x0110, 0x0131, 0x0132, 0x013B, 0x8298)
_EXIF_SUB_IFDS = (0x8769, 0x8825)


@dataclass(frozen=True, eq=False)
class Picture:
    """Decoded pixels plus what is needed to write a result back like the source."""

    rgb: np.ndarray = field(repr=False)
    alpha: np.ndarray | None = field(repr=False)
    grayscale: bool
    bit_depth: int
    icc_profile: bytes | None = field(repr=False)
    exif: bytes | None = field(repr=False)
    name: str

    def __post_init__(self) -> None:
        rgb = self.rgb
        if not (isinstance(rgb, np.ndarray) and rgb.ndim == 3 and rgb.shape[2] == 3):
            raise ValueError("Picture.rgb must be an array of shape (H, W, 3)")
        if rgb.dtype != np.float32 or 0 in rgb.shape:
            raise ValueError("Picture.rgb must be non-empty float32 in [0, 1]")
        alpha = self.alpha
        if alpha is not None and (alpha.shape != rgb.shape[:2] or alpha.dtype != np.float32):
            raise ValueError("Picture.alpha must be float32 of shape (H, W); see resize_plane")
        if self.bit_depth not in (8, 16):
            raise ValueError("Picture.bit_depth must be 8 or 16")
        object.__setattr__(self, "name", _clean_name(self.name) or "image")

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    def with_pixels(
        self, rgb: np.ndarray, alpha: np.ndarray | None = None, *, grayscale: bool | None = None
    ) -> Picture:
        """Same metadata, new pixels (clipped to [0, 1]); `alpha=None` drops the alpha plane.

        A gray source stays gray: models tint gray input slightly, and it is saved back as
        gray. A task that adds colour (colorization) passes `grayscale=False`.
        """
        rgb = np.clip(np.asarray(rgb, dtype=np.float32), 0.0, 1.0)
        if alpha is not None:
            alpha = np.clip(np.asarray(alpha, dtype=np.float32), 0.0, 1.0)
        gray = self.grayscale if grayscale is None else grayscale
        return dataclasses.replace(self, rgb=rgb, alpha=alpha, grayscale=gray)


class _Pixels(NamedTuple):
    rgb: np.ndarray
    alpha: np.ndarray | None
    grayscale: bool
    bit_depth: int


class _Metadata(NamedTuple):
    icc_profile: bytes | None
    exif: bytes | None
    orientation: int


_NO_METADATA = _Metadata(None, None, 1)


# ---------------------------------------------------------------- loading


def load_image(
    source: ImageSource, *, max_pixels: int | None = None, name: str | None = None
) -> Picture:
    """Decode and validate an image from a path, bytes, a PIL image or a numpy array.

    uint8 arrays are RGB(A) as Gradio gives them. EXIF orientation is applied to the
    pixels. Raises InputImageError, with one sentence for the user, for anything unusable.
    """
    limit = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    if isinstance(source, np.ndarray):
        pixels, meta, default_name = _from_array(source, limit), _NO_METADATA, "image"
    elif isinstance(source, Image.Image):
        pixels, meta = _decode_guarded(source, None, limit)
        default_name = str(getattr(source, "filename", "") or "image")
    elif isinstance(source, (bytes, bytearray, memoryview)):
        pixels, meta = _from_bytes(bytes(source), limit)
        default_name = "image"
    elif isinstance(source, (str, os.PathLike)):
        pixels, meta = _from_bytes(_read_file(Path(os.fsdecode(source)), limit), limit)
        default_name = os.fsdecode(source)
    else:
        raise InputImageError(
            f"Cannot read an image from a {type(source).__name__}: "
            "pass a file path, bytes, a PIL image or a numpy array."
        )
    return _picture(pixels, meta, _name_from_filename(name if name is not None else default_name))


def _picture(pixels: _Pixels, meta: _Metadata, name: str) -> Picture:
    alpha = pixels.alpha
    return Picture(
        rgb=_orient(pixels.rgb, meta.orientation),
        alpha=None if alpha is None else _orient(alpha, meta.orientation),
        grayscale=pixels.grayscale,
        bit_depth=pixels.bit_depth,
        icc_profile=meta.icc_profile,
        exif=meta.exif,
        name=name,
    )


def _read_file(path: Path, limit: int) -> bytes:
    try:
        size = path.stat().st_size
        # Generous bound (16 bytes per pixel: float RGBA) so a huge file is never read into memory.
        if size > limit * 16 + (64 << 20):
            raise InputImageError(
                f"The file is {size:,} bytes, too large for an image of at most {limit:,} pixels "
                f"(set {MAX_PIXELS_ENV} to raise the limit)."
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise InputImageError(f"The file {str(path)!r} does not exist.") from None
    except IsADirectoryError:
        raise InputImageError(f"{str(path)!r} is a folder, not an image file.") from None
    except OSError as exc:
        raise InputImageError(
            f"The file {str(path)!r} could not be read ({exc.strerror})."
        ) from exc


def _from_bytes(data: bytes, limit: int) -> tuple[_Pixels, _Metadata]:
    if not data:
        raise InputImageError("The file is empty (0 bytes).")
    try:
        image = Image.open(io.BytesIO(data), formats=_FORMATS)
    except UnidentifiedImageError:
        return _from_unidentified(data, limit), _NO_METADATA
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _too_large(_header_size(data), limit) from exc
    except Exception as exc:  # Pillow's plugins raise many types on malformed headers
        raise InputImageError(f"The image header is corrupt: {_reason(exc)}.") from exc
    with image:
        return _decode_guarded(image, data, limit)


def _decode_guarded(
    image: Image.Image, data: bytes | None, limit: int
) -> tuple[_Pixels, _Metadata]:
    try:
        return _decode(image, data, limit)
    except InputImageError:
        raise
    except MemoryError as exc:
        raise InputImageError("There is not enough memory to decode this image.") from exc
    except Exception as exc:  # decoders raise OSError, SyntaxError, EOFError, zlib.error, ...
        raise InputImageError(f"The image data is truncated or corrupt: {_reason(exc)}.") from exc


def _decode(image: Image.Image, data: bytes | None, limit: int) -> tuple[_Pixels, _Metadata]:
    _check_size(image.size, limit)
    _check_still(image)
    rawmode = None if data is None else _deep_rawmode(image)
    if rawmode is not None:
        pixels = _decode_with_cv2(data, gray=rawmode.startswith("LA"))
    else:
        pixels = _decode_with_pil(image)
    # After Pillow loads a TIFF it has applied and dropped the orientation itself, so reading
    # the metadata afterwards gives 1 there, and the real value where we decoded the pixels.
    return pixels, _metadata(image)


def _reason(exc: BaseException) -> str:
    """The first line of a decoder's message, without its full stop, to end our sentence."""
    lines = str(exc).strip().splitlines()
    return lines[0].rstrip(" .") if lines and lines[0].strip(" .") else type(exc).__name__


def _check_size(size: tuple[int, int], limit: int) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise InputImageError(f"The image has zero width or height ({width}x{height}).")
    if width * height > limit:
        raise _too_large(size, limit)


def _too_large(size: tuple[int, int] | None, limit: int) -> InputImageError:
    if size is None:
        return InputImageError(
            f"The image is larger than Pillow's decompression-bomb guard allows, over the limit "
            f"of {limit:,} pixels; set {MAX_PIXELS_ENV} to raise it."
        )
    width, height = size
    pixels = width * height
    if pixels <= limit:
        return InputImageError(
            f"The image is {width}x{height} ({pixels:,} pixels), more than Pillow's "
            "decompression-bomb guard (PIL.Image.MAX_IMAGE_PIXELS) allows."
        )
    return InputImageError(
        f"The image is {width}x{height} ({pixels:,} pixels), over the limit of {limit:,} pixels; "
        f"set {MAX_PIXELS_ENV} to raise it."
    )


def _check_still(image: Image.Image) -> None:
    frames = getattr(image, "n_frames", 1)
    # An MPO's extra frames are previews or a stereo pair; its first frame is the photo.
    if frames <= 1 or image.format == "MPO":
        return
    if image.format == "TIFF":
        raise InputImageError(
            f"The file is a multi-page TIFF with {frames} pages: only single images are "
            "supported; export one page first."
        )
    raise InputImageError(
        f"The file is an animated {image.format or 'image'} with {frames} frames: only still "
        "images are supported; export one frame first."
    )


def _from_unidentified(data: bytes, limit: int) -> _Pixels:
    size = _header_size(data)
    if size is not None and 0 in size:
        _check_size(size, limit)
    if size is not None and _tiff_ifd0(data) is not None:
        # TIFFs Pillow cannot open (float RGB, unusual layouts) may still decode with libtiff.
        _check_size(size, limit)
        array = _cv2_decode(data)
        if array is not None:
            return _orient_pixels(_pixels_from_cv2(array, gray=False), _take_orientation(data)[1])
    raise InputImageError(
        "The file is not an image PIL/OpenCV can read: no supported format "
        f"({_FORMAT_LIST}) recognises its contents."
    )


def _orient_pixels(pixels: _Pixels, orientation: int) -> _Pixels:
    alpha = None if pixels.alpha is None else _orient(pixels.alpha, orientation)
    return pixels._replace(rgb=_orient(pixels.rgb, orientation), alpha=alpha)


# ---------------------------------------------------------------- pixel decoding


def _deep_rawmode(image: Image.Image) -> str | None:
    """The raw mode of a 16-bit colour or gray+alpha file, which Pillow truncates to 8 bits."""
    if image.mode not in ("RGB", "RGBA", "LA") or image.format not in ("PNG", "TIFF"):
        return None
    for tile in image.tile:
        args = tile.args
        rawmode = args if isinstance(args, str) else (args[0] if args else "")
        if isinstance(rawmode, str) and ";16" in rawmode:
            return rawmode
    return None


def _cv2_decode(data: bytes) -> np.ndarray | None:
    if _tiff_ifd0(data) is not None:
        # OpenCV applies a TIFF's orientation itself, even with IMREAD_UNCHANGED (and does
        # not for PNG): hide it so that orientation is applied in one place, _orient.
        data = _take_orientation(data)[0]
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def _decode_with_cv2(data: bytes, *, gray: bool) -> _Pixels:
    array = _cv2_decode(data)
    if array is None:
        raise InputImageError("The image data is truncated or corrupt: OpenCV could not decode it.")
    return _pixels_from_cv2(array, gray=gray)


def _pixels_from_cv2(array: np.ndarray, *, gray: bool) -> _Pixels:
    if array.dtype not in (np.uint8, np.uint16) and array.dtype.kind != "f":
        raise InputImageError(f"Images with {array.dtype} samples are not supported.")
    if array.ndim == 3 and array.shape[2] in (3, 4):
        array = array[:, :, [2, 1, 0, 3][: array.shape[2]]]  # BGR(A) -> RGB(A)
    return _pixels_from_array(array, gray=gray)


def _decode_with_pil(image: Image.Image) -> _Pixels:
    mode = image.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        return _deep_gray(image)
    if mode == "CMYK":
        image = _cmyk_to_rgb(image)
    elif mode not in _PIL_GRAY_MODES and mode not in _PIL_COLOUR_MODES:
        raise InputImageError(
            f"Images in PIL mode {mode!r} are not supported; convert to RGB, RGBA or L first."
        )
    gray = mode in _PIL_GRAY_MODES
    alpha = image.has_transparency_data
    target = ("LA" if alpha else "L") if gray else ("RGBA" if alpha else "RGB")
    converted = image if image.mode == target else image.convert(target)
    return _pixels_from_array(np.asarray(converted), gray=gray)


def _deep_gray(image: Image.Image) -> _Pixels:
    array = np.asarray(image)
    if image.mode == "I":
        if array.min() < 0 or array.max() > 65535:
            raise InputImageError(
                "32-bit integer images with values outside 0..65535 are not supported."
            )
        array = array.astype(np.uint16)
    return _pixels_from_array(array, gray=True)


def _cmyk_to_rgb(image: Image.Image) -> Image.Image:
    icc = image.info.get("icc_profile")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
            converted = ImageCms.profileToProfile(image, source, srgb, outputMode="RGB")
            if converted is not None:
                return converted
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # a broken or mismatched profile: fall back to Pillow's plain conversion
    return image.convert("RGB")


def _from_array(array: np.ndarray, limit: int) -> _Pixels:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (2, 3, 4)):
        raise InputImageError(
            f"An array of shape {array.shape} is not an image: expected HxW, HxWx3 or HxWx4."
        )
    _check_size((array.shape[1], array.shape[0]), limit)
    return _pixels_from_array(array, gray=array.ndim == 2 or array.shape[2] == 2)


def _pixels_from_array(array: np.ndarray, *, gray: bool) -> _Pixels:
    """RGB(A) / gray(+alpha) samples in any supported dtype -> float planes in [0, 1]."""
    values, bit_depth = _unit_float(array)
    if values.ndim == 2:
        values = values[:, :, None]
    channels = values.shape[2]
    alpha = np.ascontiguousarray(values[:, :, -1]) if channels in (2, 4) else None
    colour = values[:, :, :1] if channels <= 2 else values[:, :, :3]
    rgb = np.ascontiguousarray(np.broadcast_to(colour, (*colour.shape[:2], 3)))
    return _Pixels(rgb, alpha, gray or channels <= 2, bit_depth)


def _unit_float(array: np.ndarray) -> tuple[np.ndarray, int]:
    if array.dtype == np.bool_:
        return array.astype(np.float32), 8
    if array.dtype == np.uint8:
        return array.astype(np.float32) / np.float32(255), 8
    if array.dtype.kind == "u" and array.dtype.itemsize == 2:
        return array.astype(np.float32) / np.float32(65535), 16
    if array.dtype.kind == "f":
        values = array.astype(np.float32)
        if not np.isfinite(values).all():
            raise InputImageError("The image contains NaN or infinite values.")
        return np.clip(values, 0.0, 1.0, out=values), 16
    raise InputImageError(
        f"Arrays of dtype {array.dtype} are not supported: use uint8, uint16 or float in [0, 1]."
    )


def _orient(plane: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (as PIL.ImageOps.exif_transpose does) to an (H, W[, C]) plane."""
    if orientation == 2:
        plane = plane[:, ::-1]
    elif orientation == 3:
        plane = plane[::-1, ::-1]
    elif orientation == 4:
        plane = plane[::-1]
    elif orientation == 5:
        plane = plane.swapaxes(0, 1)
    elif orientation == 6:
        plane = np.rot90(plane, -1)
    elif orientation == 7:
        plane = plane[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        plane = np.rot90(plane, 1)
    return np.ascontiguousarray(plane)


# ---------------------------------------------------------------- metadata


def _metadata(image: Image.Image) -> _Metadata:
    icc = _usable_icc(image)
    raw = image.info.get("exif")
    if isinstance(raw, bytes) and raw:
        exif, orientation = _reset_orientation(raw)
    elif image.format == "TIFF":
        exif, orientation = _tiff_exif(image)
    else:
        exif, orientation = None, 1
    return _Metadata(icc, exif, orientation)


def _usable_icc(image: Image.Image) -> bytes | None:
    icc = image.info.get("icc_profile")
    # CMYK pixels are converted to sRGB on loading, and a CMYK or Lab profile cannot
    # describe the RGB or gray pixels we keep.
    if image.mode == "CMYK" or not isinstance(icc, bytes):
        return None
    return icc if _icc_space(icc) in (b"RGB ", b"GRAY") else None


def _icc_space(icc: bytes) -> bytes:
    return icc[16:20]


def _reset_orientation(raw: bytes) -> tuple[bytes, int]:
    """(EXIF with Orientation set to 1, the original orientation).

    Patching the one value keeps every other byte (maker notes hold absolute offsets
    that a rewrite would break).
    """
    exif = raw if raw.startswith(_EXIF_PREFIX) else _EXIF_PREFIX + raw
    tiff, orientation = _take_orientation(exif[len(_EXIF_PREFIX) :])
    return _EXIF_PREFIX + tiff, orientation


def _take_orientation(tiff: bytes) -> tuple[bytes, int]:
    """(TIFF data with its IFD0 Orientation set to 1, the orientation it had)."""
    found = _tiff_ifd0(tiff)
    if found is None or _ORIENTATION not in found[1]:
        return tiff, 1
    order, entries = found
    kind, count, offset = entries[_ORIENTATION]
    if kind != 3 or count != 1 or offset + 2 > len(tiff):
        return tiff, 1
    (orientation,) = struct.unpack_from(order + "H", tiff, offset)
    if orientation == 1:
        return tiff, 1
    patched = bytearray(tiff)
    struct.pack_into(order + "H", patched, offset, 1)
    return bytes(patched), _valid_orientation(orientation)


def _tiff_exif(image: Image.Image) -> tuple[bytes | None, int]:
    tags = image.getexif()
    orientation = _valid_orientation(tags.get(_ORIENTATION, 1))
    kept = Image.Exif()
    for tag in _TIFF_EXIF_TAGS:
        if tag in tags:
            kept[tag] = tags[tag]
    sub_ifds = {tag: tags.get_ifd(tag) for tag in _EXIF_SUB_IFDS}
    for tag, values in sub_ifds.items():
        if values:
            kept.get_ifd(tag).update(values)
    if not kept and not any(sub_ifds.values()):
        return None, orientation
    if _ORIENTATION in tags:
        kept[_ORIENTATION] = 1
    return kept.tobytes(), orientation


def _valid_orientation(value: object) -> int:
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _tiff_ifd0(tiff: bytes) -> tuple[str, dict[int, tuple[int, int, int]]] | None:
    """Byte order and first-IFD entries {tag: (type, count, offset of value)} of TIFF data."""
    if tiff[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    order = "<" if tiff[:2] == b"II" else ">"
    try:
        (start,) = struct.unpack_from(order + "I", tiff, 4)
        (count,) = struct.unpack_from(order + "H", tiff, start)
        entries = {}
        for index in range(count):
            position = start + 2 + 12 * index
            tag, kind, n = struct.unpack_from(order + "HHI", tiff, position)
            entries[tag] = (kind, n, position + 8)
    except struct.error:
        return None
    return order, entries


def _tiff_value(tiff: bytes, tag: int) -> int | None:
    found = _tiff_ifd0(tiff)
    if found is None or tag not in found[1]:
        return None
    order, entries = found
    kind, count, offset = entries[tag]
    if count != 1 or kind not in (3, 4):
        return None
    return struct.unpack_from(order + ("H" if kind == 3 else "I"), tiff, offset)[0]


def _header_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from the header alone, for files Pillow refused to open."""
    if data.startswith(_PNG_SIGNATURE) and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    width, height = _tiff_value(data, 256), _tiff_value(data, 257)
    if width is not None and height is not None:
        return width, height
    return _pillow_header_size(data)


def _pillow_header_size(data: bytes) -> tuple[int, int] | None:
    # Calls the format's plugin directly, skipping only Image.open's decompression-bomb guard.
    for fmt in _FORMATS:
        factory, accept = Image.OPEN.get(fmt, (None, None))
        if factory is None:
            continue
        try:
            accepted = accept is None or accept(data[:16])
            if accepted and not isinstance(accepted, str):
                return factory(io.BytesIO(data), "").size
        except Exception:  # an unreadable header only costs the message its dimensions
            return None
    return None


# ---------------------------------------------------------------- names


def _name_from_filename(filename: str) -> str:
    """ "photo" for ".../photo.jpg": the last path component without an image extension."""
    base = re.split(r"[\\/]", filename)[-1]
    stem, dot, extension = base.rpartition(".")
    if dot and _IMAGE_EXTENSION.fullmatch(extension.lower()):
        base = stem
    return _clean_name(base) or "image"


def _clean_name(text: str) -> str:
    """Only [A-Za-z0-9._-], no "..", no leading dot or dash; idempotent, may return ""."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_text)
    cleaned = re.sub(r"\.{2,}", ".", cleaned).strip("._-")
    return cleaned[:_NAME_MAX].rstrip("._-")


def output_name(picture: Picture, suffix: str) -> str:
    """File name for a result, e.g. "photo_realesrgan-x4plus_x4.png"."""
    suffix = suffix[:-4] if suffix.lower().endswith(".png") else suffix
    tail = _clean_name(suffix)
    return f"{picture.name}_{tail}.png" if tail else f"{picture.name}.png"


# ---------------------------------------------------------------- encoding


def _output_layout(picture: Picture, bit_depth: int) -> tuple[bool, bool]:
    """(gray, alpha) of the written file; OpenCV has no 16-bit gray+alpha PNG, so RGBA."""
    alpha = picture.alpha is not None
    return picture.grayscale and not (alpha and bit_depth == 16), alpha


def _quantized(picture: Picture, bit_depth: int) -> np.ndarray:
    gray, alpha = _output_layout(picture, bit_depth)
    luma = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as Pillow's "L"
    planes = picture.rgb @ luma if gray else picture.rgb
    if alpha:
        planes = np.dstack([planes, picture.alpha])
    top = 255 if bit_depth == 8 else 65535
    scaled = np.clip(planes * np.float32(top) + np.float32(0.5), 0, top)
    return scaled.astype(np.uint8 if bit_depth == 8 else np.uint16)


def _matching_icc(picture: Picture, gray: bool) -> bytes | None:
    icc = picture.icc_profile
    if icc and _icc_space(icc) == (b"GRAY" if gray else b"RGB "):
        return icc
    return None  # a PNG reader must ignore a profile of the wrong colour space anyway


def to_pil(picture: Picture) -> Image.Image:
    """An 8-bit PIL image (L, LA, RGB or RGBA) carrying the ICC profile and EXIF in .info."""
    image = Image.fromarray(_quantized(picture, 8))
    icc = _matching_icc(picture, picture.grayscale)
    if icc:
        image.info["icc_profile"] = icc
    if picture.exif:
        image.info["exif"] = picture.exif
    return image


def encode_png(picture: Picture) -> bytes:
    """PNG bytes: 16-bit when bit_depth is 16, gray when grayscale, alpha when present,
    with the ICC profile and EXIF."""
    if picture.bit_depth == 8:
        buffer = io.BytesIO()
        Image.fromarray(_quantized(picture, 8)).save(buffer, "PNG")
        png = buffer.getvalue()
    else:
        png = _encode_png16(_quantized(picture, 16))
    gray, _ = _output_layout(picture, picture.bit_depth)
    return _insert_after_ihdr(png, _metadata_chunks(picture, gray))


def _encode_png16(samples: np.ndarray) -> bytes:
    if samples.ndim == 3:
        samples = np.ascontiguousarray(samples[:, :, [2, 1, 0, 3][: samples.shape[2]]])
    ok, encoded = cv2.imencode(".png", samples, [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:
        raise RuntimeError("OpenCV could not encode a 16-bit PNG")
    return encoded.tobytes()


def _metadata_chunks(picture: Picture, gray: bool) -> list[bytes]:
    chunks = []
    icc = _matching_icc(picture, gray)
    if icc:
        chunks.append(_png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc)))
    if picture.exif:
        exif = picture.exif
        chunks.append(_png_chunk(b"eXIf", exif.removeprefix(_EXIF_PREFIX)))
    return chunks


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body)
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def _insert_after_ihdr(png: bytes, chunks: list[bytes]) -> bytes:
    # IHDR is always first and 13 bytes long, so it ends at byte 33.
    if png[:8] != _PNG_SIGNATURE or png[12:16] != b"IHDR":
        raise RuntimeError("the PNG encoder produced an unexpected stream")
    return png[:33] + b"".join(chunks) + png[33:]


def save_png(picture: Picture, path: str | os.PathLike) -> Path:
    """Write `encode_png(picture)` to `path`, through a temporary name so that no reader
    ever sees half a file."""
    path = Path(path)
    data = encode_png(picture)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        with temporary.open("xb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


# ---------------------------------------------------------------- resizing


def resize_plane(plane: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize a float alpha plane (H, W) or image (H, W, C): bicubic up, area down, clipped."""
    if width < 1 or height < 1:
        raise ValueError(f"cannot resize to {width}x{height}")
    source = np.ascontiguousarray(plane, dtype=np.float32)
    if source.shape[:2] == (height, width):
        return np.clip(source, 0.0, 1.0)
    shrinking = width < source.shape[1] or height < source.shape[0]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    out = cv2.resize(source, (width, height), interpolation=interpolation)
    if source.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    return np.clip(out, 0.0, 1.0, out=out)
