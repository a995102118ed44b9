"""The main job of `make demo`: an active-learning campaign for liquid water labelled by CP2K, on this machine.

Run with ``verdi -p les run examples/demo.py`` (``make demo`` does it). It starts from one periodic box of 8 water
molecules (24 atoms, 1 g/cm^3), labels the box and rattled/strained copies with CP2K (GFN1-xTB: the `fast` labelling
protocol, about a second per structure), then loops: train a committee of LES models -> MD at 300 K and 450 K ->
select the frames the committee disagrees on -> label them with CP2K -> retrain, until the stopping rule or the
generation limit ends it. Water is polar, so the latent charges and their Ewald sum carry the dipolar long range.
The final committee, dataset, summary and PNG plots are exported to ``.demo/campaign_<pk>/``.

Why not rocksalt NaCl in an 8-atom cell: its GFN1-xTB forces near the lattice are small differences with a large
many-body part (a rigid-ion model with Born-Mayer pairs explains about a third of their variance), so a 10-minute
campaign cannot show learning there; water's bond forces are learnt within a few generations.
"""

from __future__ import annotations

import logging
import pathlib
import time

from aiida import orm
from aiida.engine import run_get_node

from aiida_les.utils.dicts import recursive_merge
from les_model.data.synthetic import water_like_box
from workchains.active_learning import LesActiveLearningWorkChain
from workchains.active_learning.export import export_campaign

# Bigger than the `fast` protocol (which is sized for tests) so that the potential learns something, small enough
# for about 10 minutes on 2 cores. The host settings are in DEMO_HOSTS, one entry per backbone.
DEMO_OVERRIDES_COMMON = {
    'parameters': {
        'max_generations': 3,
        'label_budget': 40,
        'labels_per_generation': 6,
        'n_initial_copies': 10,
        'n_validation': 4,
        'temperatures': [300.0, 450.0],
        'trust_lower': 0.1,
        'trust_upper': 1.5,
        'accurate_threshold': 0.9,
        'force_error_target': 0.1,
        'patience': 1,
    },
    # lr 0.005 with the trainer's defaults (5-epoch warm-up, E0 refitted after each epoch, EMA errors): on 24 demo-like
    # frames the energy RMSE changes by at most 1.35x from one epoch to the next after epoch 10 (4x before the E0
    # refit, which stops the energy offset that forces do not see from drifting); see benchmarks/learning_curve.py.
    'train': {
        'train': {
            'config': {
                'epochs': 60,
                'batch_size': 4,
                'lr': 0.005,
                'model': {'cutoff': 5.0, 'charge_hidden': 16},
            }
        }
    },
    'md': {'md': {'config': {'steps': 200, 'write_every': 10}}},
}

#: Model settings of each short-range host (``model`` keys of les-train). Water needs more than the test-sized model:
#: a 32-feature, 2-layer network with a 5 Å cutoff (the box is 6.2 Å). The MACE entry (16x0e+16x1o, correlation 2)
#: is a size guess, neither tuned nor timed.
DEMO_HOSTS = {
    'mpnn': {'n_radial': 8, 'n_features': 32, 'n_interactions': 2, 'readout_hidden': 32},
    'mace': {
        'mace': {
            'num_channels': 16,
            'max_L': 1,
            'max_ell': 2,
            'correlation': 2,
            'num_interactions': 2,
            # as many radial functions as the mpnn entry; MACE's own readout and radial network sizes
            'num_radial_basis': 8,
            'MLP_irreps': '16x0e',
            'radial_MLP': [64, 64, 64],
        },
    },
}


def demo_overrides(backbone: str = 'mpnn') -> dict:
    """Return the demo's campaign overrides with the model settings of ``backbone`` (``mpnn`` or ``mace``)."""
    host = {'train': {'train': {'config': {'model': {'backbone': backbone, **DEMO_HOSTS[backbone]}}}}}
    return recursive_merge(DEMO_OVERRIDES_COMMON, host)


DEMO_OVERRIDES = demo_overrides('mpnn')


def demo_builder(
    computer: str = 'localhost', protocol: str = 'fast', overrides: dict | None = None, backbone: str | None = None
):
    """Return the campaign builder on the codes that ``aiida-les setup`` registered on ``computer``.

    :param overrides: campaign overrides; None gives the demo's own (:func:`demo_overrides` of ``backbone``).
    :param backbone: short-range host of the committee, ``mpnn`` or ``mace`` (with mace-torch installed); None: the
        one ``overrides`` names, else ``mpnn``.
    """
    codes = {
        'train': orm.load_code(f'les-train@{computer}'),
        'md': orm.load_code(f'les-md@{computer}'),
        'evaluate': orm.load_code(f'les-eval@{computer}'),
        'label': orm.load_code(f'cp2k@{computer}'),
    }
    structures = {'water': orm.StructureData(ase=water_like_box(8, seed=0))}
    return LesActiveLearningWorkChain.get_builder_from_protocol(
        codes,
        structures,
        protocol=protocol,
        overrides=demo_overrides(backbone or 'mpnn') if overrides is None else overrides,
        backbone=backbone,
    )


class _CampaignReportsOnly(logging.Filter):
    """Show the campaign's own report lines (and any warning); the sub-processes' lines stay in the database."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or '|LesActiveLearningWorkChain|' in record.getMessage()


def main() -> None:
    """Run the campaign in this process (no daemon needed) and export its results."""
    from aiida.orm.utils.log import DBLogHandler

    for handler in logging.getLogger('aiida').handlers:
        if not isinstance(handler, DBLogHandler):  # the database keeps every report line
            handler.addFilter(_CampaignReportsOnly())
    start = time.monotonic()
    results, node = run_get_node(demo_builder())
    elapsed = time.monotonic() - start
    print(f'\nCampaign {node.pk} finished in {elapsed / 60:.1f} min with exit status {node.exit_status}.')
    if not node.is_finished_ok:
        print(f'It failed: {node.exit_message}. See `verdi process report {node.pk}`.')
        raise SystemExit(1)
    summary = results['summary'].get_dict()
    print(f'Stop reason: {summary["stop_reason"]}; {summary["n_generations"]} generation(s).')
    directory = pathlib.Path('.demo') / f'campaign_{node.pk}'
    for what, path in export_campaign(node, directory).items():
        print(f'  {what:>20}: {path}')
    print(f'\nIn the database: `aiida-les campaign show {node.pk}`, `verdi process report {node.pk}`.')
    print(f'More labels from where it stopped: `aiida-les campaign extend {node.pk} --label-budget 20 --run`.')


if __name__ == '__main__':
    main()
