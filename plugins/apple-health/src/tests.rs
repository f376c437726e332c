use super::*;
use serde_json::json;

const FIXTURE: &str = include_str!("../../../tests/fixtures/health-auto-export.json");
const RUN_ID: &str = "8F3C2B1A-5D4E-4F6A-9B7C-0D1E2F3A4B5C";
const STRENGTH_ID: &str = "C1D2E3F4-A5B6-4C7D-8E9F-A0B1C2D3E4F5";
/// 2024-02-05 07:30:00 UTC.
const RUN_START_MS: i64 = 1_707_118_200_000;
/// 2024-02-05 00:00:00 UTC.
const FEB_5_MS: i64 = 1_707_091_200_000;

fn deliver(body: &Value) -> Vec<RoutedBatch> {
    split_delivery(body.to_string().as_bytes()).unwrap()
}

fn process_all(routed: &[RoutedBatch]) -> Records {
    let mut all = Records::default();
    for batch in routed {
        let records = records_for(&batch.batch).unwrap();
        all.events.extend(records.events);
        all.blocks.extend(records.blocks);
    }
    all
}

fn fixture_records() -> Records {
    process_all(&split_delivery(FIXTURE.as_bytes()).unwrap())
}

fn event<'a>(records: &'a Records, external_id: &str) -> &'a EventRecord {
    records.events.iter().find(|e| e.external_id == external_id).unwrap_or_else(|| panic!("no event {external_id}"))
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn permanent<T>(result: Result<T, PluginError>) -> String {
    match result {
        Err(PluginError::Permanent(message)) => message,
        Err(other) => panic!("expected a permanent error, got {other:?}"),
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn manifest_declares_a_push_only_plugin_with_a_secret_header() {
    let manifest = AppleHealth::describe();
    assert_eq!(manifest.id, "apple-health");
    assert!(matches!(manifest.auth, AuthKind::None));
    assert!(matches!(&manifest.webhook, Some(WebhookAuth::SharedSecretHeader(header)) if header == "x-inlet-secret"));
    let ids: Vec<&str> = manifest.instance_types.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["workouts", "metrics"]);
    for instance_type in &manifest.instance_types {
        assert!(matches!(instance_type.default_schedule, Schedule::Manual));
        assert!(instance_type.hosts.is_empty());
        assert_eq!(json_of(&instance_type.config_schema)["additionalProperties"], false);
    }
}

#[test]
fn fetch_succeeds_with_nothing_to_fetch() {
    let request = FetchRequest {
        instance_type: "metrics".into(),
        config: "{}".into(),
        mode: FetchMode::Incremental,
        trigger: Trigger::Manual,
    };
    let summary = AppleHealth::fetch(request).unwrap();
    assert_eq!(summary.items_seen, 0);
    assert!(summary.note.unwrap().contains("webhook"));
}

#[test]
fn dates_in_the_apps_format_and_in_rfc_3339_parse_to_epoch_ms() {
    assert_eq!(dates::parse("date", "2024-02-05 07:30:00 +0000"), Ok(RUN_START_MS));
    assert_eq!(dates::parse("date", "2024-02-04 23:30:00 -0800"), Ok(RUN_START_MS));
    assert_eq!(dates::parse("date", "2024-02-05T07:30:00Z"), Ok(RUN_START_MS));
    assert_eq!(dates::parse("date", "2024-02-05T08:30:00.250+01:00"), Ok(RUN_START_MS + 250));
    assert_eq!(dates::parse("date", "2024-02-05"), Ok(FEB_5_MS));
    assert_eq!(
        dates::parse("start", "05/02/2024 07:30"),
        Err(r#"start "05/02/2024 07:30" is not a date (expected yyyy-MM-dd HH:mm:ss Z or RFC 3339)"#.into())
    );
}

#[test]
fn a_delivery_is_routed_to_the_metrics_and_workouts_integrations() {
    let routed = split_delivery(FIXTURE.as_bytes()).unwrap();
    let targets: Vec<(&str, &str)> = routed.iter().map(|r| (r.instance_type.as_str(), r.batch.kind.as_str())).collect();
    assert_eq!(targets, [("metrics", "metrics"), ("workouts", "workouts")]);
    let metrics = json_of(&routed[0].batch.payload);
    let names: Vec<&str> = metrics["metrics"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["step_count", "heart_rate", "active_energy", "resting_heart_rate", "sleep_analysis"]);
    let workouts = json_of(&routed[1].batch.payload);
    assert_eq!(workouts["workouts"][0]["id"], RUN_ID);
    assert_eq!(workouts["workouts"][1]["id"], STRENGTH_ID);
}

#[test]
fn missing_or_empty_sections_make_no_batches() {
    assert!(deliver(&json!({ "data": {} })).is_empty());
    assert!(deliver(&json!({ "data": { "metrics": [], "workouts": null } })).is_empty());
    let only_workouts = deliver(&json!({ "data": { "workouts": [{ "id": "w", "start": "2024-02-05" }] } }));
    assert_eq!(only_workouts.len(), 1);
    assert_eq!(only_workouts[0].instance_type, "workouts");
}

#[test]
fn metric_samples_become_events_keyed_by_metric_and_time() {
    let records = fixture_records();
    assert_eq!(records.events.iter().filter(|e| e.kind == "metric").count(), 9);
    let steps = event(&records, &format!("step_count/{RUN_START_MS}"));
    assert_eq!(steps.occurred_at, RUN_START_MS);
    assert_eq!(steps.value, Some(1873.0));
    assert_eq!(steps.unit.as_deref(), Some("count"));
    let data = json_of(&steps.data);
    assert_eq!(data["metric"], "step_count");
    assert_eq!(data["units"], "count");
    assert_eq!(data["date"], "2024-02-05 07:30:00 +0000");
    assert_eq!(data["source"], "Alex's Apple Watch|Alex's iPhone");
}

#[test]
fn heart_rate_samples_take_the_average_as_value_and_keep_min_and_max() {
    let records = fixture_records();
    let heart_rate = event(&records, &format!("heart_rate/{RUN_START_MS}"));
    assert_eq!(heart_rate.value, Some(141.2));
    assert_eq!(heart_rate.unit.as_deref(), Some("count/min"));
    let data = json_of(&heart_rate.data);
    assert_eq!(
        (data["Min"].as_f64(), data["Avg"].as_f64(), data["Max"].as_f64()),
        (Some(92.0), Some(141.2), Some(172.0))
    );
    assert_eq!(data["source"], "Alex's Apple Watch");
}

#[test]
fn samples_without_a_quantity_keep_their_fields_and_have_no_value() {
    let records = fixture_records();
    let sleep = event(&records, &format!("sleep_analysis/{FEB_5_MS}"));
    assert_eq!(sleep.occurred_at, FEB_5_MS);
    assert_eq!(sleep.value, None);
    assert_eq!(sleep.unit.as_deref(), Some("hr"));
    assert_eq!(json_of(&sleep.data)["totalSleep"], 7.12);
}

#[test]
fn a_sample_sent_again_with_another_offset_keeps_its_key() {
    let sample_at = |date: &str| {
        let body = json!({ "data": { "metrics": [{ "name": "step_count", "units": "count",
            "data": [{ "qty": 10, "date": date }] }] } });
        process_all(&deliver(&body)).events.remove(0).external_id
    };
    assert_eq!(sample_at("2024-02-05 07:30:00 +0000"), format!("step_count/{RUN_START_MS}"));
    assert_eq!(sample_at("2024-02-05 08:30:00 +0100"), format!("step_count/{RUN_START_MS}"));
    assert_eq!(sample_at("2024-02-05T07:30:00Z"), format!("step_count/{RUN_START_MS}"));
}

#[test]
fn unaggregated_sleep_stages_are_keyed_by_their_start() {
    let body = json!({ "data": { "metrics": [{ "name": "sleep_analysis", "units": "hr", "data": [{
        "startDate": "2024-02-05 07:30:00 +0000", "endDate": "2024-02-05 08:00:00 +0000", "qty": 0.5, "value": "Core"
    }] }] } });
    let records = process_all(&deliver(&body));
    assert_eq!(records.events[0].external_id, format!("sleep_analysis/{RUN_START_MS}"));
    assert_eq!(records.events[0].value, Some(0.5));
}

#[test]
fn workouts_become_events_keyed_by_their_uuid() {
    let records = fixture_records();
    let run = event(&records, RUN_ID);
    assert_eq!(run.kind, "workout");
    assert_eq!(run.occurred_at, RUN_START_MS);
    assert_eq!(run.value, Some(2142.3));
    assert_eq!(run.unit.as_deref(), Some("s"));
    let data = json_of(&run.data);
    assert_eq!(data["name"], "Outdoor Run");
    assert_eq!(data["end"], "2024-02-05 08:05:42 +0000");
    assert_eq!(data["activeEnergyBurned"], json!({ "qty": 412.6, "units": "kcal" }));
    assert_eq!(data["distance"], json!({ "qty": 6.21, "units": "km" }));
    assert_eq!(data["heartRate"]["avg"]["qty"], 151.4);
    assert_eq!(data["isIndoor"], false);
    assert!(data.get("heartRateData").is_none() && data.get("route").is_none());

    let strength = event(&records, STRENGTH_ID);
    assert_eq!(strength.value, Some(2550.0));
    assert!(json_of(&strength.data).get("heartRateData").is_none());
}

#[test]
fn workout_time_series_become_blocks_of_their_workout() {
    let records = fixture_records();
    let mut blocks: Vec<(&str, &str, &str)> =
        records.blocks.iter().map(|b| (b.kind.as_str(), b.external_id.as_str(), b.event_id.as_str())).collect();
    blocks.sort();
    let id = |kind: &str| format!("{RUN_ID}/{kind}");
    assert_eq!(
        blocks,
        [
            ("heart-rate", id("heart-rate").as_str(), RUN_ID),
            ("heart-rate-recovery", id("heart-rate-recovery").as_str(), RUN_ID),
            ("route", id("route").as_str(), RUN_ID),
        ]
    );
    let heart_rate = records.blocks.iter().find(|b| b.kind == "heart-rate").unwrap();
    let samples = &json_of(&heart_rate.data)["heartRateData"];
    assert_eq!(samples.as_array().unwrap().len(), 3);
    assert_eq!(samples[1]["Avg"], 131);
}

#[test]
fn a_long_metric_is_cut_across_batches_that_keep_its_name_and_units() {
    let samples: Vec<Value> = (0..4500)
        .map(|s| json!({ "qty": s, "date": format!("2024-02-05 {:02}:{:02}:{:02} +0000", s / 3600, s / 60 % 60, s % 60) }))
        .collect();
    let body = json!({ "data": { "metrics": [
        { "name": "heart_rate_variability", "units": "ms", "data": samples },
        { "name": "step_count", "units": "count", "data": [{ "qty": 5, "date": "2024-02-05 07:30:00 +0000" }] },
    ] } });
    let routed = deliver(&body);
    let pieces: Vec<Vec<(String, String, usize)>> = routed
        .iter()
        .map(|r| {
            let payload = json_of(&r.batch.payload);
            payload["metrics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| {
                    (
                        m["name"].as_str().unwrap().to_string(),
                        m["units"].as_str().unwrap().to_string(),
                        m["data"].as_array().unwrap().len(),
                    )
                })
                .collect()
        })
        .collect();
    let piece = |name: &str, units: &str, n| (name.to_string(), units.to_string(), n);
    assert_eq!(
        pieces,
        [
            vec![piece("heart_rate_variability", "ms", 2000)],
            vec![piece("heart_rate_variability", "ms", 2000)],
            vec![piece("heart_rate_variability", "ms", 500), piece("step_count", "count", 1)],
        ]
    );

    let records = process_all(&routed);
    let mut keys: Vec<&str> = records.events.iter().map(|e| e.external_id.as_str()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 4501);
    assert!(keys.contains(&format!("heart_rate_variability/{}", FEB_5_MS + 4_499_000).as_str()));
}

#[test]
fn workouts_are_batched_by_count_and_by_size() {
    let small: Vec<Value> = (0..1201).map(|i| json!({ "id": format!("w{i}"), "start": "2024-02-05" })).collect();
    let counts: Vec<usize> = workouts::batches(small).iter().map(|b| b["workouts"].as_array().unwrap().len()).collect();
    assert_eq!(counts, [500, 500, 201]);

    let big: Vec<Value> = (0..3).map(|i| json!({ "id": format!("w{i}"), "notes": "x".repeat(1_500_000) })).collect();
    let counts: Vec<usize> = workouts::batches(big).iter().map(|b| b["workouts"].as_array().unwrap().len()).collect();
    assert_eq!(counts, [2, 1]);
}

#[test]
fn malformed_deliveries_are_refused_saying_what_is_wrong() {
    let refused = |body: Value| permanent(split_delivery(body.to_string().as_bytes()));
    assert!(permanent(split_delivery(br#"{"data": "#)).starts_with("body is not JSON: "));
    assert_eq!(refused(json!([])), r#"body has no "data" object; is the automation's export format JSON?"#);
    assert_eq!(refused(json!({ "data": { "metrics": {} } })), "data.metrics is not an array");
    assert_eq!(
        refused(
            json!({ "data": { "metrics": [{ "name": "step_count", "data": [] }, { "units": "count", "data": [] }] } })
        ),
        "data.metrics[1] has no name"
    );
    assert_eq!(
        refused(json!({ "data": { "metrics": [{ "name": "step_count", "units": "count" }] } })),
        "data.metrics[0] (step_count) has no data array"
    );
    assert_eq!(
        refused(json!({ "data": { "metrics": [{ "name": "step_count", "units": "count", "data": [
            { "qty": 1, "date": "2024-02-05 07:30:00 +0000" }, { "qty": 2, "date": "yesterday" }
        ] }] } })),
        r#"data.metrics[0].data[1] (step_count): date "yesterday" is not a date (expected yyyy-MM-dd HH:mm:ss Z or RFC 3339)"#
    );
    assert_eq!(
        refused(json!({ "data": { "metrics": [{ "name": "step_count", "data": [{ "qty": 1 }] }] } })),
        "data.metrics[0].data[0] (step_count): has no date"
    );
    assert!(
        refused(json!({ "data": { "workouts": [{ "id": RUN_ID, "start": "2024-02-05" }, { "name": "Yoga" }] } }))
            .starts_with("data.workouts[1] has no id; ")
    );
    assert_eq!(
        refused(json!({ "data": { "workouts": [{ "id": RUN_ID, "start": "tomorrow" }] } })),
        format!(
            r#"data.workouts[0] ({RUN_ID}): start "tomorrow" is not a date (expected yyyy-MM-dd HH:mm:ss Z or RFC 3339)"#
        )
    );
}

#[test]
fn batches_of_an_unknown_kind_or_shape_fail_permanently() {
    let batch = |kind: &str, payload: &str| RawBatch { kind: kind.into(), payload: payload.into() };
    assert_eq!(permanent(records_for(&batch("ecg", "{}"))), r#"unknown batch kind "ecg""#);
    assert_eq!(permanent(records_for(&batch("workouts", r#"{"workouts": 3}"#))), "batch.workouts is not an array");
    assert_eq!(permanent(records_for(&batch("metrics", r#"{"metrics": [{}]}"#))), "metrics[0] has no name");
}
