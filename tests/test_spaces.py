"""The Hugging Face Space bundle (``python -m spaces build``) and the deploy call sequence."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.metadata as metadata
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from gradio_client import Client, handle_file
from packaging.requirements import Requirement
from PIL import Image

from pipelines.registry import CARDS, Download, RemoteFile
from spaces.build import BundleError, add_weights, build
from spaces.deploy import deploy, hub_api
from tests.conftest import ROOT, _free_port, natural_image, serve_app
from tests.http_fixtures import serve_files

SPACE_COLOURS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
# Licence ids the Hub accepts for a repo card (a subset: the ones a project like this uses).
HUB_LICENCES = {"apache-2.0", "mit", "bsd-3-clause", "gpl-3.0", "agpl-3.0", "cc-by-4.0", "other"}


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "spaces", *args],
        cwd=ROOT,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("space") / "bundle"
    result = _cli("build", str(out))
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    return out


def _front_matter(readme: Path) -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", readme.read_text(), flags=re.DOTALL)
    assert match, "README.md must start with a --- front matter block"
    return yaml.safe_load(match.group(1))


def _pinned(requirements: Path, name: str) -> str:
    for line in requirements.read_text().splitlines():
        if line.split("==")[0].strip().lower() == name:
            return line.split("==")[1].split("#")[0].strip()
    raise AssertionError(f"{name} is not pinned in {requirements}")


def test_front_matter_configures_a_gradio_space(bundle: Path) -> None:
    meta = _front_matter(bundle / "README.md")
    assert meta["sdk"] == "gradio"
    assert meta["sdk_version"] == _pinned(ROOT / "requirements.txt", "gradio")
    assert meta["app_file"] == "app.py" and (bundle / "app.py").is_file()
    assert meta["python_version"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert meta["title"] == "Restoration Lab"
    assert len(meta["emoji"]) == 1 and not meta["emoji"].isascii()
    assert meta["colorFrom"] in SPACE_COLOURS and meta["colorTo"] in SPACE_COLOURS
    assert 0 < len(meta["short_description"]) <= 60
    assert meta["license"] in HUB_LICENCES
    assert set(meta) >= {"title", "emoji", "colorFrom", "colorTo", "sdk", "sdk_version"}


def test_bundle_holds_the_app_and_not_the_dev_tree(bundle: Path) -> None:
    top = {entry.name for entry in bundle.iterdir()}
    assert {"app.py", "ui", "pipelines", "evaluation", "examples", "README.md"} <= top
    assert {"requirements.txt", "packages.txt"} <= top
    # `import spaces` on a Space must find Hugging Face's ZeroGPU package, not ours.
    assert not top & {"spaces", "tests", "benchmarks", "scripts", ".ci", ".venv", "weights"}
    assert not list(bundle.rglob("__pycache__")) and not list(bundle.rglob("*.pyc"))
    assert (bundle / "examples" / "astronaut_small.png").is_file()
    assert not list((bundle / "examples").glob("*.py"))
    assert (bundle / "evaluation" / "data" / "niqe_pris_params.mat").is_file()


def _requirement_closure(names: set[str]) -> set[str]:
    """The distributions pip installs for ``names``: them and their dependencies."""
    seen: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue  # a Space-only wheel that is not installed here (e.g. opencv-python)
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(_normal(requirement.name))
    return seen


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _optional_imports(tree: ast.AST) -> set[int]:
    """Ids of import nodes inside ``try: ... except ImportError`` (optional by design).

    Imports of modules the same file probes with ``find_spec`` are optional too.
    """
    optional: set[int] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Try):
            continue
        caught = {ast.unparse(handler.type) for handler in node.handlers if handler.type}
        if caught & {"ImportError", "ModuleNotFoundError"}:
            optional |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return optional


def _probed_modules(tree: ast.AST) -> set[str]:
    """Modules the code checks for with ``find_spec("name")`` before importing them."""
    return {
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and ast.unparse(node.func).endswith("find_spec")
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }


def _third_party_imports(bundle: Path) -> dict[str, set[str]]:
    """Top-level module name -> the bundle files importing it (stdlib and local left out)."""
    local = {p.name for p in bundle.iterdir() if p.is_dir() or p.suffix == ".py"}
    local |= {p.stem for p in bundle.glob("*.py")}
    found: dict[str, set[str]] = {}
    for path in bundle.rglob("*.py"):
        tree = ast.parse(path.read_text())
        optional = _optional_imports(tree)
        probed = _probed_modules(tree)
        for node in ast.walk(tree):
            if id(node) in optional:
                continue
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in probed:
                    continue  # optional: used only when installed
                if top not in sys.stdlib_module_names and top not in local:
                    found.setdefault(top, set()).add(str(path.relative_to(bundle)))
    return found


def _bundle_requirement_text(bundle: Path) -> str:
    """What a Space installs: pre-requirements.txt first, then requirements.txt."""
    return (bundle / "pre-requirements.txt").read_text() + (bundle / "requirements.txt").read_text()


def test_every_import_is_satisfied_by_the_bundle_requirements(bundle: Path) -> None:
    lines = [line.split("#")[0].strip() for line in _bundle_requirement_text(bundle).split("\n")]
    listed = {_normal(Requirement(line).name) for line in lines if line}
    installable = _requirement_closure(listed)
    providers = metadata.packages_distributions()
    imports = _third_party_imports(bundle)
    assert {"gradio", "numpy", "torch", "cv2", "ncnn"} <= set(imports)
    missing = {
        module: sorted(files)
        for module, files in imports.items()
        if not {_normal(d) for d in providers.get(module, [])} & installable
    }
    assert not missing, f"imports no requirement of the bundle provides: {missing}"


def test_bundle_requirements_keep_every_pin(bundle: Path) -> None:
    text = _bundle_requirement_text(bundle)
    for source in ("requirements.txt", "requirements-nodeps.txt"):
        for line in (ROOT / source).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line:
                assert re.search(rf"^{re.escape(line)}\s*$", text, flags=re.MULTILINE), line
    headless = _pinned(ROOT / "requirements.txt", "opencv-python-headless")
    assert _pinned(bundle / "requirements.txt", "opencv-python") == headless


def test_deoldify_installs_before_the_fastai_that_replaces_its_copy(bundle: Path) -> None:
    def names(file: str) -> list[str]:
        lines = (bundle / file).read_text().splitlines()
        return [
            _normal(Requirement(line.split("#")[0]).name)
            for line in lines
            if line.split("#")[0].strip()
        ]

    assert names("pre-requirements.txt") == ["torch", "torchvision", "deoldify"]
    assert "fastai" in names("requirements.txt") and "deoldify" not in names("requirements.txt")
    for name in ("torch", "torchvision"):
        pinned = _pinned(ROOT / "requirements.txt", name)
        assert _pinned(bundle / "pre-requirements.txt", name) == pinned


def test_packages_txt_lists_what_the_bundled_models_need(bundle: Path) -> None:
    packages = (bundle / "packages.txt").read_text().split()
    script = (ROOT / "scripts" / "bootstrap.sh").read_text()
    test_apt = re.search(r"^TEST_APT=\(([^)]*)\)", script, flags=re.MULTILINE).group(1).split()
    assert {"libvulkan1", "libomp5"} <= set(packages) & set(test_apt)
    assert {"libgl1", "libglib2.0-0"} <= set(packages)  # for opencv-python's cv2
    assert not {"python3-venv", "mesa-vulkan-drivers", "postgresql"} & set(packages)
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", p) for p in packages)  # no comments


@pytest.fixture(scope="module")
def bundle_server(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bundle's app.py served from the bundle folder alone, as a Space runs it."""
    env = {
        "PYTHONPATH": "",
        "RESTORATION_OUTPUT_DIR": str(tmp_path_factory.mktemp("bundle-outputs")),
    }
    with serve_app(env, tmp_path_factory.mktemp("bundle-log"), cwd=bundle) as app:
        yield app.url


