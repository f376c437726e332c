//! What the HTTP capability adds to an outbound request: the same small GET
//! to a loopback server, once straight through reqwest and once through
//! `OutboundHttp::send` (allowlist check, upstream override, credential
//! injection, response copy). Run with
//! `cargo bench --bench http_capability [-- requests]`.

use inlet::capabilities::http::OutboundHttp;
use inlet::capabilities::http::{Auth, Method, Request};
use inlet::outbound::{UpstreamOverrides, client};
use inlet::store::groups::Credentials;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

// The client side on one thread and the server on another, so every request
// of either kind crosses between the same two threads.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let requests: usize =
        std::env::args().skip(1).find(|a| !a.starts_with("--")).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let base = format!("http://{}", listener.local_addr()?);
    listener.set_nonblocking(true)?;
    std::thread::spawn(move || {
        let server = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        server.block_on(async move {
            let app = axum::Router::new().route("/accounts", axum::routing::get(|| async { r#"{"accounts":[]}"# }));
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            axum::serve(listener, app).await.expect("serving");
        })
    });

    let overrides = UpstreamOverrides::parse_list(&format!("api.example.com={base}"))?;
    let direct = client(&overrides);
    let direct_url = format!("{base}/accounts");
    let mut outbound = OutboundHttp {
        client: client(&overrides),
        declared_auth: Auth::Bearer,
        allowed_hosts: vec!["api.example.com".into()],
        unapproved: None,
        overrides: Arc::new(overrides),
        credentials: Credentials::new(BTreeMap::from([("access_token".into(), "token".into())])),
        timeout: Duration::from_secs(30),
        max_response_bytes: 16 * 1024 * 1024,
        tokens: None,
        rate_limit: None,
        quotas: None,
        deadline: tokio::time::Instant::now() + Duration::from_secs(3600),
        clock: Arc::new(inlet::clock::SystemClock),
        exhausted_until: None,
        group_needs_reconnect: false,
        refreshed_after_401: false,
        cassette: None,
    };
    let request = Request {
        method: Method::Get,
        url: "https://api.example.com/accounts".into(),
        headers: vec![],
        body: None,
        auth: Auth::Declared,
        timeout_ms: None,
    };
    // Alternate the two, so both see the same machine (this VM's timing drifts).
    let (mut direct_samples, mut capability_samples) = (Vec::new(), Vec::new());
    for n in 0..requests + 1_000 {
        let started = Instant::now();
        let response = direct.get(&direct_url).bearer_auth("token").send().await?;
        anyhow::ensure!(response.status().is_success());
        response.bytes().await?;
        let direct_took = started.elapsed();
        let started = Instant::now();
        let response = outbound.send(request.clone()).await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        anyhow::ensure!(response.status == 200);
        if n >= 1_000 {
            // The first 1,000 warm up connections and allocators.
            direct_samples.push(direct_took);
            capability_samples.push(started.elapsed());
        }
    }
    let (direct_p, capability_p) = (percentiles(direct_samples), percentiles(capability_samples));

    let report = |name: &str, (p50, p99): (Duration, Duration)| {
        println!("{name:<28} p50 {:>6.1} µs  p99 {:>6.1} µs", micros(p50), micros(p99));
    };
    report("direct reqwest", direct_p);
    report("through the capability", capability_p);
    println!(
        "added by the capability:     p50 {:.1} µs, p99 {:.1} µs ({requests} requests each)",
        micros(capability_p.0) - micros(direct_p.0),
        micros(capability_p.1) - micros(direct_p.1)
    );
    Ok(())
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
