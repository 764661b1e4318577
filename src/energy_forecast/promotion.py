"""The promotion policy, decided in one place: does a new version take ``champion``?

A pure function of the two scores; :mod:`energy_forecast.tracking` only records its decision.
Lower is better for every promotion metric (RMSE, MAE, MASE, sMAPE).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Decision", "RescoreError", "decide"]


class RescoreError(ValueError):
    """The champion cannot be scored on the challenger's test period (the message says why)."""


@dataclass(frozen=True)
class Decision:
    promoted: bool
    reason: str


def decide(metric: str, challenger: float, champion_version: str | None, champion: float | None) -> Decision:
    """Promote when there is no champion, when it has no score, or when the challenger scores lower."""
    if champion_version is None:
        return Decision(True, "promoted: no champion yet")
    if champion is None:
        return Decision(True, f"promoted: champion v{champion_version} has no {metric}")
    if challenger < champion:
        return Decision(True, f"promoted: {metric} {challenger:.4f} < champion v{champion_version} {champion:.4f}")
    return Decision(False, f"kept champion v{champion_version}: {metric} {challenger:.4f} >= {champion:.4f}")