def test_the_bundle_serves_on_its_own(bundle_server: str, tmp_path: Path) -> None:
    path = tmp_path / "small.png"
    natural_image(24, 16).save(path)
    client = Client(bundle_server, verbose=False)
    _, full, note = client.predict(
        handle_file(str(path)),
        "span-x4-ch48",
        4,
        "Scale factor",
        0,
        -1,
        0,
        api_name="/super_resolution",
    )
    assert Image.open(full).size == (96, 64) and "SPAN" in note


def test_in_the_bundle_on_gpu_is_hugging_faces_decorator(bundle: Path) -> None:
    probe = (
        "import spaces, pipelines.gpu as gpu\n"
        "assert gpu.zero_gpu_decorator() is spaces.GPU, spaces.__file__\n"
        "def work(x): return x + 1\n"
        "assert gpu.on_gpu(work)(1) == 2\n"  # off ZeroGPU, spaces.GPU leaves it as it is
        "print(spaces.__file__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=bundle, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "site-packages" in result.stdout


def test_in_the_repo_on_gpu_is_a_no_op() -> None:
    from pipelines import gpu

    def work() -> int:
        return 1

    assert gpu.zero_gpu_decorator() is None  # `spaces` here is this repo's builder
    assert gpu.on_gpu(work) is work


CHECKPOINT = os.urandom(50_000)


def _card(non_commercial: bool, url: str):
    file = RemoteFile("tiny.pth", hashlib.sha256(CHECKPOINT).hexdigest(), len(CHECKPOINT), url=url)
    return dataclasses.replace(
        CARDS[0],
        id="tiny-test",
        title="Tiny test",
        backend="torch",
        source=Download((file,)),
        license="Tiny-NC" if non_commercial else "MIT",
        non_commercial=non_commercial,
    )


@pytest.fixture()
def weights_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RESTORATION_WEIGHTS_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return tmp_path / "cache"


def test_with_weights_fetches_verifies_and_ships_them(weights_dir: Path, tmp_path: Path) -> None:
    with serve_files() as server:
        card = _card(False, server.add("tiny.pth", CHECKPOINT))
        assert add_weights(tmp_path / "out", [card], allow_non_commercial=False) == ["tiny-test"]
    assert (tmp_path / "out" / "weights" / "tiny.pth").read_bytes() == CHECKPOINT
    assert (weights_dir / "tiny.pth").is_file()  # fetched into the cache on the way


def test_with_weights_refuses_non_commercial_cards_unless_allowed(tmp_path: Path) -> None:
    with serve_files() as server:
        card = _card(True, server.add("tiny.pth", CHECKPOINT))
        with pytest.raises(BundleError, match=r"non-commercial .*--allow-non-commercial"):
            add_weights(tmp_path / "out", [card], allow_non_commercial=False)
        assert not server.requests  # refused before anything was fetched


def test_with_weights_allows_non_commercial_when_asked(weights_dir: Path, tmp_path: Path) -> None:
    with serve_files() as server:
        card = _card(True, server.add("tiny.pth", CHECKPOINT))
        assert add_weights(tmp_path / "out", [card], allow_non_commercial=True) == ["tiny-test"]


def test_build_cli_refuses_a_non_commercial_model_by_id(tmp_path: Path) -> None:
    result = _cli("build", str(tmp_path / "out"), "--with-weights", "span-x4-ch48,codeformer")
    assert result.returncode == 1
    assert "codeformer" in result.stderr and "--allow-non-commercial" in result.stderr
    assert not (tmp_path / "out").exists()


def test_build_refuses_a_folder_that_is_not_a_bundle(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    result = _cli("build", str(tmp_path))
    assert result.returncode == 1 and "not empty" in result.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_build_refuses_folders_of_the_repository_itself() -> None:
    for target in (ROOT, ROOT / "pipelines" / "space", ROOT / "spaces" / "out"):
        with pytest.raises(BundleError, match="overwrite the repository"):
            build(target)
    assert not (ROOT / "pipelines" / "space").exists()


class FakeHfApi:
    """Records the calls a deploy makes, in order (no network)."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.fail_on = fail_on

    def _record(self, name: str, options: dict) -> None:
        self.calls.append((name, options))
        if name == self.fail_on:
            raise RuntimeError("403 Forbidden: you do not have write access")

    def create_repo(self, repo_id: str, **options) -> str:
        self._record("create_repo", {"repo_id": repo_id, **options})
        return f"https://huggingface.co/spaces/{repo_id}"

    def upload_folder(self, **options) -> None:
        self._record("upload_folder", options)

    def request_space_hardware(self, repo_id: str, hardware: str, **options) -> None:
        self._record("request_space_hardware", {"repo_id": repo_id, "hardware": hardware})


def test_deploy_creates_the_space_uploads_and_requests_hardware(bundle: Path) -> None:
    api = FakeHfApi()
    result = deploy(bundle, "someone/restoration-lab", True, "zero-a10g", api=api)
    assert [name for name, _ in api.calls] == [
        "create_repo",
        "upload_folder",
        "request_space_hardware",
    ]
    create, upload, hardware = (options for _, options in api.calls)
    assert create == {
        "repo_id": "someone/restoration-lab",
        "repo_type": "space",
        "space_sdk": "gradio",
        "private": True,
        "exist_ok": True,
    }
    assert upload["repo_id"] == "someone/restoration-lab" and upload["repo_type"] == "space"
    assert Path(upload["folder_path"]) == bundle
    assert (
        "spaces/*" not in upload["delete_patterns"] and "pipelines/*" in upload["delete_patterns"]
    )
    assert hardware == {"repo_id": "someone/restoration-lab", "hardware": "zero-a10g"}
    assert result.url == "https://huggingface.co/spaces/someone/restoration-lab"


def test_deploy_without_hardware_leaves_it_alone(bundle: Path) -> None:
    api = FakeHfApi()
    deploy(bundle, "someone/lab", api=api)
    assert [name for name, _ in api.calls] == ["create_repo", "upload_folder"]
    assert api.calls[0][1]["private"] is False


@pytest.mark.parametrize(
    ("repo_id", "hardware", "message"),
    [("no-slash", None, "USER/NAME"), ("a/b", "gpu-please", "Unknown hardware")],
)
def test_deploy_checks_its_arguments_before_any_call(
    bundle: Path, repo_id: str, hardware: str | None, message: str
) -> None:
    api = FakeHfApi()
    with pytest.raises(BundleError, match=message):
        deploy(bundle, repo_id, hardware=hardware, api=api)
    assert not api.calls


def test_a_hub_failure_is_one_readable_error(bundle: Path) -> None:
    with pytest.raises(BundleError, match="someone/lab failed: 403 Forbidden"):
        deploy(bundle, "someone/lab", api=FakeHfApi(fail_on="upload_folder"))


def test_the_token_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_from_environment")
    assert hub_api().token == "hf_from_environment"


def _deploy_env(tmp_path: Path, token: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env |= {"HF_HOME": str(tmp_path / "hf-home"), "HF_ENDPOINT": f"http://127.0.0.1:{_free_port()}"}
    if token:
        env["HF_TOKEN"] = token
    return env


def test_deploy_without_a_token_says_how_to_log_in(bundle: Path, tmp_path: Path) -> None:
    env = _deploy_env(tmp_path, None)
    result = _cli("deploy", "--repo-id", "someone/lab", "--bundle", str(bundle), env=env)
    assert result.returncode == 1
    assert "HF_TOKEN" in result.stderr and "hf auth login" in result.stderr


@pytest.mark.parametrize("source", ["HF_TOKEN", "cached login"])
def test_the_token_is_never_printed_even_when_the_hub_fails(
    bundle: Path, tmp_path: Path, source: str
) -> None:
    secret = "hf_" + os.urandom(12).hex()
    env = _deploy_env(tmp_path, secret if source == "HF_TOKEN" else None)
    if source == "cached login":  # where `hf auth login` stores it
        (tmp_path / "hf-home").mkdir()
        (tmp_path / "hf-home" / "token").write_text(secret)
    # HF_ENDPOINT is a closed loopback port: "failed" means the token was found and used.
    result = _cli("deploy", "--repo-id", "someone/lab", "--bundle", str(bundle), env=env)
    assert result.returncode == 1 and "failed" in result.stderr
    assert secret not in result.stdout + result.stderr
    assert secret[3:] not in result.stdout + result.stderr
