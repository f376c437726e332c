//! Providers' quotas, as plugins declare them ("4 requests a day per account
//! and endpoint"), kept by the HTTP capability: each request whose URL
//! matches a quota is counted in the database before it is sent, and one over
//! the quota is refused as `rate-limited` without reaching the provider.

use super::http::Error;
use crate::domain::manifest::Quota;
use crate::store::Store;
use crate::store::quota_spends::QuotaSpend;
use std::sync::Arc;
use url::Url;

/// A quota's `url`, parsed: the host and the path's segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaPattern {
    host: String,
    segments: Vec<PatternSegment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PatternSegment {
    Literal(String),
    /// `*`: any one segment, counted apart.
    Each,
    /// A final `**`: whatever follows.
    Rest,
}

impl QuotaPattern {
    /// Parse a quota's `url`: `https://`, no query, port or fragment; `**`
    /// only at the end.
    pub fn parse(pattern: &str) -> Result<QuotaPattern, String> {
        let url = Url::parse(pattern).map_err(|e| format!("{pattern:?} is not a URL: {e}"))?;
        if url.scheme() != "https" || url.port().is_some() || url.query().is_some() || url.fragment().is_some() {
            return Err(format!("{pattern:?} must be an https:// URL without port, query or fragment"));
        }
        let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
        let raw: Vec<&str> = url.path().trim_start_matches('/').split('/').collect();
        let mut segments = Vec::new();
        for (i, segment) in raw.iter().enumerate() {
            segments.push(match *segment {
                "*" => PatternSegment::Each,
                "**" if i == raw.len() - 1 => PatternSegment::Rest,
                s if s.contains('*') => {
                    return Err(format!("{pattern:?}: `*` must be a whole path segment, `**` the last one"));
                }
                s => PatternSegment::Literal(s.to_string()),
            });
        }
        Ok(QuotaPattern { host, segments })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// What the `*` segments matched in `url`, if the pattern matches it.
    fn matches(&self, url: &Url) -> Option<Vec<String>> {
        if url.host_str()?.to_ascii_lowercase() != self.host {
            return None;
        }
        let path: Vec<&str> = url.path().trim_start_matches('/').split('/').collect();
        let mut each = Vec::new();
        for (i, pattern) in self.segments.iter().enumerate() {
            match (pattern, path.get(i)) {
                (PatternSegment::Rest, _) => return Some(each),
                (PatternSegment::Each, Some(segment)) if !segment.is_empty() => each.push(segment.to_string()),
                (PatternSegment::Literal(literal), Some(segment)) if literal == segment => {}
                _ => return None,
            }
        }
        (path.len() == self.segments.len()).then_some(each)
    }
}

/// A group's quotas, as a fetch spends them.
pub struct GroupQuotas {
    pub store: Store,
    pub group_id: i64,
    /// The plugin's quotas, parsed when it loaded.
    pub quotas: Arc<[(Quota, QuotaPattern)]>,
}

impl GroupQuotas {
    /// Count a request to `url` against every quota it falls under; refused
    /// as `rate-limited` (with the seconds until one is free) when one is
    /// spent. A request counted by one quota and refused by another stays
    /// counted: the provider sees fewer requests than allowed, never more.
    pub async fn spend(&self, url: &Url) -> Result<(), Error> {
        for (quota, pattern) in self.quotas.iter() {
            let Some(each) = pattern.matches(url) else { continue };
            let key = std::iter::once(quota.id.as_str()).chain(each.iter().map(String::as_str)).collect::<Vec<_>>();
            let key = key.join("/");
            let spend = self.store.spend_quota(self.group_id, &key, quota.requests, quota.period.millis()).await;
            match spend {
                Ok(QuotaSpend::Spent) => {}
                Ok(QuotaSpend::Exhausted { until }) => {
                    let seconds = ((until - self.store.now()).max(1000) + 999) / 1000;
                    return Err(Error::RateLimited(u32::try_from(seconds).unwrap_or(u32::MAX)));
                }
                Err(error) => {
                    return Err(Error::Transport(format!("the quota {:?} could not be counted: {error:#}", quota.id)));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matched(pattern: &str, url: &str) -> Option<Vec<String>> {
        QuotaPattern::parse(pattern).unwrap().matches(&Url::parse(url).unwrap())
    }

    #[test]
    fn patterns_match_whole_segments_and_count_each_star_apart() {
        let balances = "https://bank.test/api/v2/accounts/*/balances/";
        assert_eq!(matched(balances, "https://bank.test/api/v2/accounts/acc-1/balances/"), Some(vec!["acc-1".into()]));
        assert_eq!(
            matched(balances, "https://BANK.test/api/v2/accounts/acc-2/balances/?x=1"),
            Some(vec!["acc-2".into()])
        );
        assert_eq!(matched(balances, "https://bank.test/api/v2/accounts/acc-1/details/"), None);
        assert_eq!(matched(balances, "https://bank.test/api/v2/accounts//balances/"), None, "an empty segment");
        assert_eq!(matched(balances, "https://bank.test/api/v2/accounts/a/b/balances/"), None, "* is one segment");
        assert_eq!(matched(balances, "https://other.test/api/v2/accounts/acc-1/balances/"), None);
        let sheets = "https://sheets.googleapis.com/**";
        assert_eq!(matched(sheets, "https://sheets.googleapis.com/v4/spreadsheets/abc"), Some(vec![]));
        assert_eq!(matched(sheets, "https://sheets.googleapis.com/"), Some(vec![]));
        for bad in ["http://bank.test/x", "https://bank.test/x?y=1", "https://bank.test/**/x", "https://bank.test/a*"] {
            assert!(QuotaPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
