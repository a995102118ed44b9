"""The campaign's stopping rule: accurate fraction, held-out error, label budget, generation limit."""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class StoppingDecision:
    """Whether a campaign stops after the current generation, and why.

    :param stop: stop now.
    :param reason: ``converged``, ``labels_refused``, ``label_budget``, ``max_generations`` or ``''`` when going on.
    :param message: one line for ``self.report``, naming every criterion and its value.
    """

    stop: bool
    reason: str
    message: str


def evaluate_stopping_rule(
    accurate_fractions: list[float],
    validation_force_errors: list[float | None],
    labels_used: int,
    label_budget: int,
    generation: int,
    max_generations: int,
    accurate_threshold: float = 0.95,
    patience: int = 2,
    force_error_target: float = 0.1,
    unlabelled_generations: int = 0,
) -> StoppingDecision:
    """Decide whether to stop after generation ``generation`` (0-based).

    Converged means: the fraction of explored frames already accurate (committee force deviation below the lower
    trust level, DP-GEN style) is at least ``accurate_threshold`` in each of the last ``patience`` generations, *and*
    the committee's force error on the held-out DFT set (RMSE, eV/Å) is at most ``force_error_target``. Independently,
    the campaign stops when the label budget is used up or after ``max_generations``, and it gives up
    (``labels_refused``) once the frames it selected could not be labelled (all refused by the labeller's checks or
    failed) in each of the last ``patience`` generations: going on would spend MD and training on nothing.

    :param accurate_fractions: one value per finished generation, oldest first.
    :param validation_force_errors: held-out force RMSE per generation (eV/Å), None where it was not measured.
    :param unlabelled_generations: how many of the latest generations in a row selected frames but added no label.
    """
    if len(accurate_fractions) != len(validation_force_errors):
        raise ValueError('Expected one held-out error per generation (None where not measured).')
    recent = accurate_fractions[-patience:]
    fraction_ok = len(recent) == patience and all(value >= accurate_threshold for value in recent)
    error = validation_force_errors[-1] if validation_force_errors else None
    error_ok = error is not None and math.isfinite(error) and error <= force_error_target
    fraction_text = f'{accurate_fractions[-1]:.1%}' if accurate_fractions else 'n/a'
    # meV/Å to 3 significant digits: the held-out set is a few frames, more digits mean nothing.
    error_text = f'{float(f"{error * 1000:.3g}"):g} meV/Å' if error is not None else 'n/a'
    message = (
        f'generation {generation}: accurate fraction {fraction_text} (need >= {accurate_threshold:.0%} for '
        f'{patience} generations: {"yes" if fraction_ok else "no"}), held-out force RMSE {error_text} (target '
        f'{force_error_target * 1000:g} meV/Å: {"yes" if error_ok else "no"}), labels {labels_used}/{label_budget}'
    )
    if unlabelled_generations:
        message += f', {unlabelled_generations} generation(s) in a row with no label added'
    if unlabelled_generations >= patience:
        return StoppingDecision(True, 'labels_refused', f'{message} -> stopped: the selected frames cannot be labelled')
    if fraction_ok and error_ok:
        return StoppingDecision(True, 'converged', f'{message} -> converged')
    if labels_used >= label_budget:
        return StoppingDecision(True, 'label_budget', f'{message} -> label budget used up')
    if generation + 1 >= max_generations:
        return StoppingDecision(True, 'max_generations', f'{message} -> reached {max_generations} generations')
    return StoppingDecision(False, '', f'{message} -> continue')
