//! The operator's console: `GET /` (a redirect), `GET /updates` and the
//! addresses of its other pages (see [`PAGES`]), which all serve the same
//! document, and its scripts and style sheet under `/ui/`. The files are
//! embedded in the binary, so there is no front-end server and no build step;
//! they use no third-party code.
//!
//! The page itself is public: it holds no data and no secret. It asks the
//! operator for the admin token and keeps it in the tab's `sessionStorage`,
//! sending it as `Authorization: Bearer` on each `/api` call, because the
//! admin API authenticates by bearer token, not by cookie. A token that a
//! browser never sends by itself cannot be used by another site's forms or
//! scripts (no CSRF), and it is forgotten when the tab closes. What protects
//! it inside the page is the content security policy below: only this
//! host's own script may run, so an integration's name (which users choose)
//! can never become code. The script writes API data with `textContent`,
//! never as HTML.

use super::ApiState;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

const PAGE: &str = include_str!("ui/console.html");
const STYLE: &str = include_str!("ui/console.css");

/// The console's scripts, in the order the page loads them (they share one
/// global scope: `base.js` declares what the others use, `console.js`, last,
/// the table of pages that names their functions).
const SCRIPTS: [(&str, &str); 11] = [
    ("base.js", include_str!("ui/base.js")),
    ("updates.js", include_str!("ui/updates.js")),
    ("history.js", include_str!("ui/history.js")),
    ("schedule.js", include_str!("ui/schedule.js")),
    ("plugins.js", include_str!("ui/plugins.js")),
    ("failed-jobs.js", include_str!("ui/failed-jobs.js")),
    ("tokens.js", include_str!("ui/tokens.js")),
    ("records.js", include_str!("ui/records.js")),
    ("wizard.js", include_str!("ui/wizard.js")),
    ("connections.js", include_str!("ui/connections.js")),
    ("console.js", include_str!("ui/console.js")),
];

/// No inline script or style, nothing from another origin, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Headers every response of these routes carries.
const SECURITY_HEADERS: [(HeaderName, &str); 4] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::REFERRER_POLICY, "no-referrer"),
    // The files change with the binary: a browser must ask again rather than
    // run an upgraded host's page with yesterday's script.
    (header::CACHE_CONTROL, "no-cache"),
];

/// The console's pages besides Updates, each at its own address (the script
/// shows the one its address names; links and the back button move between
/// them without a reload). `console.js` lists the same pages.
const PAGES: [&str; 6] =
    ["/plugins", "/connections", "/integrations/new", "/jobs/failed", "/tokens", "/integrations/{id}/records"];

/// The page's routes. They need no state; the type matches the API router's
/// so that it can be merged before `with_state`.
pub fn router() -> Router<ApiState> {
    routes()
}

fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let page = || async { asset("text/html; charset=utf-8", PAGE) };
    let mut router = Router::new().route("/", get(|| async { Redirect::to("/updates") })).route("/updates", get(page));
    for path in PAGES {
        router = router.route(path, get(page));
    }
    for (name, script) in SCRIPTS {
        router = router
            .route(&format!("/ui/{name}"), get(move || async move { asset("text/javascript; charset=utf-8", script) }));
    }
    router
        .route("/ui/console.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
        .layer(axum::middleware::map_response(security_headers))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Serves the page's routes on a loopback port and fetches `path`:
    /// the status code and the lower-cased headers.
    async fn get(path: &str) -> (u16, Vec<(String, String)>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, routes::<()>()).await });
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        let response = String::from_utf8(response).unwrap();
        let head = response.split("\r\n\r\n").next().unwrap();
        let mut lines = head.lines();
        let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
        let headers = lines
            .filter_map(|line| line.split_once(": "))
            .map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()))
            .collect();
        (status, headers)
    }

    #[tokio::test]
    async fn serves_the_page_its_files_and_a_redirect_with_security_headers() {
        for (path, status, content_type) in [
            ("/", 303, None),
            ("/updates", 200, Some("text/html; charset=utf-8")),
            ("/plugins", 200, Some("text/html; charset=utf-8")),
            ("/integrations/new", 200, Some("text/html; charset=utf-8")),
            ("/jobs/failed", 200, Some("text/html; charset=utf-8")),
            ("/integrations/12/records", 200, Some("text/html; charset=utf-8")),
            ("/ui/base.js", 200, Some("text/javascript; charset=utf-8")),
            ("/ui/console.js", 200, Some("text/javascript; charset=utf-8")),
            ("/ui/console.css", 200, Some("text/css; charset=utf-8")),
        ] {
            let (got, headers) = get(path).await;
            let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
            assert_eq!(got, status, "{path}");
            if content_type.is_some() {
                assert_eq!(header("content-type"), content_type, "{path}");
            } else {
                assert_eq!(header("location"), Some("/updates"));
            }
            assert_eq!(header("content-security-policy"), Some(CONTENT_SECURITY_POLICY), "{path}");
            assert_eq!(header("x-content-type-options"), Some("nosniff"), "{path}");
            assert_eq!(header("referrer-policy"), Some("no-referrer"), "{path}");
            assert_eq!(header("cache-control"), Some("no-cache"), "{path}");
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        // The content security policy would block them.
        assert!(!PAGE.contains("<script>") && !PAGE.contains("<style") && !PAGE.contains(" style="));
        assert!(!PAGE.contains(" onclick=") && !PAGE.contains(" onsubmit=") && !PAGE.contains("javascript:"));
        // Every script, in the order they are served in (see SCRIPTS).
        let tags: Vec<String> =
            SCRIPTS.iter().map(|(name, _)| format!(r#"<script src="/ui/{name}" defer></script>"#)).collect();
        let positions: Vec<usize> = tags.iter().map(|tag| PAGE.find(tag.as_str()).expect(tag)).collect();
        assert!(positions.is_sorted(), "{tags:?}");
        assert_eq!(PAGE.matches("<script").count(), SCRIPTS.len());
        assert!(PAGE.contains(r#"<link rel="stylesheet" href="/ui/console.css">"#));
    }

    #[test]
    fn the_script_never_writes_html() {
        // Names come from users: API data is written as text only.
        for (name, script) in SCRIPTS {
            for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
                assert!(!script.contains(sink), "{name} uses {sink}");
            }
        }
    }
}
