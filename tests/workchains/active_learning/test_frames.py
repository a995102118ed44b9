"""Which labels of a campaign's final dataset its final committee has not seen, told apart by labelling job."""

from aiida_les.provenance import origin as o
from workchains.active_learning.frames import labels_not_trained_on
from workchains.reporting import significant


def _with_jobs(generate_dataset, jobs, seed=0):
    from aiida_les.data.dataset import LesDatasetData

    frames = generate_dataset(len(jobs), seed=seed).get_ase()
    for atoms, job in zip(frames, jobs, strict=True):
        atoms.info[o.LABEL_JOB_UUID] = job
    return LesDatasetData.from_ase(frames)


def test_labels_not_trained_on(generate_dataset):
    trained = _with_jobs(generate_dataset, ['a', 'b'])
    final = _with_jobs(generate_dataset, ['a', 'b', 'c', 'd'])
    assert labels_not_trained_on(final, trained) == ['c', 'd']
    assert labels_not_trained_on(trained, trained) == []


def test_significant_digits():
    assert [significant(v) for v in (118.43, 999.4, 0.012345, 1680.2, None)] == ['118', '999', '0.0123', '1680', 'n/a']
