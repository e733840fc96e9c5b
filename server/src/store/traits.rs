//! The store, one trait per aggregate. [`super::SqliteStore`] implements them all; a second
//! engine (PostgreSQL) implements the same traits, and nothing outside `store/` names either.

use app::domain::lifecycle::CampaignState;

use super::*;

/// Approvals given to a campaign waiting at an approval step.
#[async_trait::async_trait]
pub trait ApprovalStore: Send + Sync {
    /// Everyone who created, edited, rescheduled or started campaign `id`.
    async fn campaign_participants(&self, id: i64) -> StoreResult<Vec<String>>;
}

/// The hash-chained audit trail: appended, searched, exported, verified; never changed.
#[async_trait::async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends one event on its own (for events that change nothing else, like a failed login).
    async fn append_audit(&self, audit: AuditRecord) -> StoreResult<()>;

    /// One page of matching events, newest first, and the total count.
    async fn search_audit(
        &self,
        q: &AuditQuery,
        limit: u32,
        offset: u64,
    ) -> StoreResult<(Vec<AuditRow>, i64)>;

    /// Matching events in chain order, for exports; at most `limit`.
    async fn export_audit(&self, q: &AuditQuery, limit: u32) -> StoreResult<Vec<AuditRow>>;

    /// Events with id > `after`, in chain order, `limit` at a time (for verification).
    async fn audit_chain_batch(&self, after: i64, limit: u32) -> StoreResult<Vec<AuditRow>>;

    async fn audit_head(&self) -> StoreResult<ChainHead>;

    /// Failed sign-ins since `since_ts` for a user name (case-insensitive) or a source address.
    async fn count_login_failures(
        &self,
        username: Option<&str>,
        source_ip: Option<&str>,
        since: Timestamp,
    ) -> StoreResult<i64>;
}

/// Environments: the record of targets, pools and backends each campaign plans against.
#[async_trait::async_trait]
pub trait EnvironmentStore: Send + Sync {
    async fn list_environments(&self) -> StoreResult<Vec<EnvironmentRow>>;

    async fn environment_names(&self) -> StoreResult<Vec<String>>;

    async fn find_environment(&self, id: i64) -> StoreResult<Option<EnvironmentRow>>;

    async fn find_environment_by_name(&self, name: &str) -> StoreResult<Option<EnvironmentRow>>;

    async fn create_environment(
        &self,
        name: &str,
        spec: &str,
        audit: AuditRecord,
    ) -> StoreResult<EnvironmentRow>;

    async fn update_environment(&self, id: i64, spec: &str, audit: AuditRecord) -> StoreResult<()>;

    /// Deletes an environment no campaign refers to.
    async fn delete_environment(&self, id: i64, name: &str, audit: AuditRecord) -> StoreResult<()>;
}

/// Campaigns: drafts, the desired state people set, the engine's progress, step runs and the event log.
#[async_trait::async_trait]
pub trait CampaignStore: Send + Sync {
    async fn find_campaign(&self, id: i64) -> StoreResult<Option<CampaignRow>>;

    async fn list_campaigns(
        &self,
        q: &CampaignQuery,
        limit: u32,
        offset: u64,
    ) -> StoreResult<(Vec<CampaignRow>, i64)>;

    /// Ids of campaigns the engine must be working on (after a restart, all of them resume).
    async fn active_campaign_ids(&self) -> StoreResult<Vec<i64>>;

    /// The campaign that holds a pool now (active, or with its rollback paused), if any.
    async fn campaign_holding_pool(
        &self,
        environment: &str,
        pool: &str,
    ) -> StoreResult<Option<CampaignRow>>;

    async fn create_campaign(
        &self,
        f: DraftFields<'_>,
        created_by: &str,
        audit: AuditRecord,
    ) -> StoreResult<CampaignRow>;

    /// Replaces a draft's spec; `Conflict` if it is no longer a draft.
    async fn update_draft(
        &self,
        id: i64,
        f: DraftFields<'_>,
        audit: AuditRecord,
    ) -> StoreResult<()>;

    async fn delete_draft(&self, id: i64, audit: AuditRecord) -> StoreResult<()>;

