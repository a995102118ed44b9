"""Labelling programs and helpers that run inside a job: CP2K input/output, custodian runner, ASE labeller.

Nothing in this sub-package imports aiida: these modules run on the compute node inside the job.
"""
