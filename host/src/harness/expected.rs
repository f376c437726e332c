//! Records compared: against the expected-records file (`--expect`,
//! rewritten with `--update`), and between two replays.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// The sections of `inlet records`' output.
const SECTIONS: [&str; 3] = ["objects", "events", "blocks"];

/// Compare with the file, or write it when asked to (or when it is new and
/// `update` is set).
pub fn check(path: &Path, records: &Value, update: bool) -> Result<String, String> {
    let count = count(records);
    if update {
        let text = serde_json::to_string_pretty(records).map_err(|e| e.to_string())? + "\n";
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        return Ok(format!("wrote {count} records to {}", path.display()));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("reading {}: {e} (write it with --update)", path.display()))?;
    let expected: Value = serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    match difference(&expected, records, "expected", "produced") {
        None => Ok(format!("{count} records match {}", path.display())),
        Some(difference) => Err(format!(
            "the records differ from {}: {difference} (if the change is intended, rewrite it with --update)",
            path.display()
        )),
    }
}

/// How two sets of records differ, naming the first few records that do.
pub fn difference(a: &Value, b: &Value, a_name: &str, b_name: &str) -> Option<String> {
    let mut found = Vec::new();
    for section in SECTIONS {
        let (in_a, in_b) = (keyed(&a[section]), keyed(&b[section]));
        for (key, record) in &in_a {
            match in_b.get(key) {
                None => found.push(format!("{section} {key} is only {a_name}")),
                Some(other) if other != record => found.push(format!(
                    "{section} {key} differs: {a_name} {}, {b_name} {}",
                    shorten(record),
                    shorten(other)
                )),
                Some(_) => {}
            }
        }
        found.extend(
            in_b.keys().filter(|k| !in_a.contains_key(*k)).map(|key| format!("{section} {key} is only {b_name}")),
        );
    }
    if found.is_empty() {
        return None;
    }
    let total = found.len();
    found.truncate(3);
    let more = if total > 3 { format!(" and {} more", total - 3) } else { String::new() };
    Some(format!("{}{more}", found.join("; ")))
}

pub fn count(records: &Value) -> usize {
    SECTIONS.iter().map(|s| records[s].as_array().map_or(0, Vec::len)).sum()
}

/// Records by `kind/external_id`.
fn keyed(section: &Value) -> BTreeMap<String, &Value> {
    let records = section.as_array().map(Vec::as_slice).unwrap_or_default();
    records
        .iter()
        .map(|r| (format!("{}/{}", r["kind"].as_str().unwrap_or(""), r["external_id"].as_str().unwrap_or("")), r))
        .collect()
}

fn shorten(record: &Value) -> String {
    let text = record.to_string();
    match text.char_indices().nth(160) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_difference_names_the_records() {
        let a =
            json!({"objects": [{"kind": "item", "external_id": "1", "data": {"n": 1}}], "events": [], "blocks": []});
        let b =
            json!({"objects": [{"kind": "item", "external_id": "2", "data": {"n": 1}}], "events": [], "blocks": []});
        assert_eq!(difference(&a, &a, "x", "y"), None);
        assert_eq!(
            difference(&a, &b, "expected", "produced").unwrap(),
            "objects item/1 is only expected; objects item/2 is only produced"
        );
    }
}
