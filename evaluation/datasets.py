"""Reference datasets for evaluation: one table of dataset rows, local folders, Hub copies.

`load_dataset(name, root=None)` gives a `Dataset`; iterating it yields `Sample`s (name, the
reference `gt` Picture, an optional `lq` Picture when the folder holds pairs, and paths).
Images are decoded lazily, one sample at a time, with `pipelines.images.load_image`.

Rows:
- ``builtin``: the ``examples/*_hq.png`` references shipped with the repository.
- ``folder``: any local folder (`root`), in one of the layouts of `LAYOUTS`.
- standard SR sets (``set5``, ``set14``, ``bsd100``, ``urban100``, ``manga109``,
  ``div2k-val``): HR images only (degradations make the inputs). Looked for in `root`, then
  in ``$RESTORATION_DATASETS_DIR/<Folder>``, then in the cache
  (``<weights cache>/datasets/<Folder>``); a set whose Hub copy is pinned (revision and
  sha256 of the archive) is downloaded there when the Hub can be reached.

Bad files: a standard set or ``builtin`` fails on an image it cannot decode or a wrong
image count, because its scores would no longer compare with anyone's. A ``folder``
dataset records them instead: `Dataset.iter_with_skips()` yields a `Skipped` (name, path,
reason) in their place, for the leaderboard to report. Plain iteration (`for sample in
dataset`) never drops anything silently: it raises on the first bad file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import tarfile
import threading
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pipelines.errors import InputImageError, RestorationError
from pipelines.images import Picture, load_image
from pipelines.tables import NamedTable
from pipelines.weights import REPO_ROOT, cache_dir, failure_reason, offline, sha256_of

DATASETS_DIR_ENV = "RESTORATION_DATASETS_DIR"
SOURCE_MARKER = ".source.json"  # written next to a downloaded set: where it came from
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})
LAYOUTS = """\
Recognised folder layouts (file names are matched case-insensitively):
  DIR/*.png                      high-quality images only; degradations make the inputs
  DIR/gt/*.png + DIR/lq/*.png    pairs matched by name (also HR + LR folders); a trailing
                                 scale or role tag is ignored, so lq/0801x4.png,
                                 lq/baby_LR.png or lq/img_001_SRF_4_LR.png pair with
                                 gt/0801.png, gt/baby.png, gt/img_001_SRF_4_HR.png
  DIR/*_HR.png + DIR/*_LR.png    Set5-style pairs side by side (also _GT / _LQ)
A folder that holds no images but exactly one subfolder is looked into (Set5/Set5_HR/).
Images: PNG, JPEG, BMP, TIFF, WebP; other files are ignored."""

Layout = Literal["hq", "pair-folders", "pair-suffixes"]
Kind = Literal["builtin", "folder", "standard"]


class DatasetError(RestorationError):
    """A dataset that cannot be used as it is: missing, incomplete, or with a bad file."""


class UnknownDatasetError(DatasetError):
    """A dataset name that is not in the table."""


class DatasetUnavailableError(DatasetError):
    """A standard set that is neither on disk nor downloadable now."""


@dataclass(frozen=True)
class HubArchive:
    """An archive of a set's HR images in a Hugging Face dataset repository. It is fetched
    only when both `revision` (a commit) and `sha256` (of the archive) are pinned."""

    repo_id: str
    path_in_repo: str
    revision: str | None
    sha256: str | None
    size_mb: float
    page: str = ""  # where the pinned values were read, for the next person to check

    @property
    def pinned(self) -> bool:
        return bool(self.revision and self.sha256)

    @property
    def where(self) -> str:
        at = f" at revision {self.revision}" if self.revision else ""
        return f"huggingface.co/datasets/{self.repo_id} file {self.path_in_repo}{at}"


@dataclass(frozen=True)
class DatasetCard:
    """One row of the dataset table."""

    id: str
    title: str
    kind: Kind
    description: str
    folder: str = ""  # standard sets: the folder name under a datasets directory
    images: int | None = None  # standard sets: how many HR images a complete copy holds
    license: str = ""
    source: HubArchive | None = None

    @property
    def strict(self) -> bool:
        return self.kind != "folder"


@dataclass(frozen=True)
class Sample:
    """One evaluation image: its reference and, for paired folders, the given input."""

    name: str
    gt: Picture = field(repr=False)
    lq: Picture | None = field(repr=False)
    path: Path
    lq_path: Path | None = None


@dataclass(frozen=True)
class Skipped:
    """A file of a folder dataset that could not be used, and why."""

    name: str
    path: Path
    reason: str


@dataclass(frozen=True)
class _Entry:
    name: str
    gt: Path
    lq: Path | None = None


@dataclass(frozen=True)
class Dataset:
    """A resolved dataset: where it is, how it is laid out and its images, in name order."""

    card: DatasetCard
    root: Path
    layout: Layout
    entries: tuple[_Entry, ...] = field(repr=False)
    problems: tuple[Skipped, ...] = field(default=(), repr=False)
    origin: dict[str, Any] | None = field(default=None, repr=False)  # a download's record

    @property
    def name(self) -> str:
        return self.card.id

    @property
    def names(self) -> list[str]:
        return [entry.name for entry in self.entries]

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[Sample]:
        for item in self.iter_with_skips():
            if isinstance(item, Skipped):
                raise DatasetError(
                    f"{item.path}: {item.reason} (use iter_with_skips() to skip bad files)"
                )
            yield item

    def iter_with_skips(self) -> Iterator[Sample | Skipped]:
        """Samples in name order; for a folder dataset a `Skipped` replaces each file that
        cannot be used (a standard set raises instead)."""
        yield from self.problems
        for entry in self.entries:
            yield self._read(entry)

    def _read(self, entry: _Entry) -> Sample | Skipped:
        path, lq = entry.gt, None
        try:
            gt = load_image(path, name=entry.name)
            if entry.lq is not None:
                path = entry.lq
                lq = load_image(path, name=entry.name)
        except InputImageError as error:
            if self.card.strict:
                raise DatasetError(f"{self.card.title}: {path}: {error}") from error
            return Skipped(entry.name, path, str(error))
        return Sample(entry.name, gt, lq, entry.gt, entry.lq)

    def describe(self) -> dict[str, Any]:
        """What a leaderboard row stores about the data it ran on."""
        return {
            "name": self.card.id,
            "title": self.card.title,
            "root": str(self.root),
            "layout": self.layout,
            "images": len(self.entries),
            "skipped": len(self.problems),
            "downloaded_from": self.origin,
        }


# ---------------------------------------------------------------- folder layouts

_TAG = re.compile(r"(?:[_-](?:lr|hr|lq|gt|x\d+|srf[_-]?\d+|bicubic)|(?<=\d)x\d+)$", re.IGNORECASE)
_ROLE = re.compile(r"[_-](lr|hr|lq|gt)$", re.IGNORECASE)
_SCALE = re.compile(r"x\d+$", re.IGNORECASE)
_PAIR_FOLDERS = (("gt", "lq"), ("hr", "lr"))


def base_name(stem: str) -> str:
    """A file stem without trailing role or scale tags: img_001_SRF_4_HR -> img_001,
    0801x4 -> 0801, baby_LR -> baby."""
    while (shorter := _TAG.sub("", stem)) != stem and shorter:
        stem = shorter
    return stem


def _input_name(stem: str, references: set[str]) -> str:
    # "babyx4" pairs with "baby"; base_name only strips xN after a digit ("0801x4") so
    # that a reference called "box2" keeps its name.
    name = base_name(stem)
    shorter = _SCALE.sub("", name)
    return shorter if name.lower() not in references and shorter.lower() in references else name


def _is_image(path: Path) -> bool:
    # "._name.png" are macOS resource forks that archives often carry along
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and _is_image(p))


def _subfolders(folder: Path) -> dict[str, Path]:
    return {p.name.lower(): p for p in folder.iterdir() if p.is_dir() and p.name[0] != "."}


def scan_folder(
    folder: Path, *, references_only: bool = False
) -> tuple[Path, Layout, list[_Entry], list[Skipped]]:
    """Find the layout of `folder` and its entries (see LAYOUTS). With `references_only`
    the GT/HR side of a paired layout is taken alone."""
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder.\n{LAYOUTS}")
    subfolders = _subfolders(folder)
    images = _images(folder)
    for gt_name, lq_name in _PAIR_FOLDERS:
        if gt_name in subfolders and lq_name in subfolders:
            gts, lqs = _images(subfolders[gt_name]), _images(subfolders[lq_name])
            return folder, "pair-folders", *_match(gts, lqs, [], references_only)
    if not images and len(subfolders) == 1:
        return scan_folder(next(iter(subfolders.values())), references_only=references_only)
    if not images:
        raise DatasetError(f"{folder} holds no images in a recognised layout.\n{LAYOUTS}")
    roles = {m.group(1).lower() for p in images if (m := _ROLE.search(p.stem))}
    if roles & {"hr", "gt"} and roles & {"lr", "lq"}:
        return folder, "pair-suffixes", *_pair_suffixes(images, references_only)
    entries, problems = _unique([_Entry(p.stem, p) for p in images])
    return folder, "hq", entries, problems


def _pair_suffixes(images: list[Path], references_only: bool) -> tuple[list[_Entry], list[Skipped]]:
    roles = {p: m.group(1).lower() if (m := _ROLE.search(p.stem)) else "" for p in images}
    gts = [p for p, role in roles.items() if role in ("hr", "gt")]
    lqs = [p for p, role in roles.items() if role in ("lr", "lq")]
    untagged = [Skipped(p.stem, p, "no _HR/_GT or _LR/_LQ suffix") for p in images if not roles[p]]
    return _match(gts, lqs, untagged, references_only)


def _match(
    gts: list[Path], lqs: list[Path], problems: list[Skipped], references_only: bool
) -> tuple[list[_Entry], list[Skipped]]:
    """Pair references with inputs by `base_name`; whatever cannot be paired is a problem."""
    references, duplicates = _unique([_Entry(base_name(p.stem), p) for p in gts])
    problems = problems + duplicates
    if references_only:
        return references, problems
    keys = {entry.name.lower() for entry in references}
    inputs, duplicates = _unique([_Entry(_input_name(p.stem, keys), p) for p in lqs])
    by_key = {entry.name.lower(): entry.gt for entry in inputs}
    paired = [dataclasses.replace(e, lq=by_key.get(e.name.lower())) for e in references]
    problems += duplicates
    problems += [
        Skipped(e.name, e.gt, "no matching input (LQ/LR) image") for e in paired if not e.lq
    ]
    problems += [
        Skipped(e.name, e.gt, "no matching reference (GT/HR) image")
        for e in inputs
        if e.name.lower() not in keys
    ]
    return [e for e in paired if e.lq], problems


def _unique(entries: list[_Entry]) -> tuple[list[_Entry], list[Skipped]]:
    seen: dict[str, _Entry] = {}
    problems = []
    for entry in sorted(entries, key=lambda e: (e.name.lower(), str(e.gt))):
        if entry.name.lower() in seen:
            other = seen[entry.name.lower()].gt.name
            problems.append(Skipped(entry.name, entry.gt, f"same name as {other}"))
        else:
            seen[entry.name.lower()] = entry
    return list(seen.values()), problems


# ---------------------------------------------------------------- the table


class DatasetRegistry(NamedTable[DatasetCard]):
    """An immutable table of dataset rows keyed by id (looked up case-insensitively)."""

    kind = "dataset"
    key_label = "id"
    error = UnknownDatasetError
    fold_case = True

    def __init__(self, cards: Iterable[DatasetCard]) -> None:
        super().__init__(cards, key=lambda card: card.id)


_HF = "https://huggingface.co/datasets/"
DATASETS = DatasetRegistry(
    (
        DatasetCard(
            "builtin",
            "Built-in examples",
            "builtin",
            "The examples/*_hq.png references shipped with the repository; needs no download.",
            license="public domain / CC0 (see examples/README.md)",
        ),
        DatasetCard(
            "folder",
            "Local folder",
            "folder",
            "Any local folder of HQ images or LQ/GT pairs (pass it as root / --dataset-dir).",
        ),
        DatasetCard(
            "set5",
            "Set5",
            "standard",
            "5 classic test images (Bevilacqua et al. 2012).",
            folder="Set5",
            images=5,
            license="research use",
            source=HubArchive(
                "eugenesiow/Set5",
                "data/Set5_HR.tar.gz",
                revision="bcb97ac28c8a5f9113825f8d163564e16513f3ed",
                sha256="260fc447296333f6c2716bcd65513968c33b666f21a905537ee3330c51a1945b",
                size_mb=0.85,
                page=_HF + "eugenesiow/Set5/blob/bcb97ac28c8a5f9113825f8d163564e16513f3ed/"
                "data/Set5_HR.tar.gz",
            ),
        ),
        DatasetCard(
            "set14",
            "Set14",
            "standard",
            "14 test images (Zeyde et al. 2010).",
            folder="Set14",
            images=14,
            license="research use",
            source=HubArchive(
                "eugenesiow/Set14",
                "data/Set14_HR.tar.gz",
                revision="5afcf80d267dba61cdfa9a32b1a6fe4cca57b6d7",
                sha256=None,  # not found in any page read so far
                size_mb=4.98,
            ),
        ),
        DatasetCard(
            "bsd100",
            "BSD100",
            "standard",
            "100 natural images, the test split of BSD300 (Martin et al. 2001).",
            folder="BSD100",
            images=100,
            license="research use",
            source=HubArchive(
                "eugenesiow/BSD100",
                "data/BSD100_HR.tar.gz",
                revision="8fbc3a31603eba947ea6eba928d31fee0f0c31bb",
                sha256="333495ccded04a0db52b33361140821ea7e0d8af8dfb54b58df79a00010858d6",
                size_mb=27.2,
                page=_HF + "eugenesiow/BSD100/blob/refs%2Fpr%2F4/data/BSD100_HR.tar.gz",
            ),
        ),
        DatasetCard(
            "urban100",
            "Urban100",
            "standard",
            "100 urban scenes with regular structures (Huang et al. 2015).",
            folder="Urban100",
            images=100,
            license="research use",
            source=HubArchive(
                "eugenesiow/Urban100",
                "data/Urban100_HR.tar.gz",
                revision="57309de03db02ac12ee09ad6127e7b815c211328",
                sha256=None,  # not found in any page read so far
                size_mb=135.0,
            ),
        ),
        DatasetCard(
            "manga109",
            "Manga109",
            "standard",
            "109 manga volume covers (Matsui et al. 2017); academic licence, apply at "
            "manga109.org - no redistributable copy is used here.",
            folder="Manga109",
            images=109,
            license="Manga109 academic licence",
        ),
        DatasetCard(
            "div2k-val",
            "DIV2K validation",
            "standard",
            "The 100 HR validation images of DIV2K (0801-0900, Agustsson & Timofte 2017).",
            folder="DIV2K_valid_HR",
            images=100,
            license="research use",
            source=HubArchive(
                "goodfellowliu/DIV2K",
                "DIV2K_valid_HR.zip",
                revision="d8a7b7e82add5be32adb51d9442b7932b1739e89",
                sha256=None,  # not found in any page read so far
                size_mb=449.0,
            ),
        ),
    )
)


def download_command(card: DatasetCard) -> str:
    return f"python -m evaluation download {card.id}"


# ---------------------------------------------------------------- resolving


def load_dataset(name: str, root: str | os.PathLike | None = None) -> Dataset:
    """The dataset `name`; `root` is the folder for ``folder`` and, for a standard set,
    its folder or a folder holding it (e.g. ``~/data`` with ``~/data/Set5/``)."""
    card = DATASETS.get(name)
    if card.kind == "builtin":
        return _builtin(card)
    if card.kind == "folder":
        if root is None:
            raise DatasetError(
                f"The folder dataset needs a folder (root / --dataset-dir).\n{LAYOUTS}"
            )
        return _from_folder(card, Path(root).expanduser())
    return _from_folder(card, _standard_folder(card, root))


def _builtin(card: DatasetCard) -> Dataset:
    folder = REPO_ROOT / "examples"
    images = sorted(folder.glob("*_hq.png"))
    if not images:
        raise DatasetError(
            f"No examples/*_hq.png in {folder}: run `python examples/make_examples.py`."
        )
    entries = tuple(_Entry(p.stem.removesuffix("_hq"), p) for p in images)
    return Dataset(card, folder, "hq", entries)


def _from_folder(card: DatasetCard, folder: Path) -> Dataset:
    # A standard set shipped with its LR files: the references are what counts.
    standard = card.kind == "standard"
    root, layout, entries, problems = scan_folder(folder, references_only=standard)
    if standard:
        _check_complete(card, root, entries, problems)
        layout = "hq"
    marker = folder / SOURCE_MARKER
    origin = json.loads(marker.read_text()) if marker.is_file() else None
    return Dataset(card, root, layout, tuple(entries), tuple(problems), origin)


def _check_complete(
    card: DatasetCard, root: Path, entries: list[_Entry], problems: list[Skipped]
) -> None:
    if problems:
        first = problems[0]
        raise DatasetError(f"{card.title} in {root}: {first.path.name}: {first.reason}.")
    if card.images is not None and len(entries) != card.images:
        raise DatasetError(
            f"{root} holds {len(entries)} images but {card.title} has {card.images}: "
            "the copy is incomplete or mixed with other files. For a subset, use the "
            "'folder' dataset."
        )


def datasets_dir() -> Path | None:
    raw = os.environ.get(DATASETS_DIR_ENV, "").strip()
    return Path(raw).expanduser() if raw else None


def dataset_cache(card: DatasetCard) -> Path:
    """Where a downloaded standard set is extracted: ``<weights cache>/datasets/<Folder>``."""
    return cache_dir() / "datasets" / card.folder


def _standard_folder(card: DatasetCard, root: str | os.PathLike | None) -> Path:
    if root is not None:
        given = Path(root).expanduser()
        if (given / card.folder).is_dir():
            return given / card.folder
        if given.is_dir():
            return given
        raise DatasetError(f"{given} does not exist: {card.title} was expected there.\n{LAYOUTS}")
    shared = datasets_dir()
    if shared is not None and (shared / card.folder).is_dir():
        return shared / card.folder
    cached = dataset_cache(card)
    if cached.is_dir():
        return cached
    return download_dataset(card.id)


# ---------------------------------------------------------------- downloading

_lock = threading.Lock()


def download_dataset(name: str) -> Path:
    """Fetch a standard set's pinned archive from the Hub into the cache, verify its
    sha256 and extract its images; returns the folder (at once if already there)."""
    card = DATASETS.get(name)
    if card.kind != "standard":
        raise DatasetError(f"{card.title} is not downloadable: it needs no download.")
    with _lock:
        target = dataset_cache(card)
        if target.is_dir():
            return target
        source = card.source
        if source is None or not source.pinned:
            raise _unavailable(card, _not_pinned(source))
        if offline():
            raise _unavailable(card, "HF_HUB_OFFLINE is set")
        return install_archive(card, source, target)


def install_archive(card: DatasetCard, source: HubArchive, target: Path) -> Path:
    """Download, verify and extract `source` into `target` (through temporary names)."""
    staging = cache_dir() / ".partial" / f"{card.folder}-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        try:
            archive = _fetch(source, staging)
        except Exception as error:  # any network or Hub failure becomes one sentence
            raise _unavailable(card, failure_reason(error)) from error
        actual = sha256_of(archive)
        if actual != source.sha256:
            raise DatasetUnavailableError(
                f"{source.where} downloaded with sha256 {actual[:12]}… instead of "
                f"{source.sha256[:12]}…: the file changed or is corrupt, so it was not used."
            )
        extracted = staging / card.folder
        try:
            _extract(archive, extracted)
        except (tarfile.TarError, zipfile.BadZipFile, OSError) as error:
            raise DatasetUnavailableError(
                f"{source.where} could not be extracted ({failure_reason(error)}); "
                "nothing was kept."
            ) from error
        (extracted / SOURCE_MARKER).write_text(json.dumps(dataclasses.asdict(source), indent=1))
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(extracted, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _fetch(source: HubArchive, staging: Path) -> Path:
    from huggingface_hub import hf_hub_download

    fetched = hf_hub_download(
        source.repo_id,
        source.path_in_repo,
        repo_type="dataset",
        revision=source.revision,
        local_dir=staging / "download",
        endpoint=os.environ.get("HF_ENDPOINT") or None,
    )
    return Path(fetched)


def _extract(archive: Path, folder: Path) -> None:
    """Extract only the image files; names that would leave `folder` are refused."""
    folder.mkdir(parents=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as bundle:
            names = [n for n in bundle.namelist() if _is_image(Path(n))]
            for name in names:
                if not (folder / name).resolve().is_relative_to(folder.resolve()):
                    raise DatasetError(f"{archive.name} holds an unsafe path {name!r}.")
            bundle.extractall(folder, members=names)
        return
    with tarfile.open(archive) as bundle:
        members = [m for m in bundle.getmembers() if m.isfile() and _is_image(Path(m.name))]
        bundle.extractall(folder, members=members, filter="data")


def _not_pinned(source: HubArchive | None) -> str:
    if source is None:
        return "there is no redistributable copy to download"
    missing = "revision" if not source.revision else "sha256 of the archive"
    return f"its Hub copy ({source.where}) has no pinned {missing} yet"


def _unavailable(card: DatasetCard, reason: str) -> DatasetUnavailableError:
    shared = datasets_dir()
    parent = str(shared) if shared else "DIR"
    cache = dataset_cache(card)
    if card.source and card.source.pinned:
        other = f"or run `{download_command(card)}` when online (it fills {cache})"
    elif card.source:
        other = f"or fetch {card.source.where} by hand and extract it into {cache}"
    else:
        other = f"or extract a copy obtained from its authors into {cache}"
    return DatasetUnavailableError(
        f"{card.title} ({card.images} HR images) is not here and cannot be downloaded now "
        f"({reason}). Put its HR images in {parent}/{card.folder}/ (as {card.folder}/*.png "
        f"or {card.folder}/HR/*.png) and pass --dataset-dir {parent} or set "
        f"{DATASETS_DIR_ENV}={parent}; {other}."
    )
