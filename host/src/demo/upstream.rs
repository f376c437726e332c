//! What every fake upstream shares: a loopback server, an OAuth provider
//! ([`FakeOAuth`]) whose access token it checks, a log of the requests it
//! received, canned answers a test injects (a 429 with `retry-after`, a 500),
//! and a latency. Each fake (Monzo, Spotify, GitHub...) is a [`FakeApi`]:
//! the service's data and how it answers an authorized request.

use super::fake_oauth::FakeOAuth;
use anyhow::Result;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Form, OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

/// A service as its fake serves it.
pub trait FakeApi: Send + 'static {
    /// Where the provider's OAuth token endpoint is (`/oauth2/token`), if the
    /// fake serves one; it answers through the fake's [`FakeOAuth`].
    const TOKEN_PATH: Option<&'static str> = None;

    /// Its OAuth provider, which also decides which access token is accepted.
    fn provider(&self) -> FakeOAuth {
        FakeOAuth::new("demo-access-token")
    }

    /// The answer to a request with a token the provider does not accept.
    fn unauthorized(&self, request: &RecordedRequest) -> Response;

    /// The answer to a request that carries the current access token.
    fn answer(&mut self, request: &RecordedRequest) -> Response;
}

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: Method,
    /// With its leading `/`, without the query.
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Whether it carried the access token the provider accepts now.
    pub authorized: bool,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl RecordedRequest {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

struct CannedResponse {
    status: StatusCode,
    body: Value,
    headers: Vec<(String, String)>,
}

struct Shared<A> {
    oauth: FakeOAuth,
    api: Mutex<A>,
    requests: Mutex<Vec<RecordedRequest>>,
    canned: Mutex<VecDeque<CannedResponse>>,
    latency: Mutex<std::time::Duration>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().expect("fake upstream lock")
}

/// A fake upstream on loopback, stopped when dropped.
pub struct FakeUpstream<A> {
    addr: SocketAddr,
    shared: Arc<Shared<A>>,
    server: tokio::task::JoinHandle<()>,
}

impl<A: FakeApi> FakeUpstream<A> {
    pub async fn start(api: A) -> Result<FakeUpstream<A>> {
        let shared = Arc::new(Shared {
            oauth: api.provider(),
            api: Mutex::new(api),
            requests: Mutex::default(),
            canned: Mutex::default(),
            latency: Mutex::default(),
        });
        let mut app = axum::Router::new();
        if let Some(path) = A::TOKEN_PATH {
            app = app.route(path, axum::routing::post(token::<A>));
        }
        let app = app.fallback(handle::<A>).with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeUpstream { addr, shared, server })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The access token the fake accepts now.
    pub fn access_token(&self) -> String {
        self.shared.oauth.access_token().unwrap_or_default()
    }

    /// Its OAuth provider: approve authorizations, expire and revoke tokens.
    pub fn oauth(&self) -> &FakeOAuth {
        &self.shared.oauth
    }

    /// Read or change the served data (add a play, delete a row, star a repository).
    pub fn update<R>(&self, change: impl FnOnce(&mut A) -> R) -> R {
        change(&mut locked(&self.shared.api))
    }

    /// Answer the next request with this status, headers and body instead
    /// (a 429 with `retry-after`, a 302 with `location`, a 500...).
    pub fn respond_next(&self, status: u16, headers: &[(&str, &str)], body: Value) {
        let status = StatusCode::from_u16(status).expect("a valid status code");
        let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        locked(&self.shared.canned).push_back(CannedResponse { status, body, headers });
    }

    /// Make every API answer (not the token endpoint) take this long.
    pub fn set_latency(&self, latency: std::time::Duration) {
        *locked(&self.shared.latency) = latency;
    }

    /// Requests received so far, and forget them.
    pub fn take_requests(&self) -> Vec<RecordedRequest> {
        std::mem::take(&mut *locked(&self.shared.requests))
    }
}

impl<A> Drop for FakeUpstream<A> {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn handle<A: FakeApi>(
    State(shared): State<Arc<Shared<A>>>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    let authorized = shared.oauth.accepts(headers.get("authorization").and_then(|v| v.to_str().ok()));
    let request = RecordedRequest {
        method,
        path: uri.path().to_string(),
        query,
        headers,
        body,
        authorized,
        at: std::time::Instant::now(),
    };
    locked(&shared.requests).push(request.clone());
    let latency = *locked(&shared.latency);
    tokio::time::sleep(latency).await;
    if let Some(canned) = locked(&shared.canned).pop_front() {
        let mut response = (canned.status, Json(canned.body)).into_response();
        for (name, value) in canned.headers {
            let name = axum::http::HeaderName::from_bytes(name.as_bytes()).expect("a valid header name");
            response.headers_mut().insert(name, value.parse().expect("a valid header value"));
        }
        return response;
    }
    let mut api = locked(&shared.api);
    if authorized { api.answer(&request) } else { api.unauthorized(&request) }
}

async fn token<A: FakeApi>(
    State(shared): State<Arc<Shared<A>>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    locked(&shared.requests).push(RecordedRequest {
        method: Method::POST,
        path: A::TOKEN_PATH.unwrap_or_default().to_string(),
        query: Vec::new(),
        headers: HeaderMap::new(),
        body: Bytes::new(),
        authorized: false,
        at: std::time::Instant::now(),
    });
    // A provider takes a while: concurrent refreshes would overlap here.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (status, body) = shared.oauth.token_response(&form);
    (status, Json(body)).into_response()
}

/// A JSON answer with a status, for fakes' error bodies.
pub fn json_answer(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}
