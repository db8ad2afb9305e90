//! Where the demo's logs go: stderr, as text for people or JSON lines for
//! a log collector (`--log-format`).
//!
//! `RUST_LOG` chooses what is logged. Without it, text logs nothing (the
//! live view and the report stay readable) and JSON logs `info` and above:
//! asking for JSON means asking for logs.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (the default; nothing unless `RUST_LOG` is set).
    #[default]
    Text,
    /// One JSON object per line, with the fields of the spans around each
    /// event (`task_attempt`: `task_id`, `attempt`, `worker`, `priority`;
    /// `restart`: `child`, `incarnation`, `reason`).
    Json,
}

/// Installs the process's subscriber, writing to stderr. Errors if one is
/// installed already.
pub fn init_logging(format: LogFormat) -> Result<(), String> {
    let default = match format {
        LogFormat::Text => "off",
        LogFormat::Json => "info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.try_init(),
        // Every span around the event, outermost first, so one line says
        // which task and attempt it belongs to.
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .try_init(),
    }
    .map_err(|e| e.to_string())
}
