//! Keeping a group's access token fresh: before it expires, and once when the
//! upstream refuses it. Refreshes are single-flight per group across every
//! worker and process (some providers, Monzo among them, spend a refresh
//! token on use: two concurrent refreshes would lock the account out): a
//! mutex per group in this process, a lease row across processes, and the
//! credentials' version to tell whether someone else already refreshed.

use super::oauth::TokenError;
use super::{OAuth, TokenSource};
use crate::capabilities::http::{RefreshError, RefreshFuture, TokenRefresh};
use crate::domain::group_status::GroupStatus;
use crate::domain::pause_reason::PauseReason;
use crate::outbound::url_host_matches;
use crate::store::groups::Credentials;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Refresh this long before the provider's expiry, so no request goes out
/// with a token about to lapse.
pub const REFRESH_MARGIN_MS: i64 = 5 * 60 * 1000;

/// A refresh holds its lease at most this long (it times out well before).
const LEASE_MS: i64 = 60_000;

/// How long a refresh tries to store the credentials it got: inside its
/// lease with the token request before it (up to 30 s) and the last try
/// (up to the store's 8 s wait for a connection), so no other process starts
/// a refresh with the spent token meanwhile.
const STORE_RENEWED_FOR: Duration = Duration::from_secs(10);

/// How long a worker waits for another process's refresh before giving up.
const WAIT_FOR_OTHERS: Duration = Duration::from_secs(45);

/// Whether these credentials should be refreshed before use: renewable, and
/// without an access token (a secret pair not yet exchanged) or with one about
/// to lapse.
pub fn expiring(credentials: &Credentials, now: i64) -> bool {
    credentials.renewable()
        && (credentials.get("access_token").is_none()
            || credentials.expires_at().is_some_and(|at| at - REFRESH_MARGIN_MS <= now))
}

/// What a look at the group's current credentials decides.
enum Look {
    /// No refresh by us: these credentials, or why there are none.
    Settled(Result<Credentials, RefreshError>),
    /// These current credentials need refreshing.
    Refresh(Credentials),
}

impl TokenRefresh for OAuth {
    fn refresh_refused(self: Arc<Self>, group_id: i64, refused: Credentials) -> RefreshFuture {
        Box::pin(async move { self.fresh_credentials(group_id, &refused, true).await })
    }
}

