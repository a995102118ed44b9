"""LesPhononsWorkChain: phonons of a crystal from an LES model, with the LO-TO splitting from the model's BEC.

Outline: phonopy's supercell displacements become a dataset (calcfunction ``generate_phonon_dataset``), one
``les.evaluate`` job predicts forces on them and the Born effective charges of the unit cell (``compute_bec``), and a
calcfunction (``compute_phonons``) builds the force constants, the non-analytic correction from those Born charges and
the given ``eps_inf``, the Gamma frequencies, band structure and DOS. Outputs are phonopy files, PNG plots and a
``gamma_frequencies`` Dict (THz and cm^-1, with the Born charges used).
"""

from __future__ import annotations

from aiida import orm
from aiida.common import AttributeDict
from aiida.engine import ToContext, WorkChain
from aiida.plugins import CalculationFactory

from workchains.phonons.functions import (
    FILE_OUTPUTS,
    compute_phonons,
    generate_phonon_dataset,
    validate_parameters,
)

__all__ = ('LesPhononsWorkChain',)

LesEvaluateCalculation = CalculationFactory('les.evaluate')


def validate_structure(structure: orm.StructureData, _ctx=None) -> str | None:
    """Phonons need a 3D-periodic unit cell."""
    if not all(structure.pbc):
        return f'structure must be periodic in 3D, got pbc={list(structure.pbc)}'
    return None


class LesPhononsWorkChain(WorkChain):
    """Harmonic phonons from an LES model (or committee mean) with finite displacements and phonopy.

    With ``parameters.eps_inf`` the non-analytic correction uses the model's Born effective charges of the unit cell
    (acoustic sum rule enforced, site-symmetrised), so the LO-TO splitting appears at Gamma and in the bands.
    """

    @classmethod
    def define(cls, spec):
        """Define the inputs, outline, outputs and exit codes."""
        super().define(spec)
        spec.expose_inputs(LesEvaluateCalculation, namespace='evaluate', exclude=('dataset',))
        spec.input('structure', valid_type=orm.StructureData, validator=validate_structure, help='The unit cell.')
        spec.input(
            'parameters',
            valid_type=orm.Dict,
            serializer=orm.to_aiida_type,
            default=lambda: orm.Dict({}),
            validator=validate_parameters,
            help='Phonon settings: supercell_matrix, primitive_matrix, displacement [Å], eps_inf, '
            'scale_bec_by_eps_inf, q_direction, band_npoints, dos_mesh (see workchains.phonons.functions).',
        )
        spec.outline(cls.setup, cls.run_evaluate, cls.inspect_evaluate, cls.run_phonons, cls.results)
        spec.output('displacements', valid_type=orm.SinglefileData, help='The evaluated frames (LesDatasetData).')
        spec.output('gamma_frequencies', valid_type=orm.Dict, help='Gamma frequencies (THz, cm^-1), Born charges used.')
        spec.output('phonopy_params', valid_type=orm.SinglefileData, help='phonopy_params.yaml (phonopy.load-able).')
        spec.output('force_sets', valid_type=orm.SinglefileData, help='phonopy FORCE_SETS.')
        spec.output('born', valid_type=orm.SinglefileData, required=False, help='phonopy BORN (with NAC only).')
        spec.output('band_yaml', valid_type=orm.SinglefileData, required=False, help='phonopy band.yaml.')
        spec.output('total_dos', valid_type=orm.SinglefileData, required=False, help='phonopy total_dos.dat.')
        spec.output('band_structure_png', valid_type=orm.SinglefileData, required=False, help='Bands (+ DOS) plot.')
        spec.output('dos_png', valid_type=orm.SinglefileData, required=False, help='DOS plot.')
        spec.exit_code(401, 'ERROR_SUB_PROCESS_FAILED_EVALUATE', message='The les.evaluate job failed.')
        spec.exit_code(402, 'ERROR_PHONON_CALCULATION_FAILED', message='The phonon calculation failed: {error}')

    def setup(self):
        """Create the displaced supercells as a dataset and the les.evaluate inputs (``compute_bec`` for the NAC)."""
        self.ctx.dataset = generate_phonon_dataset(
            self.inputs.structure, self.inputs.parameters, metadata={'call_link_label': 'generate_displacements'}
        )
        inputs = AttributeDict(self.exposed_inputs(LesEvaluateCalculation, 'evaluate'))
        config = inputs.config.get_dict() if 'config' in inputs else {}
        if self.inputs.parameters.get('eps_inf') is not None and not config.get('compute_bec'):
            inputs.config = orm.Dict({**config, 'compute_bec': True})
        inputs.dataset = self.ctx.dataset
        self.ctx.inputs = inputs

    def run_evaluate(self):
        """Predict forces (and Born charges) of all frames with les.evaluate."""
        inputs = dict(self.ctx.inputs)
        inputs['metadata'] = {**inputs.get('metadata', {}), 'call_link_label': 'evaluate'}
        node = self.submit(LesEvaluateCalculation, **inputs)
        self.report(f'launched {node.process_label}<{node.pk}> on {self.ctx.dataset.n_structures} frames')
        return ToContext(evaluate=node)

    def inspect_evaluate(self):
        """Stop if the evaluation failed."""
        node = self.ctx.evaluate
        if not node.is_finished_ok:
            self.report(f'{node.process_label}<{node.pk}> failed with exit status {node.exit_status}')
            return self.exit_codes.ERROR_SUB_PROCESS_FAILED_EVALUATE
        return None

    def run_phonons(self):
        """Force constants, NAC, Gamma frequencies, bands and DOS from the predictions."""
        try:
            self.ctx.phonons = compute_phonons(
                self.inputs.structure,
                self.inputs.parameters,
                self.ctx.evaluate.outputs.predictions,
                metadata={'call_link_label': 'compute_phonons'},
            )
        except Exception as exception:  # the calcfunction node records the traceback
            self.report(f'compute_phonons failed: {exception}')
            return self.exit_codes.ERROR_PHONON_CALCULATION_FAILED.format(error=str(exception))
        return None

    def results(self):
        """Attach the outputs."""
        self.out('displacements', self.ctx.dataset)
        self.out('gamma_frequencies', self.ctx.phonons['gamma_frequencies'])
        for name in FILE_OUTPUTS:
            if name in self.ctx.phonons:
                self.out(name, self.ctx.phonons[name])
        frequencies = ', '.join(f'{f:.3f}' for f in self.ctx.phonons['gamma_frequencies']['frequencies_thz'])
        self.report(f'Gamma frequencies [THz]: {frequencies}')