    /// Applies `patch` if the campaign's status is one of `expect` (compare-and-set, so a
    /// command and the engine never overwrite each other), with its audit and stream events.
    async fn patch_campaign(
        &self,
        id: i64,
        expect: &[CampaignState],
        patch: CampaignPatch,
        audit: Option<AuditRecord>,
        event: Option<(&str, serde_json::Value)>,
    ) -> StoreResult<()>;

    /// Creates or updates the record of one step's execution.
    async fn record_step_run(&self, run: StepRun<'_>) -> StoreResult<()>;

    async fn step_runs(&self, campaign_id: i64) -> StoreResult<Vec<StepRunRow>>;

    async fn append_event(
        &self,
        campaign_id: i64,
        kind: &str,
        data: &serde_json::Value,
    ) -> StoreResult<i64>;

    /// The newest event of `kind` of a campaign, if any.
    async fn latest_event(
        &self,
        campaign_id: i64,
        kind: &str,
    ) -> StoreResult<Option<CampaignEventRow>>;

    /// Events of a campaign after `after_id`, oldest first (SSE catch-up with Last-Event-ID).
    async fn campaign_events_since(
        &self,
        campaign_id: i64,
        after_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<CampaignEventRow>>;
}

/// Communications: windows, notices, alerts and their deliveries (the outbox), subscribers and the public feed.
#[async_trait::async_trait]
pub trait OutboxStore: Send + Sync {
    /// Queues an alert on its own (one that no campaign change carries: a reconciler that
    /// failed, a breach in the watch after success).
    async fn queue_alert(&self, campaign_id: i64, alert: NewAlert) -> StoreResult<()>;

    /// Records a sign-up (or renews an unconfirmed or unsubscribed one) and queues its
    /// confirmation e-mail in the same transaction. `Conflict` if the address is already confirmed.
    async fn subscribe(
        &self,
        email: &str,
        webhook_url: Option<&str>,
        components: &[String],
    ) -> StoreResult<SubscriberRow>;

    /// [`subscribe`](OutboxStore::subscribe) with the webhook body format (`json` or `slack`).
    async fn subscribe_with_format(
        &self,
        email: &str,
        webhook_url: Option<&str>,
        webhook_format: &str,
        components: &[String],
    ) -> StoreResult<SubscriberRow>;

    /// Confirms the subscriber holding `token`, and gives them the reminders still to come of
    /// announced windows. `None` if no subscriber has the token.
    async fn confirm_subscriber(&self, token: &str) -> StoreResult<Option<SubscriberRow>>;

    /// Stops everything to the subscriber holding `token`, including deliveries not sent yet.
    async fn unsubscribe(&self, token: &str) -> StoreResult<Option<SubscriberRow>>;

    async fn find_subscriber_by_token(&self, token: &str) -> StoreResult<Option<SubscriberRow>>;

    async fn list_subscribers(&self) -> StoreResult<Vec<SubscriberRow>>;

    /// Published windows, most recent start first.
    async fn published_windows(&self, limit: u32) -> StoreResult<Vec<WindowRow>>;

    async fn published_window(&self, campaign_id: i64) -> StoreResult<Option<WindowRow>>;

    /// Campaign notices that are due (published), newest first, for the Atom feed.
    async fn feed_entries(&self, limit: u32) -> StoreResult<Vec<FeedEntryRow>>;

    /// Running campaigns whose published window has ended before `now`.
    async fn overrun_windows(&self, now: Timestamp) -> StoreResult<Vec<WindowRow>>;

    /// Extends a window that ran over to `new_end` and announces it, in one transaction;
    /// `false` if it was no longer in progress or already extended past `old_end`.
    async fn extend_window(
        &self,
        campaign_id: i64,
        old_end: Timestamp,
        new_end: Timestamp,
        notice: NewNotice,
        components: Vec<String>,
        quiet: bool,
    ) -> StoreResult<bool>;

    /// At start-up: deliveries a previous process left in `sending` died with it (one server
    /// per database file). Their open attempt is logged as interrupted and they are due again.
    async fn reclaim_interrupted_deliveries(&self) -> StoreResult<u64>;

    /// Claims the next due delivery: marks it `sending` with a lease and opens its attempt,
    /// all committed before anything is sent. Deliveries whose notice was cancelled or whose
    /// subscriber left are settled on the way.
    async fn claim_delivery(&self, lease_secs: i64) -> StoreResult<Option<DeliveryJob>>;

    /// Records how an attempt ended and what the delivery does next.
    async fn finish_delivery(&self, job: &DeliveryJob, outcome: DeliveryOutcome)
    -> StoreResult<()>;

    /// Every delivery whose notice was due by `at` (confirmations and operator alerts
    /// included), oldest first, at most `limit`: the whole outbox as it stands.
    async fn deliveries_due_by(&self, at: Timestamp, limit: u32) -> StoreResult<Vec<DeliveryRow>>;

    /// Every delivery of a campaign's notices, in order: the schedule and the delivery log.
    async fn campaign_deliveries(&self, campaign_id: i64) -> StoreResult<Vec<DeliveryRow>>;

    /// A campaign's notices (with or without recipients): kind, when due, status.
    async fn campaign_notices(&self, campaign_id: i64) -> StoreResult<Vec<NoticeRow>>;
}

/// What each router is expected to hold, and drift from it.
#[async_trait::async_trait]
pub trait DriftStore: Send + Sync {
    /// Replaces a pool's expectations with `members` (what the router read back after a change).
    async fn set_expectations(
        &self,
        environment: &str,
        backend: &str,
        pool: &str,
        campaign_id: Option<i64>,
        members: &[Expected],
    ) -> StoreResult<()>;

    /// Notes that `campaign_id` is about to change the pool (cleared when the change is
    /// recorded by [`set_expectations`](DriftStore::set_expectations)).
    async fn mark_router_change(
        &self,
        environment: &str,
        backend: &str,
        pool: &str,
        campaign_id: i64,
    ) -> StoreResult<()>;

    /// The campaign whose change to the pool was begun and not recorded, if any.
    async fn pending_router_change(
        &self,
        environment: &str,
        backend: &str,
        pool: &str,
    ) -> StoreResult<Option<i64>>;

    async fn expectations(
        &self,
        environment: &str,
        backend: &str,
        pool: &str,
    ) -> StoreResult<Vec<ExpectationRow>>;

    /// Every pool with expectations: (environment, backend, pool).
    async fn watched_pools(&self) -> StoreResult<Vec<(String, String, String)>>;

    /// Forgets a pool's expectations (an operator accepted the router's state), audited.
    async fn accept_router_state(
        &self,
        environment: &str,
        pool: &str,
        audit: AuditRecord,
    ) -> StoreResult<u64>;
}

/// Pruning of old rows (never the audit trail).
#[async_trait::async_trait]
pub trait RetentionStore: Send + Sync {
    /// Deletes what is older than `keep` as of `now`.
    async fn prune(
        &self,
        keep: Retention,
        now: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<Pruned>;
}

/// Health samples: one row per target per sampling round.
#[async_trait::async_trait]
pub trait SampleStore: Send + Sync {
    /// Stores one round (every target at the same instant) in one transaction; returns the id
    /// of the last row, which live views use to tell rounds apart.
    async fn insert_samples(
        &self,
        campaign_id: i64,
        at: chrono::DateTime<chrono::Utc>,
        secs: f64,
        samples: &[NewSample],
    ) -> StoreResult<i64>;

    /// A campaign's samples from `since` on (oldest first), at most `limit` rows (the newest).
    async fn samples_since(
        &self,
        campaign_id: i64,
        since: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> StoreResult<Vec<SampleRow>>;

    /// The newest sample's id and time for a campaign, if any.
    async fn latest_sample(&self, campaign_id: i64) -> StoreResult<Option<(i64, Timestamp)>>;

    /// Campaigns to sample now: the active ones, those that ended less than `grace_secs` ago
    /// (so the chart shows traffic settling), and succeeded ones of the last `watch_secs` (the
    /// caller keeps those whose own watch still lasts).
    async fn campaigns_to_sample(&self, grace_secs: i64, watch_secs: i64) -> StoreResult<Vec<i64>>;
}

/// API tokens and their policy.
#[async_trait::async_trait]
pub trait TokenStore: Send + Sync {
    async fn create_token(
        &self,
        user_id: i64,
        name: &str,
        prefix: &str,
        token_hash: &str,
        expires_at: Option<Timestamp>,
        audit: AuditRecord,
    ) -> StoreResult<TokenRow>;

    async fn list_tokens(&self, user_id: i64) -> StoreResult<Vec<TokenRow>>;

    /// Every user's tokens with their owners (admins), newest first.
    async fn list_all_tokens(&self) -> StoreResult<Vec<TokenWithOwnerName>>;

    async fn find_token(&self, token_id: i64) -> StoreResult<Option<TokenRow>>;

    /// Revokes a token of `user_id` (`None`: whoever owns it, for admins); `NotFound` when it
    /// is not theirs, does not exist or is already revoked.
    async fn revoke_token(
        &self,
        user_id: Option<i64>,
        token_id: i64,
        audit: AuditRecord,
    ) -> StoreResult<()>;

    /// The active token with this hash and its owner.
    async fn find_active_token(&self, token_hash: &str) -> StoreResult<Option<TokenWithOwner>>;

    /// Marks a token used; at most once a minute so reads stay reads.
    async fn touch_token(&self, token_id: i64) -> StoreResult<()>;

    /// An admin-set policy value, if one was set.
    async fn setting(&self, key: &str) -> StoreResult<Option<String>>;

    async fn set_setting(&self, key: &str, value: &str, audit: AuditRecord) -> StoreResult<()>;

    /// The default (and longest) lifetime of new tokens in days; 0 means they never expire.
    async fn token_expiry_days(&self) -> StoreResult<u32>;
}

/// Users, their roles, passwords and sign-in failures.
#[async_trait::async_trait]
pub trait UserStore: Send + Sync {
    async fn user_count(&self) -> StoreResult<i64>;

    async fn find_user_by_name(&self, username: &str) -> StoreResult<Option<UserRow>>;

    async fn find_user(&self, id: i64) -> StoreResult<Option<UserRow>>;

    async fn list_users(&self) -> StoreResult<Vec<UserRow>>;

    async fn create_user(&self, new: NewUser<'_>, audit: AuditRecord) -> StoreResult<UserRow>;

    async fn set_user_role(&self, id: i64, role: &str, audit: AuditRecord) -> StoreResult<()>;

    async fn set_user_disabled(
        &self,
        id: i64,
        disabled: bool,
        audit: AuditRecord,
    ) -> StoreResult<()>;

    /// Replaces the password hash; every existing session of the user stops working (the
    /// caller may carry its own over with the returned epoch). An admin's reset
    /// (`must_change_password`) also revokes every API token of the user.
    async fn set_password(
        &self,
        id: i64,
        password_hash: &str,
        must_change_password: bool,
        audit: AuditRecord,
    ) -> StoreResult<i64>;

    /// Records a successful sign-in and its audit event together.
    async fn record_login(&self, id: i64, audit: AuditRecord) -> StoreResult<()>;
}
/// Sign-in sessions (tower-sessions records, stored as JSON with a Unix expiry).
#[async_trait::async_trait]
pub trait SessionRecordStore: Send + Sync {
    /// Stores a new session; `false` if the id is taken (nothing is overwritten).
    async fn insert_new_session(&self, id: &str, data: &str, expiry: i64) -> StoreResult<bool>;

    /// Stores a session, replacing the one with the same id.
    async fn save_session(&self, id: &str, data: &str, expiry: i64) -> StoreResult<()>;

    /// The session's data and expiry, if it exists and expires after `now`.
    async fn load_session(&self, id: &str, now: i64) -> StoreResult<Option<(String, i64)>>;

    async fn delete_session(&self, id: &str) -> StoreResult<()>;

    /// Deletes every session that expired before `now`; how many.
    async fn delete_expired_sessions(&self, now: i64) -> StoreResult<u64>;
}
