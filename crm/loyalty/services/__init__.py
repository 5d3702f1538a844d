"""Care-automation writes (R-CARE-3 … R-CARE-5, R-CAMP-4), one module per area; everything public
is importable from here (``from crm.loyalty import services``)."""
from .common import agency_today, can_manage_occasions, can_see_care, can_work
from .daily import daily_due, daily_next_due, daily_run
from .greetings import (PERSONAL_FIELDS, anniversary, calendar_matches, customer_from_unsubscribe_token,
                        greetings_make, greetings_queue, greetings_send, occasion_dates, occasion_preview,
                        occasion_save, pending_greetings, render_text, text_errors, unsubscribe_by_token,
                        unsubscribe_token, unsubscribe_url)
from .referrals import referral_record, referral_reward, referrals_qualify
from .settings import settings_update
from .suggestions import (festival_suggestions_make, festivals_ahead, suggestion_dismiss, suggestion_to_lead,
                          suggestions_make)
from .winback import win_back_identify, win_back_lose, win_back_offer, win_back_record_reason, won_back_sweep

__all__ = [
    "PERSONAL_FIELDS", "agency_today", "anniversary", "calendar_matches", "can_manage_occasions", "can_see_care",
    "can_work", "customer_from_unsubscribe_token", "daily_due", "daily_next_due", "daily_run", "festival_suggestions_make",
    "festivals_ahead", "greetings_make", "greetings_queue", "greetings_send", "occasion_dates", "occasion_preview",
    "occasion_save", "pending_greetings", "referral_record", "referral_reward", "referrals_qualify", "render_text",
    "settings_update", "suggestion_dismiss", "suggestion_to_lead", "suggestions_make", "text_errors",
    "unsubscribe_by_token", "unsubscribe_token", "unsubscribe_url", "win_back_identify", "win_back_lose",
    "win_back_offer", "win_back_record_reason", "won_back_sweep",
]
