"""``aiida-les model|dataset list|show|export`` and the same commands under ``verdi data les``, on real nodes."""

import ase.io
import numpy as np
import pytest
from ase.build import bulk

from les_model.calculator import LesCalculator


def test_model_list_show_export(run_aiida_les, model_node, tmp_path):
    listed = run_aiida_les('model', 'list')
    assert listed.exit_code == 0, listed.output
    assert str(model_node.pk) in listed.output
    assert model_node.sha256 in listed.output

    shown = run_aiida_les('model', 'show', model_node.pk)
    assert shown.exit_code == 0, shown.output
    assert f'LesModelData<{model_node.pk}> {model_node.uuid}  file: model.pt' in shown.output
    assert f'sha256: {model_node.sha256}' in shown.output
    assert "species: ['Na', 'Cl']" in shown.output

    target = tmp_path / 'exported.pt'
    exported = run_aiida_les('model', 'export', model_node.pk, '-o', target)
    assert exported.exit_code == 0, exported.output
    assert f'Wrote LesModelData<{model_node.pk}> to {target}' in exported.output
    assert target.read_bytes() == model_node.get_content(mode='rb')

    # The exported file is a working potential: the same energy as the node's own calculator.
    atoms = bulk('NaCl', 'rocksalt', a=5.64, cubic=True)
    atoms.rattle(0.05, seed=3)
    atoms.calc = LesCalculator(target, device='cpu')
    energy = atoms.get_potential_energy()
    atoms.calc = model_node.get_calculator(device='cpu')
    assert np.isfinite(energy)
    assert atoms.get_potential_energy() == pytest.approx(energy, abs=1e-10)


def test_export_refuses_to_overwrite_and_reports_os_errors(run_aiida_les, model_node, tmp_path):
    target = tmp_path / 'model.pt'
    target.write_bytes(b'keep me')
    refused = run_aiida_les('model', 'export', model_node.pk, '-o', target)
    assert refused.exit_code != 0
    assert f'{target} exists; pass --force to overwrite it' in refused.output
    assert target.read_bytes() == b'keep me'

    forced = run_aiida_les('model', 'export', model_node.pk, '-o', target, '--force')
    assert forced.exit_code == 0, forced.output
    assert target.read_bytes() == model_node.get_content(mode='rb')

    blocked = tmp_path / 'a_file'
    blocked.write_text('')
    failed = run_aiida_les('model', 'export', model_node.pk, '-o', blocked / 'model.pt')
    assert failed.exit_code != 0
    assert failed.output.strip().splitlines() == [f'Critical: Cannot write {blocked / "model.pt"}: Not a directory.']


def test_dataset_list_show_export(run_aiida_les, dataset_node, tmp_path):
    listed = run_aiida_les('dataset', 'list')
    assert listed.exit_code == 0, listed.output
    row = next(line.split() for line in listed.output.splitlines() if line.split()[:1] == [str(dataset_node.pk)])
    assert row[3] == '3'  # PK, date, time, structures

    shown = run_aiida_les('dataset', 'show', dataset_node.pk)
    assert shown.exit_code == 0, shown.output
    assert f'LesDatasetData<{dataset_node.pk}>' in shown.output
    assert 'n_structures: 3' in shown.output

    target = tmp_path / 'frames.extxyz'
    exported = run_aiida_les('dataset', 'export', dataset_node.pk, '-o', target)
    assert exported.exit_code == 0, exported.output
    frames = ase.io.read(target, index=':')
    assert len(frames) == 3
    np.testing.assert_allclose(frames[1].get_forces(), dataset_node.get_ase()[1].get_forces())


def test_show_refuses_a_node_of_another_type(run_aiida_les, model_node, dataset_node):
    result = run_aiida_les('model', 'show', dataset_node.pk)
    assert result.exit_code != 0
    assert f'no LesModelData found with ID<{dataset_node.pk}>' in result.output
    result = run_aiida_les('dataset', 'export', model_node.pk)
    assert result.exit_code != 0
    assert f'no LesDatasetData found with ID<{model_node.pk}>' in result.output


def test_verdi_data_les(run_verdi, model_node, dataset_node, tmp_path):
    shown = run_verdi('data', 'les', 'model', 'show', model_node.pk)
    assert shown.exit_code == 0, shown.output
    assert f'sha256: {model_node.sha256}' in shown.output
    target = tmp_path / 'data.extxyz'
    exported = run_verdi('data', 'les', 'dataset', 'export', dataset_node.pk, '--output', target)
    assert exported.exit_code == 0, exported.output
    assert target.read_bytes() == dataset_node.get_content(mode='rb')
    listed = run_verdi('data', 'les', 'model', 'list')
    assert str(model_node.pk) in listed.output
