//! Webhook ingress end to end: the Apple Health plugin receiving what the
//! Health Auto Export app posts, verified by its shared-secret header, stored
//! once however often it is replayed, and processed into records by the
//! webhook queue.

mod support;

use serde_json::{Value, json};
use support::{Inlet, bundled_plugin, eventually};

const TOKEN: &str = "webhook-test-admin-token";
const SECRET: &str = "s3cret-shared-with-the-app";

struct Setup {
    _serve: tokio::process::Child,
    base: String,
    client: reqwest::Client,
    group: i64,
    workouts: i64,
    metrics: i64,
    inlet: Inlet,
}

async fn setup(config: &str) -> Setup {
    let inlet = Inlet::with_plugins(&[bundled_plugin("apple-health")]).env("INLET_ADMIN_TOKEN", TOKEN).config(config);
    let (serve, base) = inlet.spawn_listening(&["serve", "--listen", "127.0.0.1:0"]).await;
    let client = reqwest::Client::new();
    let missing = admin_post(&client, &base, "/api/groups", json!({"plugin": "apple-health", "name": "phone"})).await;
    assert_eq!(missing.status(), 422, "a header-verified plugin needs the secret");
    let (group, [workouts, metrics]) = add_group(&client, &base, "phone", SECRET).await;
    Setup { _serve: serve, base, client, group, workouts, metrics, inlet }
}

async fn admin_post(client: &reqwest::Client, base: &str, path: &str, body: Value) -> reqwest::Response {
    client.post(format!("{base}{path}")).bearer_auth(TOKEN).json(&body).send().await.unwrap()
}

/// An Apple Health group that takes deliveries with `secret`: its id, and
/// its workouts and metrics integrations'.
async fn add_group(client: &reqwest::Client, base: &str, name: &str, secret: &str) -> (i64, [i64; 2]) {
    let body = json!({"plugin": "apple-health", "name": name, "webhook_secret": secret});
    let group: Value = admin_post(client, base, "/api/groups", body).await.json().await.unwrap();
    assert_eq!(group["webhook_path"], format!("/webhooks/apple-health/{}", group["id"]));
    let group = group["id"].as_i64().unwrap();
    let mut ids = [0; 2];
    for (id, instance_type) in ids.iter_mut().zip(["workouts", "metrics"]) {
        let body = json!({"plugin": "apple-health", "instance_type": instance_type, "group_id": group});
        let created: Value = admin_post(client, base, "/api/integrations", body).await.json().await.unwrap();
        assert_eq!(created["sync_settings"]["schedule_summary"], "manual only", "{created}");
        *id = created["id"].as_i64().unwrap();
    }
    (group, ids)
}

impl Setup {
    async fn deliver(&self, header: Option<&str>, body: &[u8]) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}/webhooks/apple-health/{}", self.base, self.group))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(secret) = header {
            request = request.header("x-inlet-secret", secret);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    async fn events(&self, integration: i64) -> Vec<Value> {
        let url = format!("{}/api/events?integration={integration}&limit=1000", self.base);
        let page: Value = self.client.get(url).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
        page["events"].as_array().unwrap().clone()
    }

    async fn stored_batches(&self) -> i64 {
        let store = self.inlet.store().await;
        sqlx::query_scalar("SELECT COUNT(*) FROM raw_batches").fetch_one(store.pool()).await.unwrap()
    }
}

