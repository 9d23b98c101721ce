//! The daemon's own log: level (changed on reload), and `log-format` text
//! (tracing's) or json (dockerd's logrus keys: `level`, `msg`, `time`).

use std::fmt;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

type FilterHandle = reload::Handle<EnvFilter, Registry>;

static FILTER: OnceLock<FilterHandle> = OnceLock::new();

/// Libraries that are noisy at debug level.
const QUIET: &str = "h2=warn,hyper=warn,tower=warn,rustls=warn,reqwest=warn";

/// The filter for a level as dockerd names them (`debug` wins over level).
fn filter(debug: bool, level: &str) -> EnvFilter {
    let level = if debug { "debug" } else { level };
    let level = match level {
        "fatal" | "panic" => "error",
        other => other,
    };
    EnvFilter::new(format!("{level},{QUIET}"))
}

/// Install the subscriber. `BERTHD_LOG` (an env-filter) overrides the level
/// and is kept across reloads.
pub fn init(config: &crate::config::Config) {
    let from_env = std::env::var("BERTHD_LOG").ok().and_then(|v| EnvFilter::try_new(v).ok());
    let pinned = from_env.is_some();
    let (layer, handle) = reload::Layer::new(from_env.unwrap_or_else(|| filter(config.debug, &config.log_level)));
    let registry = tracing_subscriber::registry().with(layer);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let installed = if config.log_format == "json" {
        registry.with(fmt.event_format(JsonFormat)).try_init()
    } else {
        registry.with(fmt).try_init()
    };
    if installed.is_ok() && !pinned {
        let _ = FILTER.set(handle);
    }
}

/// Apply a reloaded `debug` / `log-level`.
pub fn set_level(debug: bool, level: &str) {
    if let Some(handle) = FILTER.get() {
        if let Err(e) = handle.reload(filter(debug, level)) {
            tracing::warn!(error = %e, "could not change the log level");
        }
    }
}

/// One JSON object per line with logrus's keys, so log shippers set up for
/// dockerd read berthd unchanged.
struct JsonFormat;

impl<S, N> FormatEvent<S, N> for JsonFormat
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &tracing::Event<'_>) -> fmt::Result {
        let mut fields = JsonFields(serde_json::Map::new());
        event.record(&mut fields);
        let mut line = fields.0;
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "error",
            tracing::Level::WARN => "warning",
            tracing::Level::INFO => "info",
            tracing::Level::DEBUG => "debug",
            tracing::Level::TRACE => "trace",
        };
        line.insert("level".into(), level.into());
        let msg = line.remove("message").unwrap_or_else(|| "".into());
        line.insert("msg".into(), msg);
        line.insert(
            "time".into(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true).into(),
        );
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

struct JsonFields(serde_json::Map<String, serde_json::Value>);

impl Visit for JsonFields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_string(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), value.into());
    }
}
