"""Report lines shared by the restart workchains (``les.train.base``, ``les.md.base``, ``les.cp2k.base``)."""


class ErrorReportMixin:
    """Give a ``BaseRestartWorkChain`` the one-line failure report that every process handler uses."""

    def report_error_handled(self, calculation, action: str) -> None:
        """Report the failure of ``calculation`` and the ``action`` taken."""
        status = calculation.exit_status
        self.report(f'{calculation.process_label}<{calculation.pk}> finished with exit status {status}')
        self.report(f'Action taken: {action}')
