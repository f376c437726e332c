//! The host's own types: what plugins describe and produce, and the states
//! and reasons that modules compare. Each contract version's bindings are
//! converted to these at the runtime's boundary, so the rest of the host does
//! not change when the contract does.

pub mod config_schema;
pub mod error_class;
pub mod group_status;
pub mod job_state;
pub mod manifest;
pub mod pause_reason;
pub mod plugin_call;
pub mod queue;
pub mod records;
pub mod trigger;

/// The value of `all` whose stored text (`name`) is `value`; an error names
/// `what` it is otherwise.
pub fn parse_stored<T: Copy>(all: &[T], name: fn(T) -> &'static str, value: &str, what: &str) -> anyhow::Result<T> {
    all.iter()
        .copied()
        .find(|v| name(*v) == value)
        .ok_or_else(|| anyhow::anyhow!("unknown {what} {value:?} in the database"))
}

#[cfg(test)]
mod tests {
    use super::trigger::Trigger;

    #[test]
    fn stored_names_read_back_and_unknown_ones_are_named() {
        for trigger in Trigger::ALL {
            assert_eq!(Trigger::parse(trigger.as_str()).unwrap(), trigger);
        }
        let error = Trigger::parse("sometimes").unwrap_err().to_string();
        assert_eq!(error, "unknown trigger \"sometimes\" in the database");
    }
}
