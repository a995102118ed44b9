"""Report lines shared by the workchains: the restart workchains' failure line, numbers to meaningful digits."""


class ErrorReportMixin:
    """Give a ``BaseRestartWorkChain`` the one-line failure report that every process handler uses."""

    def report_error_handled(self, calculation, action: str) -> None:
        """Report the failure of ``calculation`` and the ``action`` taken."""
        status = calculation.exit_status
        self.report(f'{calculation.process_label}<{calculation.pk}> finished with exit status {status}')
        self.report(f'Action taken: {action}')


def significant(value, digits: int = 3) -> str:
    """``value`` to ``digits`` significant digits without an exponent for everyday sizes (118.43 -> '118', 0.01234
    -> '0.0123'); 'n/a' for None.
    """
    if value is None:
        return 'n/a'
    return f'{float(f"{float(value):.{digits}g}"):g}'
