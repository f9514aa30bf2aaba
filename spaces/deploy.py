"""Create or update a Hugging Face Space from a bundle folder.

The token comes from ``HF_TOKEN`` or the cached ``hf auth login``; it is handed to
``huggingface_hub`` and never printed, logged or written into the bundle.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from spaces.build import MARKER, BundleError

REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


class SpaceApi(Protocol):
    """The part of ``huggingface_hub.HfApi`` a deploy uses."""

    def create_repo(self, repo_id: str, **options: Any) -> Any: ...

    def upload_folder(self, **options: Any) -> Any: ...

    def request_space_hardware(self, repo_id: str, hardware: Any, **options: Any) -> Any: ...


@dataclass(frozen=True)
class Deployment:
    repo_id: str
    url: str
    hardware: str | None


def hardware_choices() -> list[str]:
    from huggingface_hub import SpaceHardware

    return [item.value for item in SpaceHardware]


def check_request(repo_id: str, hardware: str | None) -> None:
    if not REPO_ID.match(repo_id):
        raise BundleError(f"{repo_id!r} is not a Space id: use USER/NAME (or ORG/NAME).")
    if hardware is not None and hardware not in hardware_choices():
        raise BundleError(
            f"Unknown hardware {hardware!r}; use one of {', '.join(hardware_choices())}."
        )


def hub_api() -> SpaceApi:
    """An authenticated ``HfApi``, or a readable error when no token is available."""
    from huggingface_hub import HfApi, get_token

    token = get_token()
    if not token:
        raise BundleError(
            "No Hugging Face token: set HF_TOKEN (a write token) or run `hf auth login` first."
        )
    return HfApi(token=token)


def stale_file_patterns(bundle: Path) -> list[str]:
    """Remote files under the bundle's own folders, so files deleted here go there too."""
    return [f"{entry.name}/*" for entry in sorted(bundle.iterdir()) if entry.is_dir()]


def deploy(
    bundle: Path,
    repo_id: str,
    private: bool = False,
    hardware: str | None = None,
    api: SpaceApi | None = None,
) -> Deployment:
    """Create the Space if needed, upload the bundle, and request hardware when asked."""
    check_request(repo_id, hardware)
    if not (bundle / "README.md").is_file() or not (bundle / "app.py").is_file():
        raise BundleError(f"{bundle} is not a Space bundle: run `python -m spaces build` first.")
    api = api or hub_api()
    try:
        api.create_repo(
            repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True
        )
        api.upload_folder(
            repo_id=repo_id,
            repo_type="space",
            folder_path=str(bundle),
            commit_message="Deploy Restoration Lab (python -m spaces deploy)",
            ignore_patterns=[MARKER],
            delete_patterns=stale_file_patterns(bundle),
        )
        if hardware:
            api.request_space_hardware(repo_id=repo_id, hardware=hardware)
    except BundleError:
        raise
    except Exception as error:  # huggingface_hub's HTTP errors name the cause, not the token
        raise BundleError(f"Deploying to {repo_id} failed: {error}") from None
    return Deployment(repo_id, f"https://huggingface.co/spaces/{repo_id}", hardware)
