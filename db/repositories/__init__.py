"""What bot/, trainer/ and the scheduler call to read and write the database.

Every function takes a Session as its first argument and keyword-only arguments after it, and never
commits: the caller owns the transaction, one per operation (`with db.transaction() as session:`).
Bad input raises db.errors.InvalidInputError (a models.errors.RnnbotError).
"""

from db.repositories._common import SamplingParams
from db.repositories.generations import add_generation, candidate_generations, get_generation, reject_generation
from db.repositories.posts import (
                                   begin_post_send,
                                   claim_post_slot,
                                   fail_claimed_post,
                                   get_post,
                                   last_sent_at,
                                   latest_post_slot,
                                   mark_post_failed,
                                   mark_post_sent,
                                   posted_texts,
                                   recent_posts,
                                   record_post_outcome,
                                   record_unposted_slot,
                                   unsent_posts,
                                   was_posted,
)
from db.repositories.prompts import Served, add_completion, add_prompt, prune_older_than, record_exchange, user_prompts
from db.repositories.registry import (
                                   activate_model,
                                   active_model,
                                   deactivate_model,
                                   get_model,
                                   list_models,
                                   register_model,
)
from db.repositories.service_settings import delete_service_setting, get_service_setting, set_service_setting
from db.repositories.stats import table_counts
from db.repositories.training_runs import (
                                   finish_training_run,
                                   latest_training_run,
                                   record_evaluation,
                                   resume_training_run,
                                   run_name,
                                   start_training_run,
                                   training_samples,
)
from db.repositories.users import (
                                   KEEP,
                                   forget_user,
                                   get_chat,
                                   get_user,
                                   sync_admins,
                                   update_user_settings,
                                   upsert_chat,
                                   upsert_user,
)

__all__ = [
    "KEEP", "SamplingParams",
    "upsert_user", "get_user", "update_user_settings", "sync_admins", "upsert_chat", "get_chat", "forget_user",
    "add_prompt", "add_completion", "user_prompts", "prune_older_than", "record_exchange", "Served",
    "add_generation", "get_generation", "candidate_generations", "reject_generation",
    "claim_post_slot", "record_unposted_slot", "get_post", "mark_post_sent", "mark_post_failed", "unsent_posts",
    "recent_posts", "was_posted", "begin_post_send", "fail_claimed_post", "latest_post_slot", "record_post_outcome",
    "posted_texts", "last_sent_at",
    "register_model", "activate_model", "deactivate_model", "get_model", "active_model", "list_models",
    "start_training_run", "latest_training_run", "resume_training_run", "record_evaluation",
    "finish_training_run", "training_samples", "run_name",
    "get_service_setting", "set_service_setting", "delete_service_setting",
    "table_counts",
]
