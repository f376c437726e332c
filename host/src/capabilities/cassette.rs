//! Recording and replaying a plugin's HTTP exchanges at the `http`
//! capability, for `inlet plugin test`: a recorded exchange is what the
//! plugin asked for (the URL it addressed, its own headers and body) and what
//! came back after the host's own handling (redirects followed, credentials
//! redacted), so a replay exercises the same capability code minus the
//! network, whatever language the plugin is written in.

use super::http::{Method, Response};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::Mutex;

/// What replaces every secret in a cassette.
pub const REDACTED: &str = "[redacted]";

/// A cassette as stored: the runs of one instance type, recorded at
/// `recorded_at` (the clock a replay is pinned to).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CassetteFile {
    /// Milliseconds since the epoch.
    pub recorded_at: i64,
    pub instance_type: String,
    /// The integration's config, secret fields redacted.
    pub config: serde_json::Value,
    /// Run 1 is the first (backfill) run; run 2 the incremental run after it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<Vec<Exchange>>,
    /// For a plugin that is pushed its data: the delivery its webhook receives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
}

/// A push delivery as the sender makes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    #[serde(default)]
    pub headers: Vec<Header>,
    pub body: Body,
}

impl Delivery {
    pub fn body_bytes(&self) -> Vec<u8> {
        self.body.bytes()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exchange {
    pub request: RecordedRequest,
    pub response: RecordedResponse,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedResponse {
    pub status: u16,
    #[serde(default)]
    pub headers: Vec<Header>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
}

/// A header, kept as `name: value` to stay readable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Header(pub String, pub String);

impl From<Header> for String {
    fn from(Header(name, value): Header) -> String {
        format!("{name}: {value}")
    }
}

impl TryFrom<String> for Header {
    type Error = String;
    fn try_from(text: String) -> Result<Header, String> {
        let (name, value) = text.split_once(':').ok_or_else(|| format!("{text:?} is not a `name: value` header"))?;
        Ok(Header(name.trim().to_string(), value.trim().to_string()))
    }
}

/// Response headers a recording leaves out: sessions, and what changes
/// with every answer without saying anything about the data.
const UNRECORDED_HEADERS: &[&str] = &["set-cookie", "date", "content-length", "transfer-encoding", "connection"];

/// A body kept readable: JSON as it came (byte for byte), other UTF-8 as
/// text, anything else in base64.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Body {
    Json(Box<RawValue>),
    Text(String),
    Base64(String),
}

impl Body {
    fn of(bytes: &[u8]) -> Option<Body> {
        use base64::Engine;
        if bytes.is_empty() {
            return None;
        }
        let Ok(text) = std::str::from_utf8(bytes) else {
            return Some(Body::Base64(base64::engine::general_purpose::STANDARD.encode(bytes)));
        };
        match serde_json::from_str::<Box<RawValue>>(text) {
            Ok(raw) if raw.get().len() == text.len() => Some(Body::Json(raw)),
            _ => Some(Body::Text(text.to_string())),
        }
    }

    fn bytes(&self) -> Vec<u8> {
        use base64::Engine;
        match self {
            Body::Json(raw) => raw.get().as_bytes().to_vec(),
            Body::Text(text) => text.as_bytes().to_vec(),
            Body::Base64(encoded) => base64::engine::general_purpose::STANDARD.decode(encoded).unwrap_or_default(),
        }
    }
}

/// A failure a replay puts in place of the first response of a run, to see
/// what the plugin makes of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub status: u16,
    /// Sent as `Retry-After`: the host makes such a 429 `rate-limited`
    /// itself; one without reaches the plugin, which must say so.
    pub retry_after_seconds: Option<u32>,
}

/// What one replayed run asked for that the cassette could not answer.
#[derive(Debug, Default)]
pub struct RunTape {
    pub answered: usize,
    /// `GET https://...` for each request the cassette has no answer to.
    pub missing: Vec<String>,
    /// Recorded exchanges the run did not ask for.
    pub unused: usize,
}

/// The cassette a host's HTTP capability records to or replays from.
pub struct Cassette {
    secrets: Mutex<Vec<String>>,
    tape: Mutex<Tape>,
}

enum Tape {
    Recording(Vec<Vec<Exchange>>),
    Replaying { runs: Vec<Vec<Exchange>>, run: usize, used: Vec<bool>, fault: Option<Fault>, tape: RunTape },
}

impl Cassette {
    /// Record into an empty cassette; `secrets` (credentials, secret config
    /// values) are replaced with [`REDACTED`] wherever they appear.
    pub fn recording(secrets: Vec<String>) -> Cassette {
        Cassette { secrets: Mutex::new(secret_forms(secrets)), tape: Mutex::new(Tape::Recording(Vec::new())) }
    }