fn fixture() -> Vec<u8> {
    std::fs::read(support::root().join("tests/fixtures/health-auto-export.json")).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn health_auto_export_deliveries_are_verified_stored_once_and_processed() {
    let setup = setup("").await;
    let payload = fixture();

    // Wrong or missing secret: 401, nothing stored.
    for header in [None, Some("guess"), Some("")] {
        let (status, body) = setup.deliver(header, &payload).await;
        assert_eq!(status, 401, "{header:?}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized");
        assert_eq!(body["error"]["message"], "the delivery was not verified");
    }
    assert_eq!(setup.stored_batches().await, 0, "a refused delivery stores nothing");

    let (status, first) = setup.deliver(Some(SECRET), &payload).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["duplicate"], false);
    assert_eq!(first["integrations"], json!([setup.workouts, setup.metrics]));
    let batches = setup.stored_batches().await;
    assert!(batches >= 2, "{batches}");

    // The app retries: the same delivery again is accepted, not stored again.
    let (status, replay) = setup.deliver(Some(SECRET), &payload).await;
    assert_eq!(status, 202, "{replay}");
    assert_eq!((replay["duplicate"].as_bool(), &replay["delivery_id"]), (Some(true), &first["delivery_id"]));
    assert_eq!(setup.stored_batches().await, batches);

    let workouts = eventually(30, "both workouts as records", || async {
        let events = setup.events(setup.workouts).await;
        (events.len() == 2).then_some(events)
    })
    .await;
    let run = &workouts[0];
    assert_eq!(run["kind"], "workout");
    assert_eq!(run["external_id"], "8F3C2B1A-5D4E-4F6A-9B7C-0D1E2F3A4B5C");
    assert_eq!(run["unit"], "s");
    let metrics = eventually(30, "every metric point as a record", || async {
        let events = setup.events(setup.metrics).await;
        (events.len() == 9).then_some(events)
    })
    .await;
    let heart: Vec<&Value> =
        metrics.iter().filter(|e| e["external_id"].as_str().unwrap().starts_with("heart_rate/")).collect();
    assert_eq!(heart.len(), 2);
    assert!(heart[0]["value"].as_f64().is_some(), "heart rate keeps Avg as its value: {}", heart[0]);

    // A later export overlapping the first: the same workout and points
    // (re-sent), one new point. Records are updated in place, not duplicated.
    let mut overlapping: Value = serde_json::from_slice(&payload).unwrap();
    let steps = &mut overlapping["data"]["metrics"][0]["data"];
    let mut extra = steps[0].clone();
    extra["date"] = json!("2030-01-01 08:00:00 +0000");
    steps.as_array_mut().unwrap().push(extra);
    let (status, later) = setup.deliver(Some(SECRET), overlapping.to_string().as_bytes()).await;
    assert_eq!((status, later["duplicate"].as_bool()), (202, Some(false)), "{later}");
    eventually(30, "the new point, and nothing twice", || async {
        let metrics = setup.events(setup.metrics).await;
        (metrics.len() == 10).then_some(())
    })
    .await;
    assert_eq!(setup.events(setup.workouts).await.len(), 2, "the re-sent workouts dedupe on id");

    // The webhook runs are in the history, with trigger webhook.
    let url = format!("{}/api/integrations/{}/sync-history", setup.base, setup.workouts);
    let history: Value = setup.client.get(url).bearer_auth(TOKEN).send().await.unwrap().json().await.unwrap();
    let runs = history["runs"].as_array().unwrap();
    assert!(runs.iter().all(|r| r["trigger"] == "webhook" && r["status"] == "success"), "{history}");
    // The first run created the workouts and their series blocks; the run of
    // the overlapping export found them all unchanged.
    let (first_run, last_run) = (&runs[runs.len() - 1]["records"], &runs[0]["records"]);
    assert!(first_run["created"].as_i64().unwrap() >= 2, "{history}");
    assert_eq!((last_run["created"].as_i64(), &last_run["unchanged"]), (Some(0), &first_run["created"]), "{history}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_deliveries_are_refused_with_a_reason() {
    let setup = setup("[limits]\nwebhook_mb = 1\n").await;
    let (status, body) = setup.deliver(Some(SECRET), b"{\"data\": ").await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("delivery-refused")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("not JSON"), "{body}");
    let unknown_group = setup
        .client
        .post(format!("{}/webhooks/apple-health/{}", setup.base, setup.group + 1))
        .header("x-inlet-secret", SECRET)
        .body(fixture())
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_group.status(), 401, "an unknown group looks like a wrong secret");
    // A group with no integration to take the delivery: 409, nothing stored,
    // so the app's next attempt (once one exists) is not a "duplicate".
    let tablet: Value = setup
        .client
        .post(format!("{}/api/groups", setup.base))
        .bearer_auth(TOKEN)
        .json(&json!({"plugin": "apple-health", "name": "tablet", "webhook_secret": SECRET}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let unrouted = setup
        .client
        .post(format!("{}/webhooks/apple-health/{}", setup.base, tablet["id"]))
        .header("x-inlet-secret", SECRET)
        .body(fixture())
        .send()
        .await
        .unwrap();
    assert_eq!(unrouted.status(), 409);
    let body: Value = unrouted.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no-integration", "{body}");
    let unknown_plugin =
        setup.client.post(format!("{}/webhooks/monzo/{}", setup.base, setup.group)).body("{}").send().await.unwrap();
    assert_eq!(unknown_plugin.status(), 404);
    // Last: the server stops reading an oversized body and closes that
    // connection, which a pooled client would otherwise reuse.
    let big = vec![b' '; 2 * 1024 * 1024];
    let (status, body) = setup.deliver(Some(SECRET), &big).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(setup.stored_batches().await, 0);
}

/// A plugin that verifies signatures itself (through the host's
/// `signature.verify`): a delivery signed with another secret is refused
/// with nothing stored; a well-signed one becomes a record.
#[tokio::test(flavor = "multi_thread")]
async fn signed_deliveries_are_verified_by_the_plugin_before_anything_is_stored() {
    use hmac::{Hmac, Mac};
    let inlet = Inlet::with_plugins(&[support::test_plugin("misbehave")]).env("INLET_ADMIN_TOKEN", TOKEN);
    let (_serve, base) = inlet.spawn_listening(&["serve", "--listen", "127.0.0.1:0"]).await;
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| client.post(format!("{base}{path}")).bearer_auth(TOKEN).json(&body).send();
    let group: Value = post("/api/groups", json!({"plugin": "misbehave", "name": "signed", "webhook_secret": SECRET}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let body =
        json!({"plugin": "misbehave", "instance_type": "ok", "group_id": group["id"], "schedule": {"kind": "manual"}});
    let integration: Value = post("/api/integrations", body).await.unwrap().json().await.unwrap();
    let sign = |secret: &str, body: &[u8]| {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    let delivery = br#"{"id":"pushed-1","name":"Pushed"}"#;
    let deliver = |signature: String| {
        client
            .post(format!("{base}/webhooks/misbehave/{}", group["id"]))
            .header("x-signature", signature)
            .body(delivery.to_vec())
            .send()
    };
    let forged = deliver(sign("guess", delivery)).await.unwrap();
    assert_eq!(forged.status(), 401);
    // A plugin that fails before it verified anything refuses the sender
    // as unverified (it answered 500, and logged each such request).
    let trapped = client
        .post(format!("{base}/webhooks/misbehave/{}", group["id"]))
        .header("x-trap", "before-verifying")
        .body(delivery.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(trapped.status(), 401, "{:?}", trapped.text().await);
    let store = inlet.store().await;
    let batches = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM raw_batches").fetch_one(store.pool()).await.unwrap()
    };
    assert_eq!(batches().await, 0, "nothing stored for a bad signature");
    let accepted = deliver(sign(SECRET, delivery)).await.unwrap();
    assert_eq!(accepted.status(), 202);
    let id = integration["id"].as_i64().unwrap();
    let objects = eventually(30, "the pushed object", || async {
        let objects = store.objects(id).await.unwrap();
        (!objects.is_empty()).then_some(objects)
    })
    .await;
    assert_eq!((objects[0].external_id.as_str(), objects[0].name.as_deref()), ("pushed-1", Some("Pushed")));

    // A delivery the plugin turns into a batch over the cap a fetch's
    // batches have (8 MiB) is refused, and nothing of it is stored.
    let stored = batches().await;
    let inflated = br#"{"inflate_to_bytes": 9437184}"#;
    let refused = client
        .post(format!("{base}/webhooks/misbehave/{}", group["id"]))
        .header("x-signature", sign(SECRET, inflated))
        .body(inflated.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422, "refused for good: a 5xx is retried");
    let reason: Value = refused.json().await.unwrap();
    assert!(reason["error"]["message"].as_str().unwrap().contains("exceeds the 8388608-byte cap"), "{reason}");
    assert_eq!(batches().await, stored, "nothing stored");

    // Slack's url_verification (contract 0.2.0): signed like any delivery,
    // answered with its challenge as the plugin says, and nothing stored.
    let stored = batches().await;
    let challenge =
        br#"{"type":"url_verification","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#;
    let timestamp = (chrono::Utc::now().timestamp()).to_string();
    let base_string = [format!("v0:{timestamp}:").as_bytes(), challenge].concat();
    let slack_signature = sign(SECRET, &base_string).replace("sha256=", "v0=");
    let answered = client
        .post(format!("{base}/webhooks/misbehave/{}", group["id"]))
        .header("x-slack-request-timestamp", &timestamp)
        .header("x-slack-signature", slack_signature)
        .body(challenge.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 200);
    assert_eq!(answered.headers()["content-type"], "text/plain");
    assert_eq!(answered.text().await.unwrap(), "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
    assert_eq!(batches().await, stored, "a challenge stores nothing");
}

/// Send raw bytes to the server and return what it answers, if it answers
/// before `within`. The connection stays open until then.
async fn raw_request(base: &str, request: &[u8], within: std::time::Duration) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = base.strip_prefix("http://").unwrap();
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = vec![0; 4096];
    match tokio::time::timeout(within, stream.read(&mut answer)).await {
        Ok(Ok(n)) => Some(String::from_utf8_lossy(&answer[..n]).into_owned()),
        _ => None,
    }
}

/// A sender cannot make the host wait for, or buffer, a body it has not
/// earned: the shared secret is checked on the headers alone, deliveries in
/// flight are bounded, in all and per group (so that one sender's flood
/// leaves room for the others), and a connection that never finishes its
/// headers or its body is closed or refused.
#[tokio::test(flavor = "multi_thread")]
async fn ingress_checks_the_secret_before_the_body_and_bounds_what_it_holds() {
    // Two slots: each group may hold one.
    let setup = setup("[limits]\nwebhook_concurrency = 2\n").await;
    let head = |group: i64, secret: &str| {
        format!(
            "POST /webhooks/apple-health/{group} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
             x-inlet-secret: {secret}\r\ncontent-length: 1000000\r\n\r\n"
        )
    };
    let quick = std::time::Duration::from_secs(5);
    // A wrong secret is refused with the body still unsent.
    let refused = raw_request(&setup.base, head(setup.group, "wrong").as_bytes(), quick).await;
    assert!(refused.as_deref().is_some_and(|a| a.starts_with("HTTP/1.1 401")), "{refused:?}");

    // The right secret and a body that does not come: it holds a slot (on
    // its own task), and holds it until its body times out.
    let hold = |group: i64, secret: &str| {
        let (base, holding) = (setup.base.clone(), head(group, secret));
        tokio::spawn(async move { raw_request(&base, holding.as_bytes(), std::time::Duration::from_secs(60)).await })
    };
    const OTHER: &str = "another-phone-s3cret";
    let (other, _) = add_group(&setup.client, &setup.base, "another phone", OTHER).await;
    let held = hold(setup.group, SECRET);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    // The same group's next delivery is told to come back, however its path
    // spells the group...
    let (status, busy) = setup.deliver(Some(SECRET), &fixture()).await;
    assert_eq!((status, &busy["error"]["code"]), (503, &json!("try-later")), "{busy}");
    assert!(busy["error"]["message"].as_str().unwrap().contains("this group's"), "{busy}");
    let spelled = head(setup.group, SECRET).replace(&format!("/{} ", setup.group), &format!("/00{} ", setup.group));
    let busy = raw_request(&setup.base, spelled.as_bytes(), quick).await;
    assert!(busy.as_deref().is_some_and(|a| a.starts_with("HTTP/1.1 503")), "{busy:?}");
    // ...another group's is taken.
    let delivered = setup
        .client
        .post(format!("{}/webhooks/apple-health/{other}", setup.base))
        .header("content-type", "application/json")
        .header("x-inlet-secret", OTHER)
        .body(fixture())
        .send()
        .await
        .unwrap();
    assert_eq!(delivered.status(), 202, "{:?}", delivered.text().await);
    let stored = setup.stored_batches().await;
    assert!(stored > 0);
    // Both slots held: any delivery is told to come back.
    let other_held = hold(other, OTHER);
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let full = raw_request(&setup.base, head(other + 1, "any").as_bytes(), quick).await;
    assert!(full.as_deref().is_some_and(|a| a.starts_with("HTTP/1.1 503")), "{full:?}");
    held.abort();
    other_held.abort();

    // Headers that never end: the connection is closed after the header
    // timeout. A form that never comes, on a route that asks for no token:
    // refused after the body timeout.
    let started = std::time::Instant::now();
    let form = "POST /oauth/apple-health/start HTTP/1.1\r\nhost: x\r\n\
                content-type: application/x-www-form-urlencoded\r\ncontent-length: 100\r\n\r\n";
    let within = std::time::Duration::from_secs(30);
    let (headers, body) = tokio::join!(
        raw_request(&setup.base, b"POST / HTTP/1.1\r\nhost: x\r\n", within),
        raw_request(&setup.base, form.as_bytes(), within)
    );
    assert!(headers.is_some(), "the server closed or answered the connection");
    assert!(body.as_deref().is_some_and(|a| a.starts_with("HTTP/1.1 408")), "{body:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    assert_eq!(setup.stored_batches().await, stored, "only the other group's delivery was stored");
}

/// Someone guessing secrets cannot flood the operator's log: refusals are
/// logged once a minute per source, with how many went unlogged.
#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_logged_once_a_minute_per_source() {
    let inlet = Inlet::with_plugins(&[bundled_plugin("apple-health")]).env("INLET_ADMIN_TOKEN", TOKEN);
    let log = inlet.dir().join("serve.log");
    let (_serve, base) = inlet.spawn_logged_listening(&["serve", "--listen", "127.0.0.1:0"], &log).await;
    let client = reqwest::Client::new();
    for guess in 0..5 {
        let response = client
            .post(format!("{base}/webhooks/apple-health/1"))
            .header("x-inlet-secret", format!("guess-{guess}"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("webhook delivery refused").count(), 1, "{text}");
}
