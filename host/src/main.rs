use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = inlet::cli::Cli::parse();
    // `inlet plugin` reports what it finds itself; the scratch host's own
    // warnings (the failures it provokes on purpose) would only be noise.
    let default_filter = if cli.is_plugin_command() { "error" } else { "warn,inlet=info" };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_env("INLET_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter)))
        .with_writer(std::io::stderr)
        // A log line that cannot be written (a full disk under a redirected
        // stderr) is lost; reporting that with eprintln! would panic the
        // task that logged, a worker's loop among them.
        .log_internal_errors(false)
        .init();
    match inlet::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