    pub fn replaying(runs: Vec<Vec<Exchange>>, secrets: Vec<String>) -> Cassette {
        let tape = Tape::Replaying { runs, run: 0, used: Vec::new(), fault: None, tape: RunTape::default() };
        Cassette { secrets: Mutex::new(secret_forms(secrets)), tape: Mutex::new(tape) }
    }

    /// Redact these too from now on (secret config values, known once the
    /// plugin's schema is).
    pub fn add_secrets(&self, more: Vec<String>) {
        let mut secrets = self.secrets.lock().expect("cassette lock");
        let all = secrets.drain(..).chain(more).collect();
        *secrets = secret_forms(all);
    }

    /// Turn a recording into a replay of what it recorded.
    pub fn replay_recorded(&self) {
        let mut tape = self.tape.lock().expect("cassette lock");
        if let Tape::Recording(runs) = &mut *tape {
            let runs = std::mem::take(runs);
            *tape = Tape::Replaying { runs, run: 0, used: Vec::new(), fault: None, tape: RunTape::default() };
        }
    }

    pub fn is_replaying(&self) -> bool {
        matches!(*self.tape.lock().expect("cassette lock"), Tape::Replaying { .. })
    }

    /// Start run `run` (0-based): a recording opens a new run; a replay
    /// answers from that run's exchanges, the first one replaced by `fault`.
    pub fn begin_run(&self, run: usize, fault: Option<Fault>) {
        match &mut *self.tape.lock().expect("cassette lock") {
            Tape::Recording(runs) => {
                runs.resize_with(run + 1, Vec::new);
                runs[run].clear();
            }
            Tape::Replaying { runs, run: current, used, fault: current_fault, tape } => {
                *current = run;
                *used = vec![false; runs.get(run).map_or(0, Vec::len)];
                *current_fault = fault;
                *tape = RunTape::default();
            }
        }
    }

    /// How the run went: requests answered (or recorded), and for a replay
    /// what the cassette could not answer.
    pub fn end_run(&self) -> RunTape {
        match &mut *self.tape.lock().expect("cassette lock") {
            Tape::Recording(runs) => RunTape { answered: runs.last().map_or(0, Vec::len), ..RunTape::default() },
            Tape::Replaying { used, tape, .. } => {
                let mut ended = std::mem::take(tape);
                ended.unused = used.iter().filter(|u| !**u).count();
                ended
            }
        }
    }

    /// The recorded runs, to be written to the cassette file.
    pub fn recorded_runs(&self) -> Vec<Vec<Exchange>> {
        match &*self.tape.lock().expect("cassette lock") {
            Tape::Recording(runs) => runs.clone(),
            Tape::Replaying { runs, .. } => runs.clone(),
        }
    }

