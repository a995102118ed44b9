"""Training-set checks before anything is computed: label keys, ignored labels, missing labels, E0 fit, tiny sets."""

from __future__ import annotations

import ase
import ase.io
import numpy as np
import pytest
import yaml
from ase.calculators.singlepoint import SinglePointCalculator

from les_model import _keys as K
from les_model.cli import train
from les_model.cli.exit_codes import ExitCode
from les_model.config import DataKeysConfig, TrainConfig
from les_model.data.atoms import atoms_to_sample
from les_model.data.dataset import StructureDataset
from les_model.data.reference import fit_reference_energies
from les_model.data.synthetic import label_point_charges, random_ionic_structures, water_like_box
from les_model.testing.models import TINY_MODEL
from les_model.train.initialise import initialise_model


def _frames(n=6, seed=5):
    return label_point_charges(random_ionic_structures(n, 8, seed=seed), {11: 1.0, 17: -1.0})


def _run(tmp_path, monkeypatch, frames, **options) -> int:
    monkeypatch.chdir(tmp_path)
    ase.io.write(tmp_path / 'data.extxyz', frames)
    config = {
        'train_file': 'data.extxyz',
        'epochs': 1,
        'batch_size': 2,
        'progress': False,
        'device': 'cpu',
        'model': TINY_MODEL,
        **options,
    }
    (tmp_path / 'train.yaml').write_text(yaml.safe_dump(config))
    return train.main(['train.yaml'])


def _spice_like(frames):
    """Forces stored as `force` arrays and the dipole as a 1x3 row, as in the SPICE extxyz files."""
    out = []
    for atoms in frames:
        copy = atoms.copy()
        copy.arrays['force'] = atoms.get_forces()
        copy.calc = SinglePointCalculator(copy, energy=atoms.get_potential_energy())
        copy.calc.results['dipole'] = np.array([[0.1, -0.2, 0.3]])
        out.append(copy)
    return out


def test_a_wrong_forces_key_is_refused_with_the_keys_the_file_has(tmp_path, monkeypatch, capsys):
    assert _run(tmp_path, monkeypatch, _spice_like(_frames())) == ExitCode.INPUT_FILE_ERROR
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "keys.forces = 'forces' is in no frame (forces_weight is 10)" in err
    assert "arrays: ['charges_true', 'force']" in err
    assert "calculator: ['dipole', 'energy']" in err
    assert not (tmp_path / 'metrics.json').exists()  # refused before any training
    # a renamed key that no frame has is refused too, even with weight 0
    assert _run(tmp_path, monkeypatch, _frames(), keys={'dipole': 'mu'}) == ExitCode.INPUT_FILE_ERROR
    assert "keys.dipole = 'mu' is in no frame (it was set in `keys`)" in capsys.readouterr().err


def test_the_right_key_trains_and_a_1x3_dipole_is_read(tmp_path, monkeypatch, capsys):
    frames = _spice_like(_frames())
    assert _run(tmp_path, monkeypatch, frames, keys={'forces': 'force'}) == ExitCode.SUCCESS
    out = capsys.readouterr().out
    assert 'labels in the loss: energy 5/5, forces 5/5; reported only (weight 0): dipole 5' in out
    sample = atoms_to_sample(frames[0], DataKeysConfig(forces='force'))
    assert sample[K.DIPOLE].shape == (3,)
    np.testing.assert_allclose(sample[K.DIPOLE], [0.1, -0.2, 0.3])


def test_null_key_or_zero_weight_ignores_a_present_label():
    atoms = _frames(1)[0]
    atoms.info['dipole'] = np.ones(5)  # malformed
    with pytest.raises(ValueError, match='dipole must have shape'):
        atoms_to_sample(atoms)
    assert K.DIPOLE not in atoms_to_sample(atoms, DataKeysConfig(dipole=None))
    assert K.DIPOLE not in atoms_to_sample(atoms, lenient=[K.DIPOLE])  # weight 0: dropped, not refused
    assert K.FORCES not in atoms_to_sample(atoms, DataKeysConfig(forces=None, dipole=None))


def test_frames_partly_without_forces_are_counted_before_training(tmp_path, monkeypatch, capsys):
    frames = _frames(8)
    for atoms in frames[:3]:
        del atoms.calc.results['forces']
    assert _run(tmp_path, monkeypatch, frames, valid_fraction=0.0) == ExitCode.SUCCESS
    out = capsys.readouterr().out.splitlines()
    first_epoch = next(i for i, line in enumerate(out) if line.startswith('epoch '))
    assert (
        'warning: 3 of 8 frames of the training set have no forces label; they train on their other labels only'
        in (out[:first_epoch])
    )


