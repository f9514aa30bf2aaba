"""Image quality metrics: one table of typed rows, created by name.

    from evaluation.metrics import create_metric
    psnr = create_metric("psnr")
    score = psnr(output.rgb, reference.rgb)         # float; psnr.lower_better is False
    row = psnr.describe()                           # implementation, versions, settings

Names mean what they mean in pyiqa 0.1.16 and give its values: ``psnr`` (RGB), ``psnry``
(Y of YIQ), ``ssim`` (Y of YIQ), ``ssimc`` (RGB), ``niqe``, ``niqe_matlab``, ``lpips``
(AlexNet, v0.1). Also: ``psnr_y_sr`` / ``ssim_y_sr`` (Y of MATLAB's BT.601 YCbCr with
``crop_border=scale``, the super-resolution literature's convention), ``ssim_masked``
(inpainting) and ``colorhist`` (colorization). PSNR, SSIM and NIQE run on numpy and OpenCV
(at DIV2K size 7-8x pyiqa's speed for PSNR, 12x for NIQE, 40-50x for SSIM) and are tested
equal to pyiqa; torch and pyiqa are imported only for LPIPS.
"""

from evaluation.metrics.base import (
    Metric,
    MetricInputError,
    MetricSpec,
    MetricUnavailableError,
    UnknownMetricError,
)
from evaluation.metrics.registry import METRICS, MetricTable, create_metric, metric_available

__all__ = [
    "METRICS",
    "Metric",
    "MetricInputError",
    "MetricSpec",
    "MetricTable",
    "MetricUnavailableError",
    "UnknownMetricError",
    "create_metric",
    "metric_available",
    "metric_names",
]


def metric_names() -> list[str]:
    """The metric names, in table order."""
    return METRICS.names()