    /// The recorded answer to a request: the first unused exchange of the run
    /// with the same method, URL and body. `None` when there is none (noted
    /// in the run's tape).
    pub fn replay(&self, method: Method, url: &str, body: Option<&[u8]>) -> Option<Response> {
        let (url, body) = (self.redact(url), body.map(|b| self.redact_bytes(b)).unwrap_or_default());
        let mut guard = self.tape.lock().expect("cassette lock");
        let Tape::Replaying { runs, run, used, fault, tape } = &mut *guard else { return None };
        let exchanges = runs.get(*run).map_or(&[][..], Vec::as_slice);
        let found = exchanges.iter().enumerate().position(|(i, exchange)| {
            !used[i]
                && exchange.request.method == method.as_str()
                && exchange.request.url == url
                && exchange.request.body.as_ref().map(Body::bytes).unwrap_or_default() == body
        });
        let Some(index) = found else {
            tape.missing.push(format!("{} {url}", method.as_str()));
            return None;
        };
        used[index] = true;
        tape.answered += 1;
        if let Some(fault) = fault.take() {
            let mut headers = vec![("content-type".to_string(), "text/plain".to_string())];
            if let Some(seconds) = fault.retry_after_seconds {
                headers.push(("retry-after".into(), seconds.to_string()));
            }
            let body = format!("{} injected by inlet plugin test", fault.status).into_bytes();
            return Some(Response { status: fault.status, headers, body });
        }
        let recorded = &exchanges[index].response;
        Some(Response {
            status: recorded.status,
            headers: recorded.headers.iter().map(|Header(n, v)| (n.clone(), v.clone())).collect(),
            body: recorded.body.as_ref().map(Body::bytes).unwrap_or_default(),
        })
    }

    /// Keep an exchange of the current run, secrets redacted.
    pub fn record(
        &self,
        method: Method,
        url: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
        response: &Response,
    ) {
        let redact_headers = |headers: &[(String, String)]| -> Vec<Header> {
            headers
                .iter()
                .filter(|(name, _)| !UNRECORDED_HEADERS.iter().any(|h| name.eq_ignore_ascii_case(h)))
                .map(|(name, value)| Header(name.clone(), self.redact(value)))
                .collect()
        };
        let exchange = Exchange {
            request: RecordedRequest {
                method: method.as_str().to_string(),
                url: self.redact(url),
                // A plugin that reads its credentials itself may set this one.
                headers: redact_headers(headers)
                    .into_iter()
                    .map(|Header(name, value)| match name.eq_ignore_ascii_case("authorization") {
                        true => Header(name, REDACTED.to_string()),
                        false => Header(name, value),
                    })
                    .collect(),
                body: body.and_then(|b| Body::of(&self.redact_bytes(b))),
            },
            response: RecordedResponse {
                status: response.status,
                headers: redact_headers(&response.headers),
                body: Body::of(&self.redact_bytes(&response.body)),
            },
        };
        if let Tape::Recording(runs) = &mut *self.tape.lock().expect("cassette lock") {
            match runs.last_mut() {
                Some(run) => run.push(exchange),
                None => runs.push(vec![exchange]),
            }
        }
    }

    pub fn redact(&self, text: &str) -> String {
        self.secrets
            .lock()
            .expect("cassette lock")
            .iter()
            .fold(text.to_string(), |text, secret| text.replace(secret, REDACTED))
    }

