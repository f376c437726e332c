//! The integration's private key-value state, typed through serde.
//! Changes become durable at the next [`crate::output::checkpoint`].

use crate::PluginError;
use crate::bindings::inlet::plugin::state as host;
use serde::{Serialize, de::DeserializeOwned};
use std::marker::PhantomData;

/// A state key with the type of its value: the cursor, a watermark, an ETag.
///
/// ```no_run
/// use inlet_plugin_sdk::state::Key;
///
/// # fn main() -> Result<(), inlet_plugin_sdk::PluginError> {
/// let cursor: Key<u64> = Key::new(format!("cursor.{}", "account-1"));
/// let since = cursor.get()?.unwrap_or(0);
/// cursor.set(&(since + 100))?;
/// # Ok(())
/// # }
/// ```
pub struct Key<T> {
    name: String,
    value: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> Key<T> {
    pub fn new(name: impl Into<String>) -> Key<T> {
        Key { name: name.into(), value: PhantomData }
    }

    /// The value, if one was set; an unreadable one is a permanent error.
    pub fn get(&self) -> Result<Option<T>, PluginError> {
        get_json(&self.name)
    }

    /// Set the value, durable at the next checkpoint.
    pub fn set(&self, value: &T) -> Result<(), PluginError> {
        set_json(&self.name, value)
    }

    pub fn delete(&self) {
        delete(&self.name)
    }
}

pub fn get(key: &str) -> Option<String> {
    host::get(key)
}

pub fn set(key: &str, value: &str) {
    host::set(key, value)
}

pub fn delete(key: &str) {
    host::delete(key)
}

pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>, PluginError> {
    host::get(key)
        .map(|raw| serde_json::from_str(&raw))
        .transpose()
        .map_err(|e| PluginError::Permanent(format!("state key {key:?} is unreadable: {e}")))
}

pub fn set_json<T: Serialize>(key: &str, value: &T) -> Result<(), PluginError> {
    host::set(key, &serde_json::to_string(value)?);
    Ok(())
}
