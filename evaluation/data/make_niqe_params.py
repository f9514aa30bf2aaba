"""Make ``niqe_pris_params.mat``: the official NIQE model, shipped so NIQE works offline.

Source: ``basicsr/metrics/niqe_pris_params.npz`` in the ``basicsr-fixed==1.4.2`` wheel
(identical to ``basicsr==1.4.2``), which holds the pristine multivariate Gaussian of the
official MATLAB release (http://live.ece.utexas.edu/research/quality/niqe_release.zip,
``modelparameters.mat``): ``mu_pris_param`` (1x36) and ``cov_pris_param`` (36x36), float64.
basicsr's 7x7 ``gaussian_window`` is not copied: it is fspecial(7, 7/6), recomputed where needed.

The .mat has the keys pyiqa reads (``mu_prisparam``, ``cov_prisparam``), so it can be passed
to ``pyiqa.create_metric("niqe", pretrained_model_path=...)``. The MAT header's creation date
is fixed so that the file is byte-for-byte reproducible:

    . .venv/bin/activate && python evaluation/data/make_niqe_params.py
    sha256sum evaluation/data/niqe_pris_params.mat
    # 88219fdc8ddd129acd13c3faecd6ddebe5a7f2370145cd7c1f56276578300f23 (10,928 bytes)
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import scipy.io

OUT = Path(__file__).with_name("niqe_pris_params.mat")
_HEADER = b"MATLAB 5.0 MAT-file, NIQE pristine model (official release), from basicsr 1.4.2"


def build() -> bytes:
    import basicsr.metrics

    npz = Path(basicsr.metrics.__file__).with_name("niqe_pris_params.npz")
    with np.load(npz) as params:
        mu = np.asarray(params["mu_pris_param"], dtype=np.float64).reshape(1, 36)
        cov = np.asarray(params["cov_pris_param"], dtype=np.float64).reshape(36, 36)
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"mu_prisparam": mu, "cov_prisparam": cov}, do_compression=False)
    data = bytearray(buffer.getvalue())
    data[:116] = _HEADER.ljust(116)  # replaces the "Created on: <date>" description text
    return bytes(data)


if __name__ == "__main__":
    OUT.write_bytes(build())
    sys.stdout.write(f"wrote {OUT} ({OUT.stat().st_size} bytes)\n")
