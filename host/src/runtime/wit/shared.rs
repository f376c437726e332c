//! What every contract version shares unchanged since 0.1.0: the host side
//! of its imports and the conversions of its types. Each version module
//! expands [`shared_since_0_1_0`] next to its bindings; when a version changes
//! an interface or a type, that piece moves out of here into the versions.

/// The shared imports and conversions, as a `shared` module inside the
/// version module that expands it (its `inlet::plugin` bindings are `super`).
macro_rules! shared_since_0_1_0 {
    () => {
        mod shared {
            use super::inlet::plugin::types::*;
            use super::inlet::plugin::{batches, credentials, http, log, signature, state, types};
            use crate::capabilities as cap;
            use crate::domain::{manifest as dm, plugin_call as dc, records as dr, trigger::Trigger as DomainTrigger};
            use crate::runtime::context::PluginCtx;

            impl types::Host for PluginCtx {}

            /// `http.send` but for the request's auth, which each version
            /// reads its own way (`auth`).
            pub(super) async fn send(
                ctx: &mut PluginCtx,
                request: http::Request,
                auth: cap::http::Auth,
            ) -> wasmtime::Result<Result<http::Response, http::Error>> {
                let request = cap::http::Request {
                    method: match request.method {
                        http::Method::Get => cap::http::Method::Get,
                        http::Method::Head => cap::http::Method::Head,
                        http::Method::Post => cap::http::Method::Post,
                        http::Method::Put => cap::http::Method::Put,
                        http::Method::Patch => cap::http::Method::Patch,
                        http::Method::Delete => cap::http::Method::Delete,
                    },
                    url: request.url,
                    headers: request.headers,
                    body: request.body,
                    auth,
                    timeout_ms: request.timeout_ms,
                };
                // The request may take a while: what the plugin logged
                // before it can be followed meanwhile.
                ctx.take_printed_lines();
                cap::log::flush(&mut ctx.scope, cap::log::Flush::Now).await?;
                Ok(match cap::http::send(&mut ctx.scope, request).await? {
                    Ok(r) => Ok(http::Response { status: r.status, headers: r.headers, body: r.body }),
                    Err(error) => Err(match error {
                        cap::http::Error::Denied(m) => http::Error::Denied(m),
                        cap::http::Error::Timeout => http::Error::Timeout,
                        cap::http::Error::TooLarge(n) => http::Error::TooLarge(n),
                        cap::http::Error::RateLimited(s) => http::Error::RateLimited(s),
                        cap::http::Error::Unauthorized(m) => http::Error::Unauthorized(m),
                        cap::http::Error::Transport(m) => http::Error::Transport(m),
                    }),
                })
            }

            pub(super) fn oauth2(o: Oauth2Auth) -> dm::OAuth2Endpoints {
                dm::OAuth2Endpoints {
                    authorize_url: o.authorize_url,
                    token_url: o.token_url,
                    scopes: o.scopes,
                    refresh_token_rotates: o.refresh_token_rotates,
                    pkce: o.pkce,
                }
            }

            impl state::Host for PluginCtx {
                async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
                    cap::state::get(&mut self.scope, key).await
                }

                async fn set(&mut self, key: String, value: String) -> wasmtime::Result<()> {
                    cap::state::set(&mut self.scope, key, value)
                }

                async fn delete(&mut self, key: String) -> wasmtime::Result<()> {
                    cap::state::delete(&mut self.scope, key)
                }
            }

            impl batches::Host for PluginCtx {
                async fn emit(&mut self, batch: RawBatch) -> wasmtime::Result<Result<(), String>> {
                    cap::batches::emit(&mut self.scope, batch.into())
                }

                async fn checkpoint(&mut self) -> wasmtime::Result<Result<(), String>> {
                    cap::batches::checkpoint(&mut self.scope).await
                }
            }

            impl log::Host for PluginCtx {
                async fn log(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
                    let level = match level {
                        log::Level::Trace => cap::log::Level::Trace,
                        log::Level::Debug => cap::log::Level::Debug,
                        log::Level::Info => cap::log::Level::Info,
                        log::Level::Warn => cap::log::Level::Warn,
                        log::Level::Error => cap::log::Level::Error,
                    };
                    self.take_printed_lines();
                    cap::log::log(&mut self.scope, level, message).await
                }

                async fn progress(&mut self, done: u64, total: Option<u64>) -> wasmtime::Result<()> {
                    self.take_printed_lines();
                    cap::log::flush(&mut self.scope, cap::log::Flush::WhenDue).await?;
                    cap::log::progress(&mut self.scope, done, total).await
                }
            }

            impl signature::Host for PluginCtx {
                async fn verify(
                    &mut self,
                    scheme: signature::Scheme,
                    payload: Vec<u8>,
                    signature: String,
                ) -> wasmtime::Result<bool> {
                    let scheme = match scheme {
                        signature::Scheme::HmacSha256Hex => cap::signature::Scheme::HmacSha256Hex,
                        signature::Scheme::HmacSha256Base64 => cap::signature::Scheme::HmacSha256Base64,
                        signature::Scheme::SlackV0(timestamp) => cap::signature::Scheme::SlackV0(timestamp),
                    };
                    Ok(cap::signature::check(&mut self.scope, scheme, payload, signature))
                }
            }

            impl credentials::Host for PluginCtx {
                async fn get(&mut self, field: String) -> wasmtime::Result<Option<String>> {
                    cap::credentials::get(&mut self.scope, field)
                }
            }

            impl From<Manifest> for dm::Manifest {
                fn from(m: Manifest) -> Self {
                    dm::Manifest {
                        // First, while `m` is whole.
                        quotas: super::quotas(&m),
                        id: m.id,
                        name: m.name,
                        version: m.version,
                        description: m.description,
                        auth: super::auth(m.auth),
                        webhook: m.webhook.map(|w| match w {
                            WebhookAuth::Signature => dm::WebhookAuth::Signature,
                            WebhookAuth::SharedSecretHeader(header) => dm::WebhookAuth::SharedSecretHeader(header),
                        }),
                        rate_limit: m
                            .rate_limit
                            .map(|r| dm::RateLimit { requests: r.requests, per_seconds: r.per_seconds }),
                        needs_raw_credentials: m.needs_raw_credentials,
                        instance_types: (m.instance_types.into_iter())
                            .map(|t| dm::InstanceType {
                                default_schedule: (&t.default_schedule).into(),
                                id: t.id,
                                name: t.name,
                                description: t.description,
                                kind: match t.kind {
                                    InstanceKind::Integration => dm::InstanceKind::Integration,
                                    InstanceKind::Task => dm::InstanceKind::Task,
                                },
                                hosts: t.hosts,
                                config_schema: t.config_schema,
                                default_backfill_days: t.default_backfill_days,
                            })
                            .collect(),
                    }
                }
            }

            /// A manifest's default schedule, as the host's own type.
            impl From<&Schedule> for crate::schedule::Schedule {
                fn from(schedule: &Schedule) -> Self {
                    match schedule {
                        Schedule::Interval(seconds) => Self::Interval { seconds: *seconds },
                        Schedule::Cron(cron) => {
                            Self::Cron { expressions: cron.expressions.clone(), timezone: cron.timezone.clone() }
                        }
                        Schedule::Manual => Self::Manual,
                    }
                }
            }

            impl From<&dc::FetchRequest> for FetchRequest {
                fn from(r: &dc::FetchRequest) -> Self {
                    FetchRequest {
                        instance_type: r.instance_type.clone(),
                        config: r.config.clone(),
                        mode: match r.mode {
                            dc::FetchMode::Incremental => FetchMode::Incremental,
                            dc::FetchMode::Backfill(since) => FetchMode::Backfill(since),
                        },
                        trigger: match r.trigger {
                            DomainTrigger::Schedule => Trigger::Schedule,
                            DomainTrigger::Manual => Trigger::Manual,
                            DomainTrigger::Webhook => Trigger::Webhook,
                            DomainTrigger::Retry => Trigger::Retry,
                            DomainTrigger::Backfill => Trigger::Backfill,
                            // A reprocess never fetches; were it to, an operator asked.
                            DomainTrigger::Reprocess => Trigger::Manual,
                        },
                    }
                }
            }

            impl From<PluginError> for dc::PluginError {
                fn from(error: PluginError) -> Self {
                    match error {
                        PluginError::Transient(m) => dc::PluginError::Transient(m),
                        PluginError::RateLimited(r) => dc::PluginError::RateLimited {
                            retry_after_seconds: r.retry_after_seconds,
                            message: r.message,
                        },
                        PluginError::Unauthorized(m) => dc::PluginError::Unauthorized(m),
                        PluginError::InvalidConfig(m) => dc::PluginError::InvalidConfig(m),
                        PluginError::Permanent(m) => dc::PluginError::Permanent(m),
                    }
                }
            }

            impl From<RawBatch> for dc::RawBatch {
                fn from(b: RawBatch) -> Self {
                    dc::RawBatch { kind: b.kind, payload: b.payload }
                }
            }

            impl From<&dc::RawBatch> for RawBatch {
                fn from(b: &dc::RawBatch) -> Self {
                    RawBatch { kind: b.kind.clone(), payload: b.payload.clone() }
                }
            }

            impl From<RoutedBatch> for dc::RoutedBatch {
                fn from(r: RoutedBatch) -> Self {
                    dc::RoutedBatch { instance_type: r.instance_type, batch: r.batch.into() }
                }
            }

            impl From<&dc::WebhookDelivery> for WebhookDelivery {
                fn from(d: &dc::WebhookDelivery) -> Self {
                    WebhookDelivery { headers: d.headers.clone(), body: d.body.clone(), received_at: d.received_at }
                }
            }

            impl From<Records> for dr::Records {
                fn from(records: Records) -> Self {
                    let class = |class: RecordClass| match class {
                        RecordClass::Object => dr::RecordClass::Object,
                        RecordClass::Event => dr::RecordClass::Event,
                        RecordClass::Block => dr::RecordClass::Block,
                    };
                    dr::Records {
                        objects: records.objects.into_iter().map(Into::into).collect(),
                        events: records.events.into_iter().map(Into::into).collect(),
                        blocks: (records.blocks.into_iter())
                            .map(|b| dr::BlockRecord {
                                external_id: b.external_id,
                                kind: b.kind,
                                event_id: b.event_id,
                                data: b.data,
                            })
                            .collect(),
                        deleted: (records.deleted.into_iter())
                            .map(|t| dr::Tombstone { class: class(t.class), kind: t.kind, external_id: t.external_id })
                            .collect(),
                    }
                }
            }

            impl From<ObjectRecord> for dr::ObjectRecord {
                fn from(o: ObjectRecord) -> Self {
                    dr::ObjectRecord { external_id: o.external_id, kind: o.kind, name: o.name, data: o.data }
                }
            }

            impl From<dr::ObjectRecord> for ObjectRecord {
                fn from(o: dr::ObjectRecord) -> Self {
                    ObjectRecord { external_id: o.external_id, kind: o.kind, name: o.name, data: o.data }
                }
            }

            impl From<EventRecord> for dr::EventRecord {
                fn from(e: EventRecord) -> Self {
                    dr::EventRecord {
                        external_id: e.external_id,
                        kind: e.kind,
                        occurred_at: e.occurred_at,
                        actor: e.actor,
                        target: e.target,
                        value: e.value,
                        unit: e.unit,
                        data: e.data,
                    }
                }
            }

            /// Records read back for a task (0.2.0's `records`).
            impl From<dr::EventRecord> for EventRecord {
                fn from(e: dr::EventRecord) -> Self {
                    EventRecord {
                        external_id: e.external_id,
                        kind: e.kind,
                        occurred_at: e.occurred_at,
                        actor: e.actor,
                        target: e.target,
                        value: e.value,
                        unit: e.unit,
                        data: e.data,
                    }
                }
            }
        }
    };
}

