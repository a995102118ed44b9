"""les.label: builders, input validation, and end-to-end runs with CP2K (fast) and an ASE calculator (EMT)."""

import os
import shutil
import sys

import numpy as np
import pytest
from aiida import orm
from aiida.engine import run_get_node
from ase.build import bulk, molecule

from aiida_les.data.dataset import LesDatasetData
from workchains.label.label import LesLabelWorkChain

LES_CP2K = shutil.which('les-cp2k') or shutil.which('les-cp2k', path=os.path.dirname(sys.executable))
LES_ASE_LABEL = shutil.which('les-ase-label') or shutil.which('les-ase-label', path=os.path.dirname(sys.executable))
EMT = {'import_path': 'ase.calculators.emt.EMT', 'label': 'EMT'}


def _water(shift=0.0):
    atoms = molecule('H2O')
    atoms.positions[1, 0] += shift
    atoms.center(vacuum=4.0)
    atoms.pbc = False
    return atoms


def test_builder_from_protocol(fixture_code, serialize_builder, data_regression):
    dataset = LesDatasetData.from_ase([_water(), _water(0.05)])
    builder = LesLabelWorkChain.get_builder_from_protocol(
        fixture_code('les.cp2k'), dataset, 'fast', overrides={'max_concurrent': 2, 'cp2k': {'max_iterations': 2}}
    )
    data_regression.check(serialize_builder(builder))


def test_builder_unknown_override(fixture_code):
    dataset = LesDatasetData.from_ase([_water()])
    with pytest.raises(ValueError, match='Unknown override key `cp2k.cp2k.paramters`'):
        LesLabelWorkChain.get_builder_from_protocol(
            fixture_code('les.cp2k'), dataset, 'fast', overrides={'cp2k': {'cp2k': {'paramters': {}}}}
        )


def test_validator_needs_one_source(fixture_code, generate_workchain):
    dataset = LesDatasetData.from_ase([_water()])
    builder = LesLabelWorkChain.get_builder_from_protocol(fixture_code('les.cp2k'), dataset, 'fast')
    builder.structures = {'a': orm.StructureData(ase=_water())}
    with pytest.raises(ValueError, match='Give either `dataset`'):
        generate_workchain('les.label', builder._inputs(prune=True))


def test_validator_dataset_with_its_frames(fixture_code, generate_workchain):
    """A dataset may come with the StructureData of its frames (frame_0000 ...), only if they are those frames."""
    dataset = LesDatasetData.from_ase([_water(), _water(0.05)])
    builder = LesLabelWorkChain.get_builder_from_protocol(fixture_code('les.cp2k'), dataset, 'fast')
    builder.structures = {f'frame_{i:04d}': orm.StructureData(ase=atoms) for i, atoms in enumerate(dataset.get_ase())}
    generate_workchain('les.label', builder._inputs(prune=True))
    builder.structures = {'frame_0000': orm.StructureData(ase=_water()), 'frame_0001': orm.StructureData(ase=_water())}
    with pytest.raises(ValueError, match='`frame_0001` has other atoms or positions than frame 0001'):
        generate_workchain('les.label', builder._inputs(prune=True))


def test_validator_needs_labeller_namespace(fixture_code, generate_workchain):
    dataset = LesDatasetData.from_ase([_water()])
    builder = LesLabelWorkChain.get_builder_from_protocol(fixture_code('les.cp2k'), dataset, 'fast')
    builder.labeller = orm.Str('ase')
    with pytest.raises(ValueError, match='its `ase` input namespace is empty'):
        generate_workchain('les.label', builder._inputs(prune=True))


