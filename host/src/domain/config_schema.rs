//! An instance type's config schema (JSON Schema, draft 2020-12 unless it
//! names another), compiled once when its plugin loads, and the check an
//! integration's config passes when it is created or changed: a refusal names
//! the field (`config.since`) and why, before any run.

use anyhow::Context;
use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use serde_json::Value;

pub struct ConfigSchema(jsonschema::Validator);

/// Why a config does not fit its schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigRefusal {
    /// `config`, or the offending member: `config.accounts[1].id`.
    pub field: String,
    pub message: String,
}

/// A refusal's text quotes the offending value, which may be long.
const MAX_MESSAGE_CHARS: usize = 300;

impl ConfigSchema {
    /// Compile a schema. Formats (`date-time`, `email`, ...) are checked,
    /// not just annotated; references outside the schema are refused (there
    /// is no retrieval).
    pub fn compile(text: &str) -> anyhow::Result<ConfigSchema> {
        let schema: Value = serde_json::from_str(text).context("it is not JSON")?;
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| anyhow::anyhow!("it is not a valid JSON Schema: {e}"))?;
        Ok(ConfigSchema(validator))
    }

    /// The first way `config` breaks the schema, if it does.
    pub fn check(&self, config: &Value) -> Result<(), ConfigRefusal> {
        let Some(error) = self.0.iter_errors(config).next() else { return Ok(()) };
        let mut field = String::from("config");
        for segment in error.instance_path().segments() {
            match segment {
                LocationSegment::Property(name) => field.push_str(&format!(".{name}")),
                LocationSegment::Index(index) => field.push_str(&format!("[{index}]")),
            }
        }
        // A missing member is reported at its parent; name the member.
        if let ValidationErrorKind::Required { property } = error.kind()
            && let Some(name) = property.as_str()
        {
            field.push_str(&format!(".{name}"));
        }
        let message: String = error.to_string().chars().take(MAX_MESSAGE_CHARS).collect();
        Err(ConfigRefusal { field, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCHEMA: &str = r#"{
        "type": "object",
        "properties": {
            "since": {"type": "string", "format": "date-time"},
            "accounts": {"type": "array", "items": {"type": "object", "required": ["id"]}}
        },
        "required": ["accounts"],
        "additionalProperties": false
    }"#;

    #[test]
    fn refusals_name_the_field_and_say_why() {
        let schema = ConfigSchema::compile(SCHEMA).unwrap();
        assert_eq!(schema.check(&json!({"accounts": [{"id": "a"}], "since": "2026-01-01T00:00:00Z"})), Ok(()));
        let refusal = |config: Value| schema.check(&config).unwrap_err();
        assert_eq!(refusal(json!({})).field, "config.accounts");
        assert!(refusal(json!({})).message.contains("required"), "{:?}", refusal(json!({})));
        assert_eq!(refusal(json!({"accounts": [{"id": "a"}, {}]})).field, "config.accounts[1].id");
        let since = refusal(json!({"accounts": [], "since": "yesterday"}));
        assert_eq!(since.field, "config.since");
        assert!(since.message.contains("date-time"), "{since:?}");
        assert_eq!(refusal(json!({"accounts": [], "extra": 1})).field, "config");
    }

    #[test]
    fn a_schema_that_is_not_one_is_refused() {
        let error = |text: &str| ConfigSchema::compile(text).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error("{").contains("not JSON"));
        assert!(error(r#"{"type": "no-such-type"}"#).contains("not a valid JSON Schema"));
        assert!(error(r#"{"$ref": "https://example.com/schema.json"}"#).contains("not a valid JSON Schema"));
    }
}