    /// Byte by byte: a body need not be UTF-8 (a Latin-1 form, protobuf).
    fn redact_bytes(&self, bytes: &[u8]) -> Vec<u8> {
        let secrets = self.secrets.lock().expect("cassette lock");
        secrets.iter().fold(bytes.to_vec(), |bytes, secret| redact_bytes(&bytes, secret.as_bytes()))
    }
}

/// `bytes` with each `secret` in them replaced with [`REDACTED`].
pub fn redact_bytes(bytes: &[u8], secret: &[u8]) -> Vec<u8> {
    if secret.is_empty() || !bytes.windows(secret.len()).any(|w| w == secret) {
        return bytes.to_vec();
    }
    let mut redacted = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while let Some(at) = rest.windows(secret.len()).position(|w| w == secret) {
        redacted.extend_from_slice(&rest[..at]);
        redacted.extend_from_slice(REDACTED.as_bytes());
        rest = &rest[at + secret.len()..];
    }
    redacted.extend_from_slice(rest);
    redacted
}

/// Each secret as it may appear: as is, percent-encoded (in a query or a
/// form), escaped in a JSON string. Empty secrets would match everywhere;
/// longer ones go first so a secret that contains another is replaced whole.
fn secret_forms(secrets: Vec<String>) -> Vec<String> {
    let mut secrets: Vec<String> = secrets
        .into_iter()
        .filter(|s| !s.is_empty())
        .flat_map(|secret| {
            let encoded: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
            let escaped = serde_json::to_string(&secret).unwrap_or_default();
            let escaped = escaped.trim_matches('"').to_string();
            [secret, encoded, escaped]
        })
        .collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    secrets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> Response {
        Response { status, headers: vec![("set-cookie".into(), "s=1".into())], body: body.as_bytes().to_vec() }
    }

    #[test]
    fn a_recording_replays_byte_for_byte_with_secrets_redacted() {
        let recording = Cassette::recording(vec!["sk_live_1".into(), String::new()]);
        recording.begin_run(0, None);
        let body = r#"{"b": 1,  "a": "sk_live_1"}"#;
        recording.record(Method::Get, "https://api.example.com/x?key=sk_live_1", &[], None, &response(200, body));
        let runs = recording.recorded_runs();
        let stored = serde_json::to_string(&runs).unwrap();
        assert!(!stored.contains("sk_live_1") && !stored.contains("set-cookie"), "{stored}");

        let replay = Cassette::replaying(serde_json::from_str(&stored).unwrap(), vec!["sk_live_1".into()]);
        replay.begin_run(0, None);
        let answer = replay.replay(Method::Get, "https://api.example.com/x?key=sk_live_1", None).unwrap();
        assert_eq!(String::from_utf8(answer.body).unwrap(), r#"{"b": 1,  "a": "[redacted]"}"#);
        // Each exchange answers once; a request it has no answer to is named.
        assert!(replay.replay(Method::Get, "https://api.example.com/x?key=sk_live_1", None).is_none());
        assert!(replay.replay(Method::Post, "https://api.example.com/y", Some(b"{}")).is_none());
        let tape = replay.end_run();
        assert_eq!(tape.answered, 1);
        assert_eq!(tape.missing, ["GET https://api.example.com/x?key=[redacted]", "POST https://api.example.com/y"]);
    }

    /// Bodies that are not UTF-8 (a Latin-1 form, protobuf) are redacted
    /// too: they were stored as they were.
    #[test]
    fn secrets_are_redacted_from_bodies_that_are_not_text() {
        let recording = Cassette::recording(vec!["sk_live_1".into()]);
        recording.begin_run(0, None);
        let answer = Response { status: 200, headers: vec![], body: b"\xfe sk_live_1 \xff".to_vec() };
        let form: &[u8] = b"\xffpassword=sk_live_1";
        recording.record(Method::Post, "https://api.example.com/login", &[], Some(form), &answer);
        let exchange = &recording.recorded_runs()[0][0];
        assert_eq!(exchange.request.body.as_ref().unwrap().bytes(), b"\xffpassword=[redacted]");
        assert_eq!(exchange.response.body.as_ref().unwrap().bytes(), b"\xfe [redacted] \xff");
    }

    #[test]
    fn a_fault_replaces_the_first_answer_of_a_run() {
        let recording = Cassette::recording(vec![]);
        recording.begin_run(0, None);
        recording.record(Method::Get, "https://api.example.com/a", &[], None, &response(200, "[]"));
        let replay = Cassette::replaying(recording.recorded_runs(), vec![]);
        replay.begin_run(0, Some(Fault { status: 429, retry_after_seconds: Some(30) }));
        let answer = replay.replay(Method::Get, "https://api.example.com/a", None).unwrap();
        assert_eq!(answer.status, 429);
        assert!(answer.headers.contains(&("retry-after".into(), "30".into())));
        assert_eq!(replay.end_run().unused, 0);
    }
}
