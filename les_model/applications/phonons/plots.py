"""PNG plots of phonon band structures and densities of states (:mod:`les_model.applications.phonons`), in THz."""

from __future__ import annotations

from pathlib import Path

__all__ = ['plot_band_structure', 'plot_dos']


def _pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (imported only when plotting)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: str | Path) -> Path:
    """Lay out, write ``fig`` as a 120 dpi PNG at ``path`` and close it."""
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_band_structure(bands: dict, path: str | Path, dos: dict | None = None, title: str = '') -> Path:
    """Write a PNG of a band structure from :func:`.compute.band_structure` (with the DOS when given)."""
    plt = _pyplot()
    ncols = 2 if dos is not None else 1
    fig, axes = plt.subplots(1, ncols, figsize=(7 if dos else 5.5, 4), sharey=True, squeeze=False,
                             gridspec_kw={'width_ratios': [3, 1][:ncols]})  # fmt: skip
    ax = axes[0, 0]
    ticks: list[float] = []
    names: list[str] = []
    labels = iter(bands['labels'])
    for k, (dist, freq) in enumerate(zip(bands['distances'], bands['frequencies'], strict=True)):
        ax.plot(dist, freq, color='tab:blue', lw=1)
        if k == 0:
            ticks.append(dist[0])
            names.append(next(labels, ''))
        elif not bands['path_connections'][k - 1]:
            names[-1] = f'{names[-1]}|{next(labels, "")}'
        ticks.append(dist[-1])
        names.append(next(labels, ''))
    ax.set_xticks(ticks, names)
    for x in ticks:
        ax.axvline(x, color='grey', lw=0.5)
    ax.axhline(0.0, color='black', lw=0.5)
    ax.set_xlim(bands['distances'][0][0], bands['distances'][-1][-1])
    ax.set_ylabel('Frequency (THz)')
    if dos is not None:
        axes[0, 1].plot(dos['dos'], dos['frequencies'], color='tab:blue', lw=1)
        axes[0, 1].set_xlabel('DOS (1/THz)')
    if title:
        fig.suptitle(title)
    return _save(plt, fig, path)


def plot_dos(dos: dict, path: str | Path, title: str = '') -> Path:
    """Write a PNG of a total DOS from :func:`les_model.applications.phonons.compute.density_of_states`."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(dos['frequencies'], dos['dos'], color='tab:blue', lw=1)
    ax.set_xlabel('Frequency (THz)')
    ax.set_ylabel('DOS (1/THz)')
    if title:
        ax.set_title(title)
    return _save(plt, fig, path)
