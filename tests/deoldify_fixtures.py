"""Random-weight DeOldify generators in the release format, at the official file names.

The real generators (ColorizeArtistic_gen.pth, ColorizeStable_gen.pth) cannot be
downloaded here and have no published checksum. Stand-ins are DeOldify's own networks
(the ``deoldify`` wheel's U-Nets on fastai 1.0.61) with random weights, saved as
``Learner.save`` does (``{"model": state_dict}``): 255 MB and 874 MB like the real files.
"""

from __future__ import annotations

from pathlib import Path

import torch

from pipelines.backends.torch import deoldify
from pipelines.registry import MODELS

GENERATORS = {
    "deoldify-artistic": deoldify.Generator("DynamicUnetDeep", "resnet34", 1.5),
    "deoldify-stable": deoldify.Generator("DynamicUnetWide", "resnet101", 2),
}


def write_stand_in(card_id: str, folder: Path) -> Path:
    """A random-weight generator of the card's layout at the card's official file name."""
    torch.manual_seed(0)
    network = deoldify.build_network(GENERATORS[card_id])
    # Spectral norm's u/v start random and are refined only in training passes; a few
    # passes make sigma (and so the untrained output) sane, as training would.
    network.train()
    with torch.no_grad():
        for _ in range(3):
            network(torch.rand(1, 3, 64, 64))
    (file,) = MODELS.get(card_id).source.files
    path = folder / file.filename
    torch.save({"model": network.state_dict()}, path)
    return path