@pytest.mark.skipif(LES_CP2K is None or shutil.which('cp2k.psmp') is None, reason='needs les-cp2k and cp2k.psmp')
def test_label_cp2k_end_to_end(aiida_code_installed):
    """Three frames: one refused (overlapping atoms), a neutral water and OH- (charge from the frame's info)."""
    code = aiida_code_installed(label='les-cp2k-real', default_calc_job_plugin='les.cp2k', filepath_executable=LES_CP2K)
    overlapping = _water()
    overlapping.positions[2] = overlapping.positions[0] + [0.1, 0.0, 0.0]
    hydroxide = molecule('OH')
    hydroxide.center(vacuum=4.0)
    hydroxide.pbc = False
    hydroxide.info['total_charge'] = -1
    hydroxide.info['origin_seed'] = 'hydroxide'  # an origin entry of the request is kept on its label
    dataset = LesDatasetData.from_ase([_water(0.05), overlapping, hydroxide])
    builder = LesLabelWorkChain.get_builder_from_protocol(
        code, dataset, 'fast', overrides={'max_concurrent': 2}, options={'max_wallclock_seconds': 300}
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    report = results['report'].get_dict()
    assert report['n_requested'] == 3
    assert report['n_labelled'] == 2
    assert report['n_failed'] == 1
    assert report['failures'][0]['index'] == 1
    assert report['failures'][0]['reason'].startswith('refused: Overlapping atoms')
    labelled = results['labelled']
    frames = labelled.get_ase()
    assert [atoms.info['source_index'] for atoms in frames] == [0, 2]
    assert [atoms.info['total_charge'] for atoms in frames] == [0, -1]
    assert [atoms.info.get('origin_seed') for atoms in frames] == [None, 'hydroxide']
    assert labelled.level_of_theory.startswith('cp2k/fast/GFN1-xTB#')
    assert report['level_of_theory'] == labelled.level_of_theory
    # Provenance: the merged dataset was created by the calcfunction from each one-frame label.
    creator = labelled.creator
    assert creator.process_label == 'collect_labels'
    sources = [link.node for link in creator.base.links.get_incoming().all() if link.link_label.startswith('frame_')]
    assert len(sources) == 2
    assert {source.creator.process_label for source in sources} == {'LesCp2kCalculation'}
    # Each labelled StructureData was unpacked from the dataset by a calcfunction; each frame names its job.
    jobs = {source.creator.uuid: source.creator for source in sources}
    assert sorted(jobs) == sorted(atoms.info['label_job_uuid'] for atoms in frames)
    for job in jobs.values():
        assert job.inputs.structure.creator.process_label == 'unpack_frames'
        assert job.inputs.structure.creator.inputs.dataset.uuid == dataset.uuid
    assert [atoms.info['structure_uuid'] for atoms in frames] == [
        jobs[atoms.info['label_job_uuid']].inputs.structure.uuid for atoms in frames
    ]


@pytest.mark.skipif(LES_ASE_LABEL is None, reason='needs les-ase-label')
def test_label_ase_end_to_end(aiida_code_installed):
    """EMT labels Cu; Na (no EMT parameters) fails in the calculator and is excluded with its reason (batches of 1)."""
    code = aiida_code_installed(
        label='les-ase-label-real', default_calc_job_plugin='les.ase_label', filepath_executable=LES_ASE_LABEL
    )
    copper = bulk('Cu', 'fcc', a=3.6, cubic=True)
    copper.rattle(0.05, seed=0)
    cells = [orm.StructureData(ase=copper), orm.StructureData(ase=bulk('Na', 'bcc', a=4.23, cubic=True))]
    builder = LesLabelWorkChain.get_builder_from_protocol(
        code, cells, labeller='ase', calculator=EMT, overrides={'max_concurrent': 1}
    )
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    report = results['report'].get_dict()
    assert (report['n_labelled'], report['n_failed']) == (1, 1)
    assert report['failures'][0]['index'] == 1
    assert 'calculator failed' in report['failures'][0]['reason']
    frames = results['labelled'].get_ase()
    assert all(np.asarray(frame.get_stress()).shape == (6,) for frame in frames)


def test_collect_labels_refuses_mixed_levels_of_theory():
    """Labels from two protocols never merge: the calcfunction fails instead of mixing levels of theory."""
    from ase.calculators.singlepoint import SinglePointCalculator

    from workchains.label.functions import collect_labels

    frames = {}
    for index, level in enumerate(['cp2k/fast/GFN1-xTB#a', 'cp2k/balanced/PBE#b']):
        atoms = _water()
        atoms.calc = SinglePointCalculator(atoms, energy=-1.0, forces=np.zeros((3, 3)))
        atoms.info['level_of_theory'] = level
        frames[f'frame_{index:04d}'] = LesDatasetData.from_ase([atoms])
    with pytest.raises(ValueError, match='must not mix levels of theory'):
        collect_labels(report=orm.Dict({'n_requested': 2, 'failures': []}), **frames)
