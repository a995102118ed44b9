"""One generation of a campaign as one typed record, and the count of DFT labels a campaign has used.

The workchain's ``summary`` rows, the rows a continuation rebuilds from the provenance graph, ``aiida-les campaign
show``, the exported ``summary.json`` and its plots all hold a :class:`GenerationRecord`, built from a generation's
processes by :func:`workchains.active_learning.history.generation_record`. Stored (in the ``summary`` output, the
``restart.state`` input and ``summary.json``) it is a dictionary whose keys are those the campaign has always written
(:data:`UNITS` gives the unit of those that do not name it), so campaigns stored before this record read back.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

__all__ = ('INTERRUPTED', 'UNITS', 'GenerationRecord', 'count_labels_used')

#: The stopping message of a generation rebuilt from the provenance graph (the campaign was interrupted before it ran
#: the stopping rule).
INTERRUPTED = 'not evaluated: the campaign was interrupted; row rebuilt from the provenance graph'


class GenerationRecord(BaseModel):
    """What one generation did: committee, MD exploration, held-out errors, selection, labels, stopping rule.

    Fields that the generation has not reached yet (or that a failed step did not produce) keep their defaults.
    """

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True, extra='ignore')

    generation: int = Field(description='Generation number, 0-based, continued across campaign extensions.')
    campaign_pk: int | None = Field(None, alias='campaign', description='PK of the campaign that ran the generation.')
    n_models: int = Field(0, description='Committee trainings started.')
    train_force_rmse_mev_per_ang: list[float] = Field(
        default_factory=list,
        alias='train_forces_rmse',
        description='Force RMSE on the validation set (meV/Å), one value per committee member that finished.',
    )
    n_md_runs: int = Field(0, description='MD explorations started (seeds × temperatures).')
    n_md_failed: int = Field(0, description='MD explorations that failed or left no trajectory.')
    n_md_stopped_by_uncertainty: int = Field(0, description='MD runs stopped because the committee deviation ran away.')
    force_std_ev_per_ang: list[float] = Field(
        default_factory=list,
        exclude=True,
        repr=False,
        description='Committee max force deviation of each explored frame (eV/Å); read for show and plots, not stored.',
    )
    heldout_force_rmse_mev_per_ang: float | None = Field(
        None, alias='heldout_forces_rmse', description='Committee-mean force RMSE on the held-out DFT set (meV/Å).'
    )
    heldout_energy_rmse_mev_per_atom: float | None = Field(
        None, alias='heldout_energy_rmse_meV_per_atom', description='Energy RMSE on the held-out DFT set (meV/atom).'
    )
    force_std_scale: float | None = Field(
        None,
        description='Calibration of the committee force deviation on the held-out set: expected force error = scale x '
        'deviation (dimensionless; les_model.calibration). None without a committee spread or force labels.',
    )
    ence_raw: float | None = Field(None, description='ENCE of the raw committee force deviation on the held-out set.')
    ence_calibrated: float | None = Field(None, description='ENCE after scaling by force_std_scale.')
    miscalibration_area_raw: float | None = Field(None, description='Miscalibration area of the raw deviation.')
    miscalibration_area_calibrated: float | None = Field(None, description='Miscalibration area after scaling.')
    n_frames: int | None = Field(None, description='Explored frames that the selection judged.')
    accurate_fraction: float | None = Field(None, description='Fraction of the judged frames below trust_lower.')
    counts: dict[str, int] = Field(default_factory=dict, description='Judged frames per class (accurate, candidate..).')
    n_selected: int = Field(0, description='Frames selected for labelling.')
    n_labelled: int = Field(0, description='Selected frames labelled and merged into the dataset.')
    n_label_failed: int = Field(0, description='Selected frames whose labels failed or were refused.')
    label_failures: list[dict[str, Any]] = Field(default_factory=list, description='Why each failed label failed.')
    n_heldout_added: int = Field(0, description='Labels of this generation moved to the held-out set (not trained on).')
    dataset_size: int | None = Field(None, description='Training frames after the generation merged its labels.')
    heldout_size: int | None = Field(None, description='Held-out frames after the generation added its share.')
    schedule_stage: int | None = Field(
        None, description='Exploration stage (0-based) of the generation; None where the stopping rule did not run.'
    )
    no_labels_added: bool | None = Field(
        None, description='Frames were selected but none labelled; None where the stopping rule did not run.'
    )
    stopping: str | None = Field(None, description="The stopping rule's line: every criterion and its value.")

    @computed_field(alias='heldout_forces_rmse_eV_per_A')
    @property
    def heldout_force_rmse_ev_per_ang(self) -> float | None:
        """The held-out force RMSE in eV/Å (the unit of the stopping rule's ``force_error_target``)."""
        value = self.heldout_force_rmse_mev_per_ang
        return None if value is None else value / 1000.0

    @model_validator(mode='before')
    @classmethod
    def _from_ev_per_ang(cls, data: Any) -> Any:
        """Rows stored before the record existed give the held-out force RMSE in eV/Å only."""
        if isinstance(data, dict) and data.get('heldout_forces_rmse') is None:
            legacy = data.get('heldout_forces_rmse_eV_per_A')
            if legacy is not None and data.get('heldout_force_rmse_mev_per_ang') is None:
                data = {**data, 'heldout_forces_rmse': float(legacy) * 1000.0}
        return data

    def stored(self) -> dict[str, Any]:
        """Return the JSON-serialisable dictionary that the summary, the restart state and ``summary.json`` hold."""
        return self.model_dump(mode='json', by_alias=True)

    @classmethod
    def from_stored(cls, row: dict[str, Any]) -> GenerationRecord:
        """Read back a dictionary written by :meth:`stored` (or a summary row of an older campaign)."""
        return cls.model_validate(row)


#: Units of the stored keys that carry no unit in their name, and of the eV/Å one (``summary.json`` writes this).
UNITS = {
    'train_forces_rmse': 'meV/Å (validation set, one value per committee member)',
    'heldout_forces_rmse': 'meV/Å (committee mean on the held-out set)',
    'heldout_forces_rmse_eV_per_A': 'eV/Å',
    'heldout_energy_rmse_meV_per_atom': 'meV/atom',
    'accurate_fraction': 'fraction of explored frames below trust_lower (calibrated expected error)',
    'force_std_scale': 'dimensionless: expected force error = scale x committee force deviation',
}


def count_labels_used(before: int, n_initial: int, records: Iterable[GenerationRecord]) -> int:
    """Return the DFT labels a campaign lineage has used: the only place they are counted.

    :param before: labels used by the campaigns this one continues (``restart.state``, key ``labels_used``).
    :param n_initial: initial frames this campaign labelled (training and held-out), 0 when it was given a dataset.
    :param records: this campaign's own generations; each adds the labels it merged (failed labels cost nothing).
    """
    return before + n_initial + sum(record.n_labelled for record in records)