pub(super) use shared_since_0_1_0;

/// The world's four exports, as an `Exports` next to the bindings of the
/// version that expands it; `$webhook_answer` is what its `handle-webhook`
/// answers. The generated bindings' `PluginPre` type-checks all four exports
/// again at every instantiation (8% of a plugin call); these are looked up
/// and checked once per component, and each instance's are reached by index.
macro_rules! exports {
    ($webhook_answer:ty) => {
        use wasmtime::component::{ComponentExportIndex, Instance, InstancePre, TypedFunc};

        /// The exports of one component, found and type-checked.
        #[derive(Clone, Copy)]
        pub struct Exports {
            describe: ComponentExportIndex,
            fetch: ComponentExportIndex,
            process: ComponentExportIndex,
            handle_webhook: ComponentExportIndex,
        }

        /// Find export `name` and check it against the host's signature.
        fn checked<P, R, T>(pre: &InstancePre<T>, name: &str) -> wasmtime::Result<ComponentExportIndex>
        where
            P: wasmtime::component::ComponentNamedList + wasmtime::component::Lower,
            R: wasmtime::component::ComponentNamedList + wasmtime::component::Lift,
        {
            match pre.component().get_export(None, name) {
                Some((wasmtime::component::types::ComponentItem::ComponentFunc(func), index)) => {
                    func.typecheck::<P, R>(&pre.instance_type())
                        .map_err(|e| wasmtime::format_err!("its export `{name}` has the wrong type: {e}"))?;
                    Ok(index)
                }
                Some(_) => Err(wasmtime::format_err!("its export `{name}` is not a function")),
                None => Err(wasmtime::format_err!("it has no export `{name}`")),
            }
        }

        impl Exports {
            pub fn new<T>(pre: &InstancePre<T>) -> wasmtime::Result<Exports> {
                Ok(Exports {
                    describe: checked::<(), (Manifest,), T>(pre, "describe")?,
                    fetch: checked::<(&FetchRequest,), (Result<FetchSummary, PluginError>,), T>(pre, "fetch")?,
                    process: checked::<(&RawBatch,), (Result<Records, PluginError>,), T>(pre, "process")?,
                    handle_webhook: checked::<(&WebhookDelivery,), (Result<$webhook_answer, PluginError>,), T>(
                        pre,
                        "handle-webhook",
                    )?,
                })
            }

            /// Call export `index` of `instance` as a `TypedFunc<P, R>`.
            async fn call<P, R>(
                index: &ComponentExportIndex,
                instance: &Instance,
                store: &mut wasmtime::Store<crate::runtime::context::PluginCtx>,
                params: P,
            ) -> wasmtime::Result<R>
            where
                P: wasmtime::component::ComponentNamedList + wasmtime::component::Lower + Send + Sync,
                R: wasmtime::component::ComponentNamedList + wasmtime::component::Lift + Send + Sync + 'static,
            {
                let func = instance.get_func(&mut *store, index).expect("the index was found in this component");
                // SAFETY: `Exports::new` checked this export of this
                // component against exactly these types.
                let typed = unsafe { TypedFunc::<P, R>::new_unchecked(func) };
                typed.call_async(store, params).await
            }

            pub async fn describe(
                &self,
                instance: &Instance,
                store: &mut wasmtime::Store<crate::runtime::context::PluginCtx>,
            ) -> wasmtime::Result<Manifest> {
                Ok(Self::call::<(), (Manifest,)>(&self.describe, instance, store, ()).await?.0)
            }

            pub async fn fetch(
                &self,
                instance: &Instance,
                store: &mut wasmtime::Store<crate::runtime::context::PluginCtx>,
                request: &FetchRequest,
            ) -> wasmtime::Result<Result<FetchSummary, PluginError>> {
                Ok(Self::call::<(&FetchRequest,), (Result<FetchSummary, PluginError>,)>(
                    &self.fetch,
                    instance,
                    store,
                    (request,),
                )
                .await?
                .0)
            }

            pub async fn process(
                &self,
                instance: &Instance,
                store: &mut wasmtime::Store<crate::runtime::context::PluginCtx>,
                batch: &RawBatch,
            ) -> wasmtime::Result<Result<Records, PluginError>> {
                Ok(Self::call::<(&RawBatch,), (Result<Records, PluginError>,)>(
                    &self.process,
                    instance,
                    store,
                    (batch,),
                )
                .await?
                .0)
            }

            pub async fn handle_webhook(
                &self,
                instance: &Instance,
                store: &mut wasmtime::Store<crate::runtime::context::PluginCtx>,
                delivery: &WebhookDelivery,
            ) -> wasmtime::Result<Result<$webhook_answer, PluginError>> {
                Ok(Self::call::<(&WebhookDelivery,), (Result<$webhook_answer, PluginError>,)>(
                    &self.handle_webhook,
                    instance,
                    store,
                    (delivery,),
                )
                .await?
                .0)
            }
        }
    };
}

pub(super) use exports;
