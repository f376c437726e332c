//! The contract versions this host serves, one module per version (its
//! bindings, its imports' host side, its type conversions), and the one place
//! that dispatches on the version: a component is linked against the version
//! its imports name, and every export call goes through [`Plugin`], which
//! answers in the host's own types whatever the version.

mod shared;
pub mod v0_1_0;
pub mod v0_2_0;

/// The newest version: what the SDK and the bundled plugins are built on.
pub use v0_2_0 as latest;

use crate::domain::manifest::Manifest;
use crate::domain::plugin_call::{FetchRequest, FetchSummary, PluginError, RawBatch, WebhookDelivery, WebhookOutcome};
use crate::domain::records::Records;
use crate::runtime::context::PluginCtx;
use wasmtime::component::{Component, HasSelf, Instance, InstancePre, Linker};
use wasmtime::{Engine, Store};

/// A version of the `inlet:plugin` contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ContractVersion {
    V0_1_0,
    V0_2_0,
}

impl ContractVersion {
    pub const ALL: [ContractVersion; 2] = [ContractVersion::V0_1_0, ContractVersion::V0_2_0];

    pub fn as_str(self) -> &'static str {
        match self {
            ContractVersion::V0_1_0 => "0.1.0",
            ContractVersion::V0_2_0 => "0.2.0",
        }
    }

    /// The version whose interfaces a component imports. Every plugin
    /// imports at least `types` (its exports use its types); one that names
    /// two versions, or one this host does not serve, is refused.
    pub fn of(component: &Component, engine: &Engine) -> anyhow::Result<ContractVersion> {
        let mut named = std::collections::BTreeSet::new();
        for (name, _) in component.component_type().imports(engine) {
            if let Some(version) = name.strip_prefix("inlet:plugin/").and_then(|n| n.split_once('@')).map(|(_, v)| v) {
                named.insert(version.to_string());
            }
        }
        let served = || ContractVersion::ALL.map(|v| v.as_str()).join(", ");
        let mut named = named.into_iter();
        match (named.next(), named.next()) {
            (None, _) => anyhow::bail!(
                "it imports no inlet:plugin interface: build it against a contract version this host serves ({})",
                served()
            ),
            (Some(a), Some(b)) => anyhow::bail!("it imports two contract versions ({a} and {b}); build it against one"),
            (Some(version), None) => {
                ContractVersion::ALL.into_iter().find(|v| v.as_str() == version).ok_or_else(|| {
                    anyhow::anyhow!(
                        "it is built for inlet:plugin@{version}, which this host does not serve ({})",
                        served()
                    )
                })
            }
        }
    }
}

impl std::fmt::Display for ContractVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Link every version's imports into one linker: a component uses only its own.
pub fn add_to_linker(linker: &mut Linker<PluginCtx>) -> wasmtime::Result<()> {
    v0_1_0::Plugin::add_to_linker::<_, HasSelf<_>>(linker, |ctx| ctx)?;
    v0_2_0::Plugin::add_to_linker::<_, HasSelf<_>>(linker, |ctx| ctx)
}

/// A component linked and checked against its contract version, ready to instantiate.
#[derive(Clone)]
pub struct PluginPre {
    pre: InstancePre<PluginCtx>,
    exports: Exports,
}

/// A component's exports, in the types of its contract version.
#[derive(Clone, Copy)]
enum Exports {
    V0_1_0(v0_1_0::Exports),
    V0_2_0(v0_2_0::Exports),
}

impl PluginPre {
    pub fn new(pre: InstancePre<PluginCtx>, version: ContractVersion) -> wasmtime::Result<PluginPre> {
        let exports = match version {
            ContractVersion::V0_1_0 => Exports::V0_1_0(v0_1_0::Exports::new(&pre)?),
            ContractVersion::V0_2_0 => Exports::V0_2_0(v0_2_0::Exports::new(&pre)?),
        };
        Ok(PluginPre { pre, exports })
    }

    pub fn contract(&self) -> ContractVersion {
        match self.exports {
            Exports::V0_1_0(_) => ContractVersion::V0_1_0,
            Exports::V0_2_0(_) => ContractVersion::V0_2_0,
        }
    }

    pub async fn instantiate_async(&self, store: &mut Store<PluginCtx>) -> wasmtime::Result<Plugin> {
        Ok(Plugin { instance: self.pre.instantiate_async(store).await?, exports: self.exports })
    }
}

/// One instance of a plugin; its exports answer in the host's own types.
pub struct Plugin {
    instance: Instance,
    exports: Exports,
}

impl Plugin {
    pub async fn describe(&self, store: &mut Store<PluginCtx>) -> wasmtime::Result<Manifest> {
        Ok(match &self.exports {
            Exports::V0_1_0(e) => e.describe(&self.instance, store).await?.into(),
            Exports::V0_2_0(e) => e.describe(&self.instance, store).await?.into(),
        })
    }

    pub async fn fetch(
        &self,
        store: &mut Store<PluginCtx>,
        request: &FetchRequest,
    ) -> wasmtime::Result<Result<FetchSummary, PluginError>> {
        let i = &self.instance;
        Ok(match &self.exports {
            Exports::V0_1_0(e) => e.fetch(i, store, &request.into()).await?.map(Into::into).map_err(Into::into),
            Exports::V0_2_0(e) => e.fetch(i, store, &request.into()).await?.map(Into::into).map_err(Into::into),
        })
    }

    pub async fn process(
        &self,
        store: &mut Store<PluginCtx>,
        batch: &RawBatch,
    ) -> wasmtime::Result<Result<Records, PluginError>> {
        let i = &self.instance;
        Ok(match &self.exports {
            Exports::V0_1_0(e) => e.process(i, store, &batch.into()).await?.map(Into::into).map_err(Into::into),
            Exports::V0_2_0(e) => e.process(i, store, &batch.into()).await?.map(Into::into).map_err(Into::into),
        })
    }

    pub async fn handle_webhook(
        &self,
        store: &mut Store<PluginCtx>,
        delivery: &WebhookDelivery,
    ) -> wasmtime::Result<Result<WebhookOutcome, PluginError>> {
        let i = &self.instance;
        Ok(match &self.exports {
            Exports::V0_1_0(e) => {
                e.handle_webhook(i, store, &delivery.into()).await?.map(v0_1_0::webhook_outcome).map_err(Into::into)
            }
            Exports::V0_2_0(e) => {
                e.handle_webhook(i, store, &delivery.into()).await?.map(Into::into).map_err(Into::into)
            }
        })
    }
}