impl OAuth {
    /// The credentials to use instead of `seen`: refreshed when `seen` is
    /// expiring or `refused` by the upstream, unless another worker has
    /// replaced them meanwhile (then theirs). At most one refresh per group
    /// runs at a time, in all processes.
    pub async fn fresh_credentials(
        self: &Arc<Self>,
        group_id: i64,
        seen: &Credentials,
        refused: bool,
    ) -> Result<Credentials, RefreshError> {
        let local = Arc::clone(self.refreshing.lock().unwrap().entry(group_id).or_default());
        let mut one_at_a_time_here = local.lock_owned().await;
        let give_up = Instant::now() + WAIT_FOR_OTHERS;
        loop {
            if let Look::Settled(settled) = self.look(group_id, seen, refused).await? {
                return settled;
            }
            // On its own task, which holds this process's turn until it
            // ends: a caller cancelled now (its call's deadline, a lost
            // lease, shutdown) must not cut a refresh short after the
            // provider rotated the token and before the new one is stored,
            // nor leave the lease held, nor let another refresh start
            // meanwhile with the token this one spent.
            let oauth = Arc::clone(self);
            let seen = seen.clone();
            let leased = tokio::spawn(async move {
                let outcome = oauth.refresh_under_lease(group_id, &seen, refused).await;
                (outcome, one_at_a_time_here)
            });
            match leased.await {
                Ok((Some(outcome), _)) => return outcome,
                Ok((None, turn)) => one_at_a_time_here = turn,
                Err(error) => return Err(RefreshError::Transient(format!("the token refresh stopped: {error}"))),
            }
            if Instant::now() >= give_up {
                return Err(RefreshError::Transient(format!(
                    "another process has been refreshing the token of group {group_id} for too long"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Take the group's refresh lease and refresh, unless someone else holds
    /// the lease (`None`: wait and look again) or finished first.
    async fn refresh_under_lease(
        &self,
        group_id: i64,
        seen: &Credentials,
        refused: bool,
    ) -> Option<Result<Credentials, RefreshError>> {
        let lease = format!("oauth-refresh/{group_id}");
        match self.store.acquire_lease(&lease, &self.owner, LEASE_MS).await {
            Ok(true) => {}
            Ok(false) => return None,
            Err(error) => return Some(Err(error.into())),
        }
        // Look again under the lease: another process may have finished its
        // refresh between our look and our lease.
        let outcome = match self.look(group_id, seen, refused).await {
            Ok(Look::Settled(settled)) => settled,
            Ok(Look::Refresh(current)) => self.refresh(group_id, current).await,
            Err(error) => Err(error),
        };
        if let Err(error) = self.store.release_lease(&lease, &self.owner).await {
            tracing::warn!(group = group_id, error = %format!("{error:#}"), "releasing the refresh lease failed");
        }
        Some(outcome)
    }

    /// Look at the group's current credentials: it needs a reconnect, or
    /// they changed since `seen`, or they are fine, or they need refreshing.
    async fn look(&self, group_id: i64, seen: &Credentials, refused: bool) -> Result<Look, RefreshError> {
        let (current, status) = self.store.group_credentials(group_id).await?;
        if status == GroupStatus::NeedsReconnect {
            return Ok(Look::Settled(Err(RefreshError::NeedsReconnect(format!(
                "group {group_id} needs to be connected again: the provider refused its refresh token"
            )))));
        }
        let replaced = current.version() != seen.version();
        let wanted = refused || expiring(&current, self.store.now());
        if replaced || !wanted {
            return Ok(Look::Settled(Ok(current)));
        }
        if !current.renewable() {
            return Ok(Look::Settled(Err(RefreshError::NeedsReconnect(format!(
                "group {group_id}'s access token was refused and it has no refresh token; connect it again"
            )))));
        }
        Ok(Look::Refresh(current))
    }

    /// Spend the refresh token of `current`, read under the lease the caller
    /// holds. Writes are conditional on its version, so a reconnect that
    /// lands meanwhile wins over this refresh.
    async fn refresh(&self, group_id: i64, current: Credentials) -> Result<Credentials, RefreshError> {
        let group = self.store.group(group_id).await?.ok_or_else(|| {
            RefreshError::Transient(format!("group {group_id} was deleted while its token was refreshed"))
        })?;
        let source = self.token_source(&group.plugin_id).map_err(RefreshError::Transient)?;
        // Secrets go only to a host the group was approved for: a newer plugin
        // file cannot move the token URL and take them along.
        let access = self.store.group_access(&std::iter::once(group_id).collect()).await?;
        if let Some(approved) = access.get(&group_id).and_then(|a| a.approved.as_ref())
            && let Some(url) = source.urls().into_iter().find(|url| !url_host_matches(url, &approved.hosts))
        {
            return Err(RefreshError::Transient(format!(
                "the token URL {url} is not on the hosts group {group_id} was approved for; approve the plugin's \
                 current file with `inlet groups approve {group_id}`"
            )));
        }
        tracing::info!(group = group_id, plugin = %group.plugin_id, "refreshing the access token");
        let replaced_meanwhile = || async { Ok(self.store.group_credentials(group_id).await?.0) };
        let now = self.store.now();
        let renewed = match &source {
            TokenSource::OAuth2(endpoints, client) => {
                let refresh_token = current.get("refresh_token").unwrap_or_default();
                let grant = self.token_endpoint.refresh(endpoints, client, refresh_token).await;
                grant.map(|grant| grant.into_credentials(Some(&current), now))
            }
            TokenSource::SecretExchange(endpoints) => {
                self.token_endpoint.exchange_secret(endpoints, &current, now).await
            }
        };
        match renewed {
            Ok(renewed) => match self.store_renewed(group_id, current.version(), &renewed).await? {
                Some(stored) => Ok(stored),
                None => replaced_meanwhile().await,
            },
            Err(TokenError::InvalidGrant(message)) => {
                let Some(paused) = self.store.mark_group_needs_reconnect(group_id, current.version(), &message).await?
                else {
                    return replaced_meanwhile().await;
                };
                let detail =
                    format!("group {:?} ({}) needs to be connected again: {message}", group.name, group.plugin_id);
                let now = self.store.now();
                for integration in &paused {
                    self.notifier.integration_paused(integration, PauseReason::NeedsReconnect, &detail, now);
                }
                Err(RefreshError::GroupPaused(detail))
            }
            Err(TokenError::Failed(message)) => {
                Err(RefreshError::Transient(format!("refreshing the token: {message}")))
            }
        }
    }

    /// Store renewed credentials before they are used: the provider may have
    /// spent the old refresh token already, so a write that fails (a busy or
    /// unreachable database) is tried again for a while rather than the new
    /// token dropped. The write is conditional on the version read: one that
    /// landed without an answer is found on the next try as a change made
    /// meanwhile (`None`), which it is, and the caller reads it back.
    async fn store_renewed(
        &self,
        group_id: i64,
        seen: i64,
        renewed: &Credentials,
    ) -> anyhow::Result<Option<Credentials>> {
        let deadline = Instant::now() + STORE_RENEWED_FOR;
        let mut pause = Duration::from_millis(100);
        loop {
            match self.store.store_refreshed_credentials(group_id, seen, renewed).await {
                Ok(stored) => return Ok(stored),
                Err(error) if Instant::now() + pause < deadline => {
                    let error = format!("{error:#}");
                    tracing::warn!(group = group_id, %error, "storing the refreshed token failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(error) => {
                    tracing::error!(group = group_id, error = %format!("{error:#}"),
                        "storing the refreshed token failed for good; if the provider spent the old refresh token, \
                         the group must be connected again");
                    return Err(error);
                }
            }
        }
    }
}
