//! The rules for every outbound request the host makes for a plugin (its
//! `http.send`, and OAuth's token endpoint): which hosts a declared pattern
//! names, which addresses are inside the operator's network, where an
//! upstream override sends a host, and a client whose resolver refuses
//! internal addresses. A leaf: the HTTP capability and OAuth both use it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use url::Url;

/// Declared host → base URL that replaces `scheme://host[:port]`.
#[derive(Debug, Clone, Default)]
pub struct UpstreamOverrides(BTreeMap<String, Url>);

impl UpstreamOverrides {
    /// Parse `host=url[,host=url...]`, as in `INLET_UPSTREAM_OVERRIDE`.
    pub fn parse_list(list: &str) -> anyhow::Result<Self> {
        let mut overrides = UpstreamOverrides::default();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (host, base) = entry.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("upstream override {entry:?} must look like host=http://127.0.0.1:9001")
            })?;
            overrides.insert(host, base)?;
        }
        Ok(overrides)
    }

    pub fn insert(&mut self, host: &str, base: &str) -> anyhow::Result<()> {
        let base_url = Url::parse(base)
            .map_err(|e| anyhow::anyhow!("upstream override for {host}: {base:?} is not a URL ({e})"))?;
        if !matches!(base_url.scheme(), "http" | "https") {
            anyhow::bail!("upstream override for {host}: {base:?} must be an http:// or https:// URL");
        }
        self.0.insert(host.trim().to_ascii_lowercase(), base_url);
        Ok(())
    }

    pub fn extend(&mut self, other: UpstreamOverrides) {
        self.0.extend(other.0);
    }

    pub(crate) fn rewrite(&self, url: &Url) -> Option<Url> {
        let base = self.0.get(url.host_str()?)?;
        let mut target = base.clone();
        let prefix = base.path().trim_end_matches('/');
        target.set_path(&format!("{prefix}{}", url.path()));
        target.set_query(url.query());
        Some(target)
    }
}

/// The client for plugins' requests and token endpoints. Names must resolve
/// to public addresses, except the hosts that upstream overrides point at
/// (the operator's sanctioned way to reach a local server).
pub fn client(overrides: &UpstreamOverrides) -> reqwest::Client {
    let resolver = PublicAddressesOnly {
        allowed: overrides.0.values().filter_map(|u| u.host_str().map(str::to_string)).collect(),
    };
    reqwest::Client::builder()
        // Redirects are followed by `OutboundHttp::send`, which checks every hop.
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(resolver))
        // A proxy from the environment would resolve names itself, past the check above.
        .no_proxy()
        .user_agent(concat!("inlet/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client's static configuration is valid")
}

/// Whether `url`'s host is one that `patterns` name.
pub(crate) fn url_host_matches(url: &str, patterns: &[String]) -> bool {
    let host = Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    host.is_some_and(|host| patterns.iter().any(|pattern| host_matches(pattern, &host)))
}

/// Whether `host` (lowercase) is what a declared `pattern` names:
/// `api.example.com` exactly, or `*.example.com` for any subdomain.
pub(crate) fn host_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(domain) => host.ends_with(&format!(".{domain}")),
        None => host == pattern,
    }
}

/// Why `url` points inside the operator's network (loopback, private,
/// link-local, unspecified), or `None` for a public address or name. Names
/// that resolve to such addresses are caught when they are resolved
/// ([`PublicAddressesOnly`]).
pub(crate) fn internal_address(url: &Url) -> Option<&'static str> {
    match url.host()? {
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            (name == "localhost" || name.ends_with(".localhost")).then_some("a loopback name")
        }
        url::Host::Ipv4(v4) => internal_ip(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => internal_ip(IpAddr::V6(v6)),
    }
}

