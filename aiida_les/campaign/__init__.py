"""Reporting on active-learning campaigns: per-generation tables, exports, PNG plots, and what a campaign leaves."""

from aiida_les.campaign.export import export_campaign
from aiida_les.campaign.history import campaign_history, find_campaigns
from aiida_les.campaign.restart import CampaignState, campaign_state

__all__ = ('CampaignState', 'campaign_history', 'campaign_state', 'export_campaign', 'find_campaigns')
