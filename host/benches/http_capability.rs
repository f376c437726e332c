//! What the HTTP capability adds to an outbound request: the same small GET
//! to a loopback server, once straight through reqwest and once through
//! `OutboundHttp::send` (allowlist check, upstream override, credential
//! injection, response copy). Run with
//! `cargo bench --bench http_capability [-- requests]`.

use inlet::capabilities::http::{OutboundHttp, UpstreamOverrides, client};
use inlet::runtime::wit::inlet::plugin::http::{Auth, Method, Request};
use inlet::store::groups::Credentials;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let requests: usize =
        std::env::args().skip(1).find(|a| !a.starts_with("--")).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let app = axum::Router::new().route("/accounts", axum::routing::get(|| async { r#"{"accounts":[]}"# }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let overrides = UpstreamOverrides::parse_list(&format!("api.example.com={base}"))?;
    let direct = client(&overrides);
    let direct_url = format!("{base}/accounts");
    let direct_p = measure(requests, || {
        let (direct, url) = (direct.clone(), direct_url.clone());
        async move {
            let response = direct.get(url).bearer_auth("token").send().await.unwrap();
            assert!(response.status().is_success());
            response.bytes().await.unwrap();
        }
    })
    .await;

    let outbound = OutboundHttp {
        client: client(&overrides),
        allowed_hosts: vec!["api.example.com".into()],
        overrides: Arc::new(overrides),
        credentials: Credentials::new(BTreeMap::from([("access_token".into(), "token".into())])),
        timeout: Duration::from_secs(30),
        max_response_bytes: 16 * 1024 * 1024,
        tokens: None,
        rate_limit: None,
        deadline: tokio::time::Instant::now() + Duration::from_secs(3600),
        group_needs_reconnect: false,
    };
    let request = Request {
        method: Method::Get,
        url: "https://api.example.com/accounts".into(),
        headers: vec![],
        body: None,
        auth: Auth::Bearer,
        timeout_ms: None,
    };
    // `send` takes `&mut self`; an uncontended mutex costs nanoseconds.
    let outbound = Arc::new(tokio::sync::Mutex::new(outbound));
    let capability_p = measure(requests, || {
        let (outbound, request) = (Arc::clone(&outbound), request.clone());
        async move {
            let response = outbound.lock().await.send(request).await.unwrap();
            assert_eq!(response.status, 200);
        }
    })
    .await;

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

/// p50 and p99 of `requests` runs of `request`, after 1,000 to warm up.
async fn measure<F, Fut>(requests: usize, mut request: F) -> (Duration, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut samples = Vec::with_capacity(requests);
    for n in 0..requests + 1_000 {
        let started = Instant::now();
        request().await;
        if n >= 1_000 {
            samples.push(started.elapsed());
        }
    }
    percentiles(samples)
}

fn percentiles(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
