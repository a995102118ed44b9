"""Root group of the ``aiida-les`` command."""

import click
from aiida.cmdline.groups import VerdiCommandGroup
from aiida.cmdline.params import options, types


@click.group('aiida-les', cls=VerdiCommandGroup, context_settings={'help_option_names': ['-h', '--help']})
@options.PROFILE(type=types.ProfileParamType(load_profile=True), expose_value=False)
def cmd_root():
    """aiida-les: active-learning campaigns for Latent Ewald Summation potentials."""
