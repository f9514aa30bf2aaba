"""README's API examples run as written against a live server, so the docs cannot rot.

Every ```python block of README.md that uses ``client.`` runs, in README order, in one
shared namespace, from the repository root; the literal URL http://127.0.0.1:7860/ is
replaced by the live server's.
"""

from __future__ import annotations

import re

import pytest
from gradio_client import Client
from PIL import Image

from tests.conftest import ROOT

README_URL = "http://127.0.0.1:7860/"
BLOCK = re.compile(r"^```python\n(.*?)^```", flags=re.DOTALL | re.MULTILINE)


def api_snippets() -> list[str]:
    blocks = BLOCK.findall((ROOT / "README.md").read_text())
    return [block for block in blocks if "client." in block]


def test_only_the_first_snippet_makes_the_client() -> None:
    snippets = api_snippets()
    assert snippets, "README.md has no API examples"
    assert f'Client("{README_URL}")' in snippets[0]
    assert not any("Client(" in block for block in snippets[1:])


def test_every_public_endpoint_has_an_example(live_server: str) -> None:
    endpoints = Client(live_server, verbose=False).view_api(return_format="dict", print_info=False)
    public = {name for name in endpoints["named_endpoints"] if not name.startswith("/load_example")}
    documented = set(re.findall(r'api_name="(/[a-z_]+)"', "\n".join(api_snippets())))
    assert public - documented == set(), "endpoints without a README example"
    assert documented - public == set(), "README examples of endpoints that do not exist"


def test_readme_snippets_run_against_the_live_server(
    live_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    for number, block in enumerate(api_snippets(), start=1):
        source = block.replace(README_URL, live_server)
        try:
            exec(compile(source, f"README.md API example {number}", "exec"), namespace)
        except Exception as error:
            pytest.fail(f"README API example {number} failed: {error!r}\n{block}")
    # The last super-resolution example used the added nearest-neighbour checkpoint.
    assert namespace["model_id"].startswith("custom-nearest-x2-")
    assert Image.open(namespace["full_png"]).size == (256, 256)
    assert {row["model"] for row in namespace["records"]} >= {"span-x4-ch48", "bicubic"}