/// Why `ip` is inside the operator's network, or `None` for a public address.
fn internal_ip(ip: IpAddr) -> Option<&'static str> {
    // IPv6 forms that carry an IPv4 address: mapped (::ffff:a.b.c.d),
    // compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:a.b.c.d::).
    let ip = match ip {
        IpAddr::V6(v6) if v6.is_loopback() || v6.is_unspecified() => IpAddr::V6(v6),
        IpAddr::V6(v6) => {
            let embedded =
                |hi: u16, lo: u16| IpAddr::V4(std::net::Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
            match v6.segments() {
                [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0, 0, 0, 0, 0, 0, hi, lo] => embedded(hi, lo),
                [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => embedded(hi, lo),
                [0x2002, hi, lo, ..] => embedded(hi, lo),
                _ => IpAddr::V6(v6),
            }
        }
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => Some("a loopback address"),
        // 100.64.0.0/10 is carrier-grade NAT space, private in practice.
        IpAddr::V4(v4) if v4.is_private() || (v4.octets()[0] == 100 && v4.octets()[1] & 0xc0 == 64) => {
            Some("a private address")
        }
        IpAddr::V4(v4) if v4.is_link_local() => Some("a link-local address"),
        // 0.0.0.0/8 ("this network"), 198.18.0.0/15 (benchmarking), 240.0.0.0/4 (reserved), multicast.
        IpAddr::V4(v4)
            if v4.octets()[0] == 0
                || (v4.octets()[0] == 198 && v4.octets()[1] & 0xfe == 18)
                || v4.octets()[0] >= 240
                || v4.is_multicast() =>
        {
            Some("not a routable address")
        }
        IpAddr::V6(v6) if v6.is_loopback() => Some("a loopback address"),
        IpAddr::V6(v6) if v6.is_unique_local() => Some("a private address"),
        IpAddr::V6(v6) if v6.is_unicast_link_local() => Some("a link-local address"),
        IpAddr::V6(v6) if v6.is_unspecified() || v6.is_multicast() => Some("not a routable address"),
        _ => None,
    }
}

/// Resolves names like the system does and keeps only public addresses, so a
/// declared name that points (or is re-pointed, DNS rebinding) at an internal
/// address is refused at connection time, after the URL check.
struct PublicAddressesOnly {
    /// Override targets, which may be internal.
    allowed: Vec<String>,
}

impl reqwest::dns::Resolve for PublicAddressesOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_string();
        let allowed = self.allowed.contains(&name);
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let usable: Vec<SocketAddr> =
                addresses.iter().copied().filter(|a| allowed || internal_ip(a.ip()).is_none()).collect();
            if usable.is_empty() {
                let reason = addresses.first().and_then(|a| internal_ip(a.ip())).unwrap_or("not resolvable");
                return Err(format!(
                    "{name} resolves to {reason}; plugins may reach it only through an operator's upstream override"
                )
                .into());
            }
            Ok(Box::new(usable.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[tokio::test]
    async fn names_that_resolve_to_internal_addresses_are_refused_unless_an_override_points_there() {
        use reqwest::dns::Resolve;
        let name = || reqwest::dns::Name::from_str("localhost").unwrap();
        let refused = PublicAddressesOnly { allowed: vec![] }.resolve(name()).await.err().unwrap();
        assert!(refused.to_string().contains("localhost resolves to a loopback address"), "{refused}");
        let allowed = PublicAddressesOnly { allowed: vec!["localhost".into()] }.resolve(name()).await.unwrap();
        assert!(allowed.into_iter().all(|a| a.ip().is_loopback()));
    }

    #[test]
    fn an_override_rewrites_only_its_host_and_keeps_path_and_query() {
        let overrides = UpstreamOverrides::parse_list("api.monzo.com=http://127.0.0.1:9001/base").unwrap();
        let target = overrides.rewrite(&Url::parse("https://api.monzo.com/transactions?limit=100").unwrap()).unwrap();
        assert_eq!(target.as_str(), "http://127.0.0.1:9001/base/transactions?limit=100");
        assert!(overrides.rewrite(&Url::parse("https://other.example/x").unwrap()).is_none());
        assert!(UpstreamOverrides::parse_list("api.monzo.com").is_err());
        assert!(UpstreamOverrides::parse_list("api.monzo.com=ftp://x").is_err());
    }
}
