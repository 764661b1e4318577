"""A tiny random Chronos-2 checkpoint for tests (no download: weights cannot be fetched here).

Built from ``Chronos2CoreConfig`` and saved with ``save_pretrained``, it loads through the same
``BaseChronosPipeline.from_pretrained`` call as the published model: ~190k parameters, < 1 MB.
"""

from __future__ import annotations

from pathlib import Path

TINY_CONTEXT = 512
TINY_MAX_OUTPUT_PATCHES = 8
"""16-step patches x 8 = 128 steps per pass: a day-ahead horizon (96) fits, 200 steps do not."""

QUANTILES = [0.01, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99]
"""The 21 quantile levels of the published Chronos-2."""

TINY = {"d_model": 64, "d_kv": 16, "d_ff": 128, "num_layers": 2, "num_heads": 4}
PUBLISHED = {"d_model": 768, "d_kv": 64, "d_ff": 3072, "num_layers": 12, "num_heads": 12}
"""The released amazon/chronos-2 architecture (119.5 M parameters)."""


def build_chronos2(
    directory: Path,
    *,
    size: dict[str, int] = TINY,
    context_length: int = TINY_CONTEXT,
    max_output_patches: int = TINY_MAX_OUTPUT_PATCHES,
    seed: int = 0,
) -> Path:
    """Save a randomly initialised Chronos-2 of ``size`` into ``directory`` and return it."""
    import torch
    from chronos.chronos2 import Chronos2CoreConfig, Chronos2Model

    config = Chronos2CoreConfig(
        **size,
        chronos_pipeline_class="Chronos2Pipeline",
        architectures=["Chronos2Model"],
        chronos_config={
            "context_length": context_length,
            "input_patch_size": 16,
            "input_patch_stride": 16,
            "output_patch_size": 16,
            "quantiles": QUANTILES,
            "use_reg_token": True,
            "use_arcsinh": True,
            "max_output_patches": max_output_patches,
            "time_encoding_scale": context_length,
        },
    )
    torch.manual_seed(seed)
    Chronos2Model(config).save_pretrained(directory)
    return Path(directory)
