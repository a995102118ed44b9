"""Reporting on active-learning campaigns: per-generation tables, exports and PNG plots."""

from aiida_les.campaign.export import export_campaign
from aiida_les.campaign.history import campaign_history, find_campaigns

__all__ = ('campaign_history', 'export_campaign', 'find_campaigns')
