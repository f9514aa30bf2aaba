"""pipelines.images: decoding, validation, metadata and encoding, on images made here."""

from __future__ import annotations

import io
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from pipelines.errors import InputImageError
from pipelines.images import (
    DEFAULT_MAX_PIXELS,
    Picture,
    encode_png,
    load_image,
    output_name,
    resize_plane,
    save_png,
    to_pil,
)

REPO = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


# ---------------------------------------------------------------- helpers


def rgb8(height: int = 6, width: int = 7, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def to8(values: np.ndarray) -> np.ndarray:
    return np.round(values * 255).astype(np.uint8)


def to16(values: np.ndarray) -> np.ndarray:
    return np.round(values * 65535).astype(np.uint16)


def encoded(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def with_chunk_after_ihdr(png: bytes, kind: bytes, body: bytes) -> bytes:
    return png[:33] + png_chunk(kind, body) + png[33:]


def png_gray_alpha16(gray: np.ndarray, alpha: np.ndarray) -> bytes:
    """A 16-bit gray+alpha PNG, which neither Pillow nor OpenCV can write."""
    height, width = gray.shape
    samples = np.dstack([gray, alpha]).astype(">u2")
    rows = b"".join(b"\x00" + samples[y].tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 16, 4, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def tiff_rgb(values: np.ndarray, orientation: int) -> bytes:
    """An uncompressed RGB TIFF of uint16 or float32 samples with an Orientation tag
    (Pillow writes neither 16-bit nor float RGB TIFFs)."""
    height, width, _ = values.shape
    pixels = values.astype(values.dtype.newbyteorder("<")).tobytes()
    sample_format = 3 if values.dtype.kind == "f" else 1
    entries = {
        256: (4, [width]),
        257: (4, [height]),
        258: (3, [values.dtype.itemsize * 8] * 3),
        259: (3, [1]),
        262: (3, [2]),
        273: (4, [0]),
        274: (3, [orientation]),
        277: (3, [3]),
        278: (4, [height]),
        279: (4, [len(pixels)]),
        339: (3, [sample_format] * 3),
    }
    extra_at = 8 + 2 + 12 * len(entries) + 4
    entries[273] = (4, [extra_at + 12])  # after the two 3-SHORT arrays below
    fields, extra = b"", b""
    for tag, (kind, items) in sorted(entries.items()):
        packed = struct.pack("<" + ("H" if kind == 3 else "I") * len(items), *items)
        if len(packed) > 4:
            packed, extra = struct.pack("<I", extra_at + len(extra)), extra + packed
        fields += struct.pack("<HHI", tag, kind, len(items)) + packed.ljust(4, b"\x00")
    assert len(extra) == 12
    header = b"II*\x00" + struct.pack("<IH", 8, len(entries))
    return header + fields + b"\x00" * 4 + extra + pixels


def with_ihdr_size(png: bytes, width: int, height: int) -> bytes:
    """A real PNG whose IHDR now claims another size (CRC fixed, pixel data untouched)."""
    data = bytearray(png)
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def exif_with(**tags: object) -> Image.Exif:
    names = {"orientation": 0x0112, "make": 0x010F, "artist": 0x013B, "model": 0x0110}
    exif = Image.Exif()
    for key, value in tags.items():
        exif[names[key]] = value
    return exif


def read_exif(raw: bytes) -> Image.Exif:
    exif = Image.Exif()
    exif.load(raw)
    return exif


def cv2_16(array_rgb: np.ndarray, ext: str = ".png") -> bytes:
    channels = array_rgb.shape[2] if array_rgb.ndim == 3 else 1
    bgr = array_rgb if channels == 1 else array_rgb[:, :, [2, 1, 0, 3][:channels]]
    ok, buffer = cv2.imencode(ext, np.ascontiguousarray(bgr))
    assert ok
    return buffer.tobytes()


def cv2_read(data: bytes) -> np.ndarray:
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array.ndim == 3:
        array = array[:, :, [2, 1, 0, 3][: array.shape[2]]]
    return array


def reopen(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# ---------------------------------------------------------------- 8-bit modes


@pytest.mark.parametrize(
    ("fmt", "params"),
    [("PNG", {}), ("BMP", {}), ("TIFF", {}), ("WEBP", {"lossless": True})],
)
def test_rgb_lossless_formats_round_trip_exactly(tmp_path, fmt, params):
    pixels = rgb8()
    path = write(tmp_path / f"photo.{fmt.lower()}", encoded(Image.fromarray(pixels), fmt, **params))

    picture = load_image(path)

    assert picture.rgb.dtype == np.float32 and picture.rgb.shape == (6, 7, 3)
    assert (picture.width, picture.height) == (7, 6)
    assert np.array_equal(to8(picture.rgb), pixels)
    assert picture.alpha is None and not picture.grayscale and picture.bit_depth == 8
    assert picture.name == "photo"
    saved = reopen(save_png(picture, tmp_path / "out.png").read_bytes())
    assert saved.mode == "RGB" and np.array_equal(np.asarray(saved), pixels)


def test_jpeg_decodes_like_pillow(tmp_path):
    data = encoded(Image.fromarray(rgb8(16, 16)), "JPEG", quality=90)
    picture = load_image(write(tmp_path / "photo.jpg", data))
    assert np.array_equal(to8(picture.rgb), np.asarray(reopen(data).convert("RGB")))


def test_rgba_round_trip(tmp_path):
    pixels = np.dstack([rgb8(), rgb8(seed=1)[:, :, 0]])
    picture = load_image(encoded(Image.fromarray(pixels), "PNG"))

    assert np.array_equal(to8(picture.rgb), pixels[:, :, :3])
    assert picture.alpha is not None and np.array_equal(to8(picture.alpha), pixels[:, :, 3])
    saved = reopen(save_png(picture, tmp_path / "out.png").read_bytes())
    assert saved.mode == "RGBA" and np.array_equal(np.asarray(saved), pixels)


def test_gray_round_trip(tmp_path):
    gray = rgb8()[:, :, 0]
    picture = load_image(encoded(Image.fromarray(gray), "PNG"))

    assert picture.grayscale and picture.alpha is None and picture.bit_depth == 8
    for channel in range(3):
        assert np.array_equal(to8(picture.rgb[:, :, channel]), gray)
    saved = reopen(save_png(picture, tmp_path / "out.png").read_bytes())
    assert saved.mode == "L" and np.array_equal(np.asarray(saved), gray)


def test_gray_alpha_round_trip(tmp_path):
    pixels = rgb8()[:, :, :2]
    picture = load_image(encoded(Image.fromarray(pixels), "PNG"))

    assert picture.grayscale and np.array_equal(to8(picture.alpha), pixels[:, :, 1])
    saved = reopen(save_png(picture, tmp_path / "out.png").read_bytes())
    assert saved.mode == "LA" and np.array_equal(np.asarray(saved), pixels)


def palette_image(transparent_index: int | None) -> Image.Image:
    image = Image.fromarray(rgb8(8, 8)).quantize(colors=16)
    if transparent_index is not None:
        image.info["transparency"] = transparent_index
    return image


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_without_transparency_becomes_rgb(tmp_path, fmt):
    data = encoded(palette_image(None), fmt)
    picture = load_image(data)

    assert picture.alpha is None and not picture.grayscale
    expected = np.asarray(reopen(data).convert("RGB"))
    assert np.array_equal(to8(picture.rgb), expected)
    saved = reopen(save_png(picture, tmp_path / "out.png").read_bytes())
    assert saved.mode == "RGB" and np.array_equal(np.asarray(saved), expected)


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_with_transparency_becomes_rgba(tmp_path, fmt):
    source = palette_image(3)
    data = encoded(source, fmt, transparency=3)
    picture = load_image(data)

    expected = np.asarray(reopen(data).convert("RGBA"))
    assert picture.alpha is not None
    assert np.array_equal(to8(picture.alpha), expected[:, :, 3])
    assert np.array_equal(picture.alpha == 0, np.asarray(source) == 3)
    saved = reopen(save_png(picture, tmp_path / "out.png").read_bytes())
    assert saved.mode == "RGBA" and np.array_equal(np.asarray(saved), expected)


def test_one_bit_image_is_gray(tmp_path):
    bits = rgb8()[:, :, 0] > 127
    picture = load_image(encoded(Image.fromarray(bits), "PNG"))

    assert picture.grayscale and picture.bit_depth == 8
    assert np.array_equal(picture.rgb[:, :, 0], bits.astype(np.float32))
    saved = reopen(save_png(picture, tmp_path / "out.png").read_bytes())
    assert saved.mode == "L" and np.array_equal(np.asarray(saved), bits * np.uint8(255))


def cmyk_image() -> Image.Image:
    cmyk = np.random.default_rng(3).integers(0, 256, (8, 8, 4), dtype=np.uint8)
    return Image.frombytes("CMYK", (8, 8), cmyk.tobytes())


@pytest.mark.parametrize(("fmt", "params"), [("JPEG", {"quality": 95}), ("TIFF", {})])
def test_cmyk_converts_to_rgb(fmt, params):
    data = encoded(cmyk_image(), fmt, **params)
    picture = load_image(data)

    assert not picture.grayscale and picture.alpha is None and picture.icc_profile is None
    assert np.array_equal(to8(picture.rgb), np.asarray(reopen(data).convert("RGB")))


def test_cmyk_with_an_unusable_profile_falls_back_to_plain_conversion():
    # An RGB profile on CMYK pixels cannot build a transform; that must not escape.
    data = encoded(cmyk_image(), "JPEG", quality=95, icc_profile=SRGB_ICC)
    picture = load_image(data)

    assert picture.icc_profile is None
    assert np.array_equal(to8(picture.rgb), np.asarray(reopen(data).convert("RGB")))


@pytest.mark.parametrize(
    ("mode", "gray"),
    [
        ("RGBX", False),
        ("RGBa", False),
        ("PA", False),
        ("YCbCr", False),
        ("LAB", False),
        ("HSV", False),
        ("La", True),
        ("I", True),
        ("F", True),
        ("I;16B", True),
    ],
)
def test_pil_images_in_other_modes(mode, gray):
    picture = load_image(Image.new(mode, (5, 4)))
    assert picture.rgb.shape == (4, 5, 3) and picture.grayscale is gray
    assert float(picture.rgb.min()) >= 0.0 and float(picture.rgb.max()) <= 1.0


def test_lab_and_hsv_convert_like_pillow():
    for mode in ("LAB", "HSV", "YCbCr"):
        image = Image.frombytes(mode, (8, 8), rgb8(8, 8).tobytes())
        expected = np.asarray(image.convert("RGB"))
        assert np.array_equal(to8(load_image(image).rgb), expected), mode


# ---------------------------------------------------------------- 16-bit and float


def gray16(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 65536, (6, 7), dtype=np.uint16)


def test_gray16_png_round_trip(tmp_path):
    values = gray16()
    picture = load_image(encoded(Image.fromarray(values), "PNG"))

    assert picture.bit_depth == 16 and picture.grayscale and picture.alpha is None
    assert np.array_equal(to16(picture.rgb[:, :, 1]), values)
    saved = reopen(save_png(picture, tmp_path / "out.png").read_bytes())
    assert saved.mode == "I;16"
    assert np.abs(np.asarray(saved).astype(int) - values).max() <= 1


def test_rgb16_png_round_trip(tmp_path):
    values = np.dstack([gray16(0), gray16(1), gray16(2)])
    picture = load_image(cv2_16(values))

    assert picture.bit_depth == 16 and not picture.grayscale
    assert np.array_equal(to16(picture.rgb), values)  # RGB order, not OpenCV's BGR
    out = save_png(picture, tmp_path / "out.png").read_bytes()
    back = cv2_read(out)
    assert back.dtype == np.uint16 and back.shape == (6, 7, 3)
    assert np.abs(back.astype(int) - values).max() <= 1


def test_rgba16_png_round_trip():
    values = np.dstack([gray16(0), gray16(1), gray16(2), gray16(3)])
    picture = load_image(cv2_16(values))

    assert picture.bit_depth == 16 and np.array_equal(to16(picture.alpha), values[:, :, 3])
    back = cv2_read(encode_png(picture))
    assert back.dtype == np.uint16 and np.abs(back.astype(int) - values).max() <= 1


def test_gray_alpha16_png_is_kept_16_bit_and_written_as_rgba16():
    gray, alpha = gray16(0), gray16(1)
    picture = load_image(png_gray_alpha16(gray, alpha))

    assert picture.grayscale and picture.bit_depth == 16
    assert np.array_equal(to16(picture.rgb[:, :, 0]), gray)
    assert np.array_equal(to16(picture.alpha), alpha)
    back = cv2_read(encode_png(picture))  # OpenCV cannot write 2-channel PNGs
    assert back.dtype == np.uint16 and back.shape == (6, 7, 4)
    assert np.abs(back[:, :, 0].astype(int) - gray).max() <= 1
    assert np.abs(back[:, :, 3].astype(int) - alpha).max() <= 1


def test_rgb16_tiff_round_trip():
    values = np.dstack([gray16(0), gray16(1), gray16(2)])
    picture = load_image(cv2_16(values, ".tiff"))
    assert picture.bit_depth == 16 and np.array_equal(to16(picture.rgb), values)


def test_gray16_tiff_round_trip():
    values = gray16()
    picture = load_image(encoded(Image.fromarray(values), "TIFF"))
    assert picture.bit_depth == 16 and picture.grayscale
    assert np.array_equal(to16(picture.rgb[:, :, 2]), values)


@pytest.mark.parametrize("orientation", [1, 3, 6, 7])
@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_deep_tiffs_decoded_by_opencv_are_oriented_exactly_once(orientation, dtype):
    # OpenCV applies a TIFF's orientation itself (not a PNG's); it must not happen twice.
    values = np.dstack([gray16(0), gray16(1), gray16(2)])
    samples = values if dtype == np.uint16 else (values / 65535).astype(np.float32)
    picture = load_image(tiff_rgb(samples, orientation))

    assert picture.bit_depth == 16
    assert np.array_equal(to16(picture.rgb), to16(exif_transposed(values / 65535, orientation)))


def exif_transposed(values: np.ndarray, orientation: int) -> np.ndarray:
    """What PIL.ImageOps.exif_transpose does, applied channel by channel through Pillow."""
    planes = []
    for channel in range(values.shape[2]):
        plane = Image.fromarray(values[:, :, channel].astype(np.float32), mode="F")
        plane.getexif()[0x0112] = orientation
        planes.append(np.asarray(ImageOps.exif_transpose(plane)))
    return np.dstack(planes)


def test_float_tiffs_load_as_16_bit():
    rng = np.random.default_rng(5)
    rgb = rng.random((6, 7, 3)).astype(np.float32)
    ok, data = cv2.imencode(".tiff", np.ascontiguousarray(rgb[:, :, ::-1]))
    assert ok
    picture = load_image(data.tobytes())  # Pillow cannot open float RGB TIFFs; OpenCV can
    assert picture.bit_depth == 16 and np.allclose(picture.rgb, rgb, atol=1e-6)

    gray = rng.random((6, 7)).astype(np.float32) * 1.5  # out-of-range values are clipped
    picture = load_image(encoded(Image.fromarray(gray, mode="F"), "TIFF"))
    assert picture.grayscale and np.allclose(picture.rgb[:, :, 0], np.clip(gray, 0, 1))


# ---------------------------------------------------------------- EXIF and ICC


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize(("fmt", "params"), [("PNG", {}), ("WEBP", {"lossless": True})])
def test_exif_orientation_matches_pillow_exif_transpose(orientation, fmt, params):
    source = Image.fromarray(rgb8(5, 8))
    data = encoded(source, fmt, exif=exif_with(orientation=orientation), **params)
    expected = np.asarray(ImageOps.exif_transpose(reopen(data)))

    picture = load_image(data)

    assert np.array_equal(to8(picture.rgb), expected)
    assert read_exif(picture.exif)[0x0112] == 1


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_tiff_orientation_is_applied_once(orientation):
    # Pillow rotates TIFFs itself while loading; the result must match the other formats.
    pixels = rgb8(5, 8)
    data = encoded(Image.fromarray(pixels), "TIFF", exif=exif_with(orientation=orientation))
    png = encoded(Image.fromarray(pixels), "PNG", exif=exif_with(orientation=orientation))
    assert np.array_equal(load_image(data).rgb, load_image(png).rgb)


def test_orientation_6_rotates_pixels_and_is_reset_on_output(tmp_path):
    pixels = np.zeros((4, 10, 3), np.uint8)
    pixels[:, :5] = 255  # left half white
    exif = exif_with(orientation=6, make="Cam", artist="Ada")
    path = write(tmp_path / "photo.jpg", encoded(Image.fromarray(pixels), "JPEG", exif=exif))

    picture = load_image(path)

    assert (picture.width, picture.height) == (4, 10)
    # Rotated 90 degrees clockwise: the left half is now the top half.
    assert picture.rgb[:4].mean() > 0.9 and picture.rgb[-4:].mean() < 0.1
    saved_exif = reopen(save_png(picture, tmp_path / "out.png").read_bytes()).getexif()
    assert saved_exif[0x0112] == 1
    assert saved_exif[0x010F] == "Cam" and saved_exif[0x013B] == "Ada"


def test_exif_is_patched_in_place_not_rewritten():
    exif = exif_with(orientation=8, make="Cam")
    exif.get_ifd(0x8769)[0x927C] = b"maker-note-with-offsets"  # MakerNote
    raw = exif.tobytes()
    picture = load_image(encoded(Image.fromarray(rgb8()), "JPEG", exif=raw))

    assert len(picture.exif) == len(raw)
    assert sum(a != b for a, b in zip(picture.exif, raw, strict=True)) == 1  # one low byte
    kept = read_exif(picture.exif)
    assert kept[0x0112] == 1 and kept.get_ifd(0x8769)[0x927C] == b"maker-note-with-offsets"


@pytest.mark.parametrize(("fmt", "params"), [("PNG", {}), ("JPEG", {}), ("WEBP", {})])
def test_exif_preserved(tmp_path, fmt, params):
    data = encoded(Image.fromarray(rgb8()), fmt, exif=exif_with(artist="Ada", make="Cam"))
    picture = load_image(data)

    saved = reopen(save_png(picture, tmp_path / "out.png").read_bytes()).getexif()
    assert saved[0x013B] == "Ada" and saved[0x010F] == "Cam"
    assert 0x0112 not in saved  # no orientation in, none invented


def test_tiff_keeps_descriptive_tags_but_not_its_layout_tags():
    data = encoded(Image.fromarray(rgb8()), "TIFF", exif=exif_with(make="Cam", orientation=3))
    picture = load_image(data)

    assert np.array_equal(to8(picture.rgb), rgb8()[::-1, ::-1])
    kept = read_exif(picture.exif)
    assert kept[0x010F] == "Cam" and kept.get(0x0112, 1) == 1
    assert 0x0111 not in kept  # StripOffsets belongs to the TIFF, not to the PNG


def test_16_bit_png_applies_exif_orientation():
    values = np.dstack([gray16(0), gray16(1), gray16(2)])
    raw = exif_with(orientation=6).tobytes()
    data = with_chunk_after_ihdr(cv2_16(values), b"eXIf", raw[6:])

    picture = load_image(data)

    assert np.array_equal(to16(picture.rgb), np.rot90(values, -1))


@pytest.mark.parametrize(("fmt", "depth"), [("PNG", 8), ("JPEG", 8), ("PNG", 16)])
def test_icc_profile_preserved(tmp_path, fmt, depth):
    if depth == 8:
        data = encoded(Image.fromarray(rgb8()), fmt, icc_profile=SRGB_ICC)
    else:
        data = with_chunk_after_ihdr(
            cv2_16(np.dstack([gray16(0)] * 3)),
            b"iCCP",
            b"ICC Profile\x00\x00" + zlib.compress(SRGB_ICC),
        )
    picture = load_image(data)

    assert picture.icc_profile == SRGB_ICC
    saved = reopen(save_png(picture, tmp_path / "out.png").read_bytes())
    assert saved.info.get("icc_profile") == SRGB_ICC
    assert to_pil(picture).info.get("icc_profile") == SRGB_ICC


def test_rgb_profile_is_not_written_on_a_gray_png():
    data = encoded(Image.fromarray(rgb8()[:, :, 0]), "PNG", icc_profile=SRGB_ICC)
    picture = load_image(data)

    out = encode_png(picture)

    assert b"iCCP" not in out
    assert reopen(out).mode == "L"


def test_metadata_chunks_come_before_the_pixels():
    exif = exif_with(artist="Ada")
    picture = load_image(encoded(Image.fromarray(rgb8()), "PNG", icc_profile=SRGB_ICC, exif=exif))
    out = encode_png(picture)
    assert out.index(b"IHDR") < out.index(b"iCCP") < out.index(b"eXIf") < out.index(b"IDAT")


# ---------------------------------------------------------------- refused inputs


def refused(source: object, **kwargs: object) -> str:
    with pytest.raises(InputImageError) as caught:
        load_image(source, **kwargs)
    message = str(caught.value)
    assert message.endswith(".") and "\n" not in message
    return message


def test_empty_file_refused(tmp_path):
    assert refused(write(tmp_path / "empty.png", b"")) == "The file is empty (0 bytes)."
    assert refused(b"") == "The file is empty (0 bytes)."


@pytest.mark.parametrize(("fmt", "params"), [("PNG", {}), ("JPEG", {"quality": 90})])
def test_truncated_file_refused(fmt, params):
    data = encoded(Image.fromarray(rgb8(64, 64)), fmt, **params)
    assert "truncated or corrupt" in refused(data[: len(data) // 2])


def test_truncated_16_bit_png_refused():
    data = cv2_16(np.dstack([gray16(0)] * 3))
    assert "truncated or corrupt" in refused(data[: len(data) - 30])


def test_text_file_named_png_refused(tmp_path):
    path = write(tmp_path / "notes.png", b"hello, I am not an image\n" * 10)
    assert "not an image PIL/OpenCV can read" in refused(path)


def test_other_formats_pillow_knows_are_refused():
    data = encoded(Image.fromarray(rgb8()), "PPM")
    assert "not an image PIL/OpenCV can read" in refused(data)


def test_huge_header_refused_before_decoding():
    tiny = encoded(Image.fromarray(rgb8(2, 2)), "PNG")
    message = refused(with_ihdr_size(tiny, 20000, 20000))
    assert "20000x20000" in message and f"{DEFAULT_MAX_PIXELS:,}" in message
    assert "RESTORATION_MAX_PIXELS" in message


def test_size_over_the_limit_but_under_pillows_guard_refused():
    tiny = encoded(Image.fromarray(rgb8(2, 2)), "PNG")
    message = refused(with_ihdr_size(tiny, 8000, 6000), max_pixels=40_000_000)
    assert "8000x6000" in message and "over the limit of 40,000,000" in message


def test_a_limit_above_pillows_guard_names_pillows_guard():
    tiny = encoded(Image.fromarray(rgb8(2, 2)), "PNG")
    message = refused(with_ihdr_size(tiny, 20000, 20000), max_pixels=10**9)
    assert "20000x20000" in message and "MAX_IMAGE_PIXELS" in message


def test_explicit_max_pixels_applies_to_every_source():
    pixels = rgb8(20, 20)
    for source in (pixels, Image.fromarray(pixels), encoded(Image.fromarray(pixels), "PNG")):
        assert "20x20 (400 pixels), over the limit of 399" in refused(source, max_pixels=399)
        assert load_image(source, max_pixels=400).width == 20


def test_zero_size_refused():
    tiny = encoded(Image.fromarray(rgb8(2, 2)), "PNG")
    assert "zero width or height (0x5)" in refused(with_ihdr_size(tiny, 0, 5))
    assert "zero width or height (5x0)" in refused(np.zeros((0, 5, 3), np.uint8))


def test_missing_path_and_folder_refused(tmp_path):
    assert "does not exist" in refused(tmp_path / "nope.png")
    assert "does not exist" in refused(str(tmp_path / "nope.png"))
    assert "is a folder" in refused(tmp_path)


def test_wrong_source_type_refused():
    assert "Cannot read an image from a int" in refused(42)
    assert "Cannot read an image from a list" in refused([[0, 1]])


def frames(count: int) -> list[Image.Image]:
    return [Image.new("RGB", (8, 8), (80 * index, 255 - 80 * index, 40)) for index in range(count)]


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animated_images_refused(fmt):
    first, *rest = frames(3)
    data = encoded(first, fmt, save_all=True, append_images=rest)
    message = refused(data)
    assert f"animated {fmt} with 3 frames" in message and "only still images" in message


def test_multi_page_tiff_refused():
    first, *rest = frames(2)
    assert "multi-page TIFF with 2 pages" in refused(
        encoded(first, "TIFF", save_all=True, append_images=rest)
    )


def test_single_frame_gif_and_mpo_accepted():
    first, second = frames(2)
    assert load_image(encoded(first, "GIF")).width == 8
    mpo = encoded(first, "MPO", save_all=True, append_images=[second])
    picture = load_image(mpo)  # a camera JPEG with a preview: its first frame is the photo
    assert np.abs(to8(picture.rgb).astype(int) - np.asarray(first)).max() <= 8


def test_unsupported_values_and_arrays_refused():
    assert "outside 0..65535" in refused(Image.fromarray(np.full((3, 3), -5, np.int32)))
    assert "dtype int64" in refused(np.zeros((3, 3, 3), np.int64))
    assert "shape (3, 3, 5)" in refused(np.zeros((3, 3, 5), np.uint8))
    assert "shape (3,)" in refused(np.zeros(3, np.uint8))
    assert "NaN" in refused(np.full((3, 3, 3), np.nan, np.float32))


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about damaged TIFF tags
@pytest.mark.parametrize(
    ("fmt", "params"),
    [
        ("PNG", {}),
        ("JPEG", {}),
        ("GIF", {}),
        ("BMP", {}),
        ("TIFF", {}),
        ("WEBP", {}),
        ("TIFF", {"compression": "tiff_lzw"}),
    ],
)
def test_damaged_files_never_raise_anything_but_input_image_error(fmt, params):
    data = encoded(Image.fromarray(rgb8(24, 24)), fmt, **params)
    rng = np.random.default_rng(7)
    damaged = [data[:cut] for cut in range(1, len(data), max(1, len(data) // 16))]
    for _ in range(24):
        flipped = bytearray(data)
        for position in rng.integers(0, len(data), 3):
            flipped[position] ^= 0xFF
        damaged.append(bytes(flipped))
    for sample in damaged:
        try:
            picture = load_image(sample)
        except InputImageError:
            continue
        assert picture.rgb.dtype == np.float32


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("photo.jpg", "photo"),
        ("../../etc/passwd.png", "passwd"),
        ("..\\..\\Windows\\win.ini", "win.ini"),
        ("C:\\Users\\me\\scan.TIFF", "scan"),
        ("café crème.jpg", "cafe_creme"),
        ("ｐｈｏｔｏ.png", "photo"),
        ("фото.png", "image"),
        ("写真", "image"),
        ("..", "image"),
        ("", "image"),
        (".hidden.png", "hidden"),
        ("-rf.png", "rf"),
        ("a..b.png", "a.b"),
        ("my photo (1).JPEG", "my_photo_1"),
        ("archive.tar", "archive.tar"),
        ("x" * 300 + ".png", "x" * 100),
        ("evil\u202egnp.exe", "evilgnp.exe"),
    ],
)
def test_names_are_sanitized(filename, expected):
    assert load_image(rgb8(2, 2), name=filename).name == expected


def test_name_comes_from_the_path_or_the_pil_filename(tmp_path):
    path = write(tmp_path / "My Photo (1).JPG", encoded(Image.fromarray(rgb8()), "JPEG"))
    assert load_image(path).name == "My_Photo_1"
    assert load_image(path, name="other.png").name == "other"
    with Image.open(path) as image:
        assert load_image(image).name == "My_Photo_1"
    assert load_image(path.read_bytes()).name == "image"


def test_output_name():
    picture = load_image(rgb8(2, 2), name="/tmp/photo.jpg")
    assert output_name(picture, "realesrgan-x4plus_x4") == "photo_realesrgan-x4plus_x4.png"
    assert output_name(picture, "") == "photo.png"
    assert output_name(picture, "x2.png") == "photo_x2.png"
    nasty = output_name(picture, "../../../etc/cron.d/x")
    assert "/" not in nasty and ".." not in nasty


def test_picture_cleans_names_it_is_given():
    picture = load_image(rgb8(2, 2))
    built = Picture(picture.rgb, None, False, 8, None, None, name="../a/b")
    assert re.fullmatch(r"[A-Za-z0-9._-]+", built.name) and ".." not in built.name


# ---------------------------------------------------------------- numpy input (Gradio)


def test_gradio_uint8_rgb_and_rgba_arrays():
    rgb = rgb8()
    picture = load_image(rgb)
    assert np.array_equal(to8(picture.rgb), rgb) and picture.alpha is None
    assert not picture.grayscale and picture.bit_depth == 8 and picture.name == "image"

    rgba = np.dstack([rgb, rgb8(seed=9)[:, :, 0]])
    picture = load_image(rgba)
    assert np.array_equal(to8(picture.rgb), rgb)
    assert np.array_equal(to8(picture.alpha), rgba[:, :, 3])


def test_other_arrays():
    gray = rgb8()[:, :, 0]
    assert load_image(gray).grayscale and load_image(gray[:, :, None]).grayscale
    assert load_image(np.dstack([gray, gray])).alpha is not None
    deep = load_image(gray16())
    assert deep.bit_depth == 16 and np.array_equal(to16(deep.rgb[:, :, 0]), gray16())
    floats = load_image(np.linspace(-1, 2, 42, dtype=np.float64).reshape(6, 7))
    assert floats.rgb.dtype == np.float32 and floats.rgb.min() == 0.0 and floats.rgb.max() == 1.0
    assert load_image(gray > 100).grayscale


# ---------------------------------------------------------------- Picture and output


def test_with_pixels_keeps_metadata_and_gray_unless_told():
    data = encoded(Image.fromarray(rgb8()[:, :, 0]), "PNG", exif=exif_with(artist="Ada"))
    gray = load_image(data, name="old.png")

    tinted = resize_plane(gray.rgb, 14, 12) * np.float32([1.0, 0.9, 0.8])  # as models do
    bigger = gray.with_pixels(tinted)
    assert bigger.grayscale and bigger.exif == gray.exif and bigger.name == "old"
    assert (bigger.width, bigger.height) == (14, 12)
    assert reopen(encode_png(bigger)).mode == "L"

    colorized = gray.with_pixels(tinted, grayscale=False)
    assert not colorized.grayscale and reopen(encode_png(colorized)).mode == "RGB"


def test_with_pixels_clips_and_checks_alpha():
    picture = load_image(np.dstack([rgb8(), rgb8()[:, :, 0]]))
    clipped = picture.with_pixels(picture.rgb * 3 - 1, picture.alpha)
    assert clipped.rgb.min() == 0.0 and clipped.rgb.max() == 1.0
    assert picture.with_pixels(picture.rgb).alpha is None
    with pytest.raises(ValueError, match="alpha"):
        picture.with_pixels(picture.rgb, np.ones((2, 2), np.float32))


def test_repr_is_short():
    assert len(repr(load_image(rgb8(600, 600)))) < 200


@pytest.mark.parametrize(
    ("source", "mode"),
    [
        (rgb8(), "RGB"),
        (np.dstack([rgb8(), rgb8()[:, :, 0]]), "RGBA"),
        (rgb8()[:, :, 0], "L"),
        (rgb8()[:, :, :2], "LA"),
        (gray16(), "L"),
    ],
)
def test_to_pil_modes(source, mode):
    image = to_pil(load_image(source))
    assert image.mode == mode and image.size == (7, 6)


def test_save_png_returns_the_path_and_leaves_no_temporary_files(tmp_path):
    picture = load_image(rgb8())
    target = tmp_path / "result.png"
    assert save_png(picture, str(target)) == target
    assert target.read_bytes() == encode_png(picture)
    assert [p.name for p in tmp_path.iterdir()] == ["result.png"]


def test_resize_plane():
    alpha = np.zeros((4, 4), np.float32)
    alpha[:, 2:] = 1.0  # a hard edge makes bicubic overshoot
    up = resize_plane(alpha, 16, 12)
    assert up.shape == (12, 16) and up.dtype == np.float32
    assert up.min() == 0.0 and up.max() == 1.0

    down = resize_plane(np.array([[0.0, 1.0], [1.0, 0.0]], np.float32), 1, 1)
    assert down.shape == (1, 1) and down[0, 0] == pytest.approx(0.5)  # area average

    image = resize_plane(np.full((4, 4, 3), 0.25, np.float32), 8, 2)
    assert image.shape == (2, 8, 3) and np.allclose(image, 0.25)
    assert resize_plane(np.zeros((4, 4, 1), np.float32), 8, 8).shape == (8, 8, 1)
    with pytest.raises(ValueError):
        resize_plane(alpha, 0, 4)


# ---------------------------------------------------------------- configuration


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_default_limit_comes_from_the_environment():
    if "RESTORATION_MAX_PIXELS" not in os.environ:
        assert DEFAULT_MAX_PIXELS == 40_000_000
    code = "from pipelines import images; print(images.DEFAULT_MAX_PIXELS)"
    result = run_python(code, RESTORATION_MAX_PIXELS="1_000")
    assert result.returncode == 0 and result.stdout.strip() == "1000"
    broken = run_python(code, RESTORATION_MAX_PIXELS="lots")
    assert broken.returncode != 0 and "RESTORATION_MAX_PIXELS" in broken.stderr
