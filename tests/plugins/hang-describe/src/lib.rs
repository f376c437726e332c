//! Test plugin: `describe` sleeps for an hour, blocked in a host call. The
//! host must report it as failed to load and start anyway.

use inlet_plugin_sdk::prelude::*;

struct HangDescribe;

impl Plugin for HangDescribe {
    fn describe() -> Manifest {
        std::thread::sleep(std::time::Duration::from_secs(3600));
        unreachable!("the host stops describe long before")
    }

    fn fetch(_: FetchRequest) -> Result<FetchSummary, PluginError> {
        Ok(FetchSummary::default())
    }

    fn process(_: RawBatch) -> Result<Records, PluginError> {
        Ok(Records::default())
    }
}

inlet_plugin_sdk::export_plugin!(HangDescribe);
