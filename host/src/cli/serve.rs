use crate::api::auth::AdminTokens;
use crate::api::{self, ApiState};
use crate::demo::{self, DemoUpstreams};
use crate::settings::Settings;
use crate::{Host, HostOptions};
use anyhow::{Context, Result};
use axum::Router;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use url::Url;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address for the HTTP server (port 0 picks a free one).
    #[arg(long, env = "INLET_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// Start local fakes of Monzo, Google Sheets, Spotify, GitHub and Oura,
    /// connect a group to each and sync its integrations, so syncs can be
    /// seen without any account.
    #[arg(long)]
    demo: bool,

    /// A bearer token the admin API accepts besides the stored ones (prefer
    /// the environment variable: command lines are visible to other users).
    #[arg(long, env = "INLET_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
}

/// Where the first start leaves the admin token it made, in the data folder.
pub const FIRST_TOKEN_FILE: &str = "admin-token";

pub async fn run(mut settings: Settings, options: HostOptions, args: ServeArgs) -> Result<()> {
    // The fake upstreams must exist before the host starts, so the overrides
    // that point the providers' hosts at them are part of the host's settings.
    let demo_upstream = if args.demo {
        let fakes = DemoUpstreams::start(options.clock.now_ms()).await?;
        for (host, base_url) in fakes.overrides() {
            settings.upstream_overrides.insert(host, &base_url)?;
        }
        Some(fakes)
    } else {
        None
    };
    let host = Host::start(&settings, options).await?;
    for plugin in host.runner.plugins.plugins() {
        eprintln!(
            "plugin {} {} (contract {}) loaded from {}",
            plugin.id(),
            plugin.manifest.version,
            plugin.contract(),
            plugin.path.display()
        );
    }
    for failure in host.runner.plugins.failures() {
        eprintln!("plugin file {} skipped: {}", failure.path.display(), failure.reason);
    }
    if let Some(fake) = &demo_upstream {
        demo::run(&host, fake).await?;
    }

    let tokens = AdminTokens::new(args.admin_token.as_deref())?;
    if let Some(token) = tokens.create_first(host.store()).await? {
        // Only its digest is stored: this is the one time it can be read.
        // Into a private file, not the log: logs are kept and shipped.
        let file = host.settings.data_dir.join(FIRST_TOKEN_FILE);
        let _ = std::fs::remove_file(&file); // one left by an earlier database
        crate::private_files::write_new(&file, format!("{token}\n").as_bytes())?;
        eprintln!(
            "admin API token written to {} (readable by this user only): keep it elsewhere and delete the file",
            file.display()
        );
    }

    let host = Arc::new(host);
    let background = host.start_background(true);
    let listener = bind(args.listen).await?;
    let public_url = match &host.settings.public_url {
        Some(url) => url.clone(),
        None => Url::parse(&format!("http://{}", listener.local_addr()?))?,
    };
    let stopping = stop_on_signal();
    let state = ApiState::new(Arc::clone(&host), public_url, tokens, stopping.clone());
    serve_http(listener, api::router(state), stopping).await?;
    background.stop().await;
    host.runner.notifier.flush().await;
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// Address for /healthz (port 0 picks a free one).
    #[arg(long, env = "INLET_WORKER_LISTEN", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
}

pub async fn worker(settings: Settings, options: HostOptions, args: WorkerArgs) -> Result<()> {
    let host = Host::start(&settings, options).await?;
    let background = host.start_background(false);
    serve_http(bind(args.listen).await?, api::health_router(), stop_on_signal()).await?;
    background.stop().await;
    host.runner.notifier.flush().await;
    Ok(())
}

async fn bind(listen: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))
}

/// Serve HTTP until `stopping` turns true, then let requests in flight finish.
async fn serve_http(listener: TcpListener, app: Router, stopping: watch::Receiver<bool>) -> Result<()> {
    // Printed on stdout so scripts (and tests) can find a port chosen with :0.
    println!("inlet listening on http://{}", listener.local_addr()?);
    api::server::serve(listener, app, stopping).await;
    Ok(())
}

/// Turns true on SIGTERM or SIGINT. Long-lived responses (the updates
/// stream) watch it too, or graceful shutdown would wait for them forever.
fn stop_on_signal() -> watch::Receiver<bool> {
    let (stop, stopping) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    stopping
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = interrupt => {},
        _ = terminate.recv() => {},
    }
    eprintln!("shutting down");
}