def test_no_frame_with_forces_is_refused_while_the_force_weight_is_positive(tmp_path, monkeypatch, capsys):
    frames = _frames()
    for atoms in frames:
        del atoms.calc.results['forces']
    assert _run(tmp_path, monkeypatch, frames) == ExitCode.INPUT_FILE_ERROR
    assert "keys.forces = 'forces' is in no frame (forces_weight is 10)" in capsys.readouterr().err
    assert _run(tmp_path, monkeypatch, frames, forces_weight=0.0) == ExitCode.SUCCESS


def test_a_single_frame_does_not_report_training_errors_as_validation(tmp_path, monkeypatch, capsys):
    assert _run(tmp_path, monkeypatch, _frames(1), valid_fraction=0.1) == ExitCode.SUCCESS
    out = capsys.readouterr().out
    assert 'warning: valid_fraction 0.1 of 1 frame(s) leaves no validation frame' in out
    assert 'final validation errors' not in out
    assert 'no validation set, so these do not measure how well the model generalises' in out


def _water_frames(n):
    frames = []
    for k in range(n):
        atoms = water_like_box(2, seed=k)
        atoms.calc = SinglePointCalculator(atoms, energy=-100.0 - k * 0.01)
        frames.append(atoms)
    return frames


def test_reference_energies_of_a_single_composition_are_split_by_a_fixed_rule():
    """Every frame H2O: only 2 E0_H + E0_O is determined; both get the mean energy per atom, with a warning."""
    frames = _water_frames(5)
    fit = fit_reference_energies(StructureDataset.from_atoms(frames), [1, 8])
    assert fit.degenerate == (1, 8)
    assert fit.rank == 1
    per_atom = np.mean([a.get_potential_energy() for a in frames]) / 6
    assert fit[1] == pytest.approx(per_atom)
    assert fit[8] == pytest.approx(per_atom)
    assert 6 * per_atom == pytest.approx(4 * fit[1] + 2 * fit[8])  # the determined combination is still fitted
    assert "do not determine E0 of ['H', 'O'] separately" in fit.describe()


def test_reference_energies_fit_what_the_compositions_determine():
    """H2O and H2 frames fix both; H2O and NaCl frames leave all four species degenerate."""
    h2 = ase.Atoms('H2', positions=[[0, 0, 0], [0.74, 0, 0]])
    h2.calc = SinglePointCalculator(h2, energy=-31.0)
    water = ase.Atoms('OH2', positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    water.calc = SinglePointCalculator(water, energy=-470.0)
    fit = fit_reference_energies(StructureDataset.from_atoms([h2, water]), [1, 8])
    assert fit.degenerate == ()
    assert fit[1] == pytest.approx(-15.5)
    assert fit[8] == pytest.approx(-439.0)
    nacl = ase.Atoms('NaCl', positions=[[0, 0, 0], [2.4, 0, 0]])
    nacl.calc = SinglePointCalculator(nacl, energy=-10.0)
    config = TrainConfig.from_dict({'train_file': 'x', 'forces_weight': 0.0, 'model': TINY_MODEL})
    data = StructureDataset.from_atoms([water, nacl])
    with pytest.warns(UserWarning, match=r"do not determine E0 of \['H', 'O', 'Na', 'Cl'\]"):
        model = initialise_model(config, data, 0)
    e0 = model.reference_energies()
    assert 2 * e0[1] + e0[8] == pytest.approx(-470.0)
    assert e0[11] + e0[17] == pytest.approx(-10.0)


def test_a_validation_species_the_training_set_lacks_is_refused_before_training(tmp_path, monkeypatch, capsys):
    other = label_point_charges(random_ionic_structures(2, 8, species=(19, 17), seed=2), {19: 1.0, 17: -1.0})
    ase.io.write(tmp_path / 'valid.extxyz', other)
    assert _run(tmp_path, monkeypatch, _frames(), valid_file='valid.extxyz') == ExitCode.INPUT_FILE_ERROR
    err = capsys.readouterr().err
    assert 'the validation set has species [19] that the training set lacks (it has [11, 17])' in err
    assert not (tmp_path / 'metrics.json').exists()
