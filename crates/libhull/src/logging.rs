//! Logging: tracing output written where `--log` says, as logrus-style text or as runc's JSON
//! lines (`{"level":"error","msg":...,"time":...}`) that containerd and podman parse.
//!
//! The writer takes no lock and formats each event into one buffer written with one `write(2)`,
//! so the container init, forked from the single-threaded parent, can keep logging through the
//! inherited descriptor, and its lines never interleave with the parent's (`O_APPEND`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("invalid log-format: {0}")]
    InvalidFormat(String),
    #[error("open {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("a global logger is already installed")]
    AlreadySet,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// logrus' text formatter: `time="..." level=error msg="..."`.
    #[default]
    Text,
    /// logrus' JSON formatter: one object per line, keys sorted.
    Json,
}

impl std::str::FromStr for Format {
    type Err = LogError;

    fn from_str(s: &str) -> Result<Format, LogError> {
        match s {
            "" | "text" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            other => Err(LogError::InvalidFormat(other.to_string())),
        }
    }
}

/// What [`init`] installed.
#[derive(Debug)]
pub struct Logging {
    to_stderr: bool,
}

impl Logging {
    /// Whether log lines go to stderr. When they do not, a failing command also prints its
    /// error on stderr, as runc does, for callers (conmon) that only read stderr.
    pub fn writes_to_stderr(&self) -> bool {
        self.to_stderr
    }
}

/// Installs the global logger: `log` (created if missing, appended to) or stderr.
///
/// Errors and warnings are logged, as runc logs them, plus debug and up with `debug`; a JSON
/// log file gets errors only, since podman reads it as one object.
pub fn init(log: Option<&Path>, format: Format, debug: bool) -> Result<Logging, LogError> {
    let (output, to_stderr) = match log {
        Some(path) => (Output::File(open_log(path)?), false),
        None => (Output::Stderr, true),
    };
    let max = if debug {
        Level::DEBUG
    } else if format == Format::Text {
        Level::WARN
    } else {
        Level::ERROR
    };
    let layer = LogLayer::new(output, format, max);
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
        .map_err(|_| LogError::AlreadySet)?;
    Ok(Logging { to_stderr })
}

/// Opens the log file as runc does: `O_CREAT|O_WRONLY|O_APPEND`, mode 0644. containerd reports
/// "unable to retrieve OCI runtime error" when the file is missing, so this comes first.
fn open_log(path: &Path) -> Result<File, LogError> {
    File::options()
        .create(true)
        .append(true)
        .mode(0o644)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| LogError::Open {
            path: path.to_path_buf(),
            reason: errno_text(&e),
        })
}

/// Rewords every `Some text (os error N)` that Rust's io::Error prints into Go's lowercase
/// `some text`, as runc's messages read: docker and podman pick exit codes 126/127 by matching
/// "permission denied" and "no such file or directory".
pub fn go_error_text(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(at) = rest.find(" (os error ") {
        let tail = &rest[at + " (os error ".len()..];
        let Some(close) = tail.find(')') else { break };
        let Ok(n) = tail[..close].parse::<i32>() else {
            out.push_str(&rest[..at + 1]);
            rest = &rest[at + 1..];
            continue;
        };
        let std_text = io::Error::from_raw_os_error(n).to_string();
        let desc = std_text
            .strip_suffix(&format!(" (os error {n})"))
            .unwrap_or(&std_text);
        let head = &rest[..at];
        match head.strip_suffix(desc) {
            Some(prefix) => {
                out.push_str(prefix);
                out.push_str(&errno_text(&io::Error::from_raw_os_error(n)));
            }
            None => out.push_str(head),
        }
        rest = &tail[close + 1..];
    }
    out.push_str(rest);
    out
}

/// An io::Error worded as Go words it ("no such file or directory"), which clients match.
pub(crate) fn errno_text(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let desc = nix::errno::Errno::from_raw(n).desc();
            let mut chars = desc.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => e.to_string(),
            }
        }
        None => e.to_string(),
    }
}

#[derive(Debug)]
enum Output {
    Stderr,
    File(File),
}

impl Output {
    /// Writes the whole line with as few `write(2)` calls as the kernel allows (one for a
    /// regular file), retrying on EINTR. Errors are dropped: there is nowhere to report them.
    fn write_line(&self, buf: &[u8]) {
        match self {
            // Stderr::as_fd does not take the std lock around stderr.
            Output::Stderr => write_all(io::stderr().as_fd(), buf),
            Output::File(f) => write_all(f.as_fd(), buf),
        }
    }
}

fn write_all(fd: BorrowedFd<'_>, mut buf: &[u8]) {
    while !buf.is_empty() {
        match nix::unistd::write(fd, buf) {
            Ok(0) => return,
            Ok(n) => buf = &buf[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// The tracing layer that writes runc-compatible lines.
#[derive(Debug)]
pub struct LogLayer {
    output: Output,
    format: Format,
    max: Level,
}

impl LogLayer {
    fn new(output: Output, format: Format, max: Level) -> LogLayer {
        LogLayer {
            output,
            format,
            max,
        }
    }

    /// A layer writing to `file`, for use with a scoped subscriber (tests, tools).
    pub fn to_file(file: File, format: Format, max: Level) -> LogLayer {
        LogLayer::new(Output::File(file), format, max)
    }
}

impl<S: Subscriber> Layer<S> for LogLayer {
    fn enabled(&self, metadata: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        *metadata.level() <= self.max
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if *event.metadata().level() > self.max {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let line = format_line(
            self.format,
            *event.metadata().level(),
            &fields.message,
            &fields.extra,
            &timestamp(),
        );
        self.output.write_line(line.as_bytes());
    }
}

/// The event's message and its other fields.
#[derive(Default)]
struct Fields {
    message: String,
    extra: BTreeMap<String, serde_json::Value>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_value(field, serde_json::Value::String(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record_value(field, serde_json::Value::String(value.to_string()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_value(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record_value(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record_value(field, value.into());
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_value(field, serde_json::Value::String(value.to_string()));
    }
}

impl Fields {
    fn record_value(&mut self, field: &Field, value: serde_json::Value) {
        if field.name() == "message" {
            self.message = match value {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
        } else {
            self.extra.insert(field.name().to_string(), value);
        }
    }
}

/// logrus' level names.
fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// RFC 3339 in local time, to the second, as logrus' default timestamp.
fn timestamp() -> String {
    chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// One log line, newline included.
fn format_line(
    format: Format,
    level: Level,
    msg: &str,
    extra: &BTreeMap<String, serde_json::Value>,
    time: &str,
) -> String {
    match format {
        Format::Json => {
            // logrus marshals a map: every key, fixed or not, in sorted order.
            let mut obj = extra.clone();
            obj.insert("level".into(), level_name(level).into());
            obj.insert("msg".into(), msg.into());
            obj.insert("time".into(), time.into());
            let mut line = serde_json::to_string(&obj).unwrap_or_default();
            line = escape_html(&line);
            line.push('\n');
            line
        }
        Format::Text => {
            let mut line = String::new();
            let _ = write!(
                line,
                "time={} level={} msg={}",
                text_value(time),
                level_name(level),
                text_value(msg)
            );
            for (key, value) in extra {
                let value = match value {
                    serde_json::Value::String(s) => text_value(s),
                    other => text_value(&other.to_string()),
                };
                let _ = write!(line, " {key}={value}");
            }
            line.push('\n');
            line
        }
    }
}

/// Go's JSON encoder escapes `<`, `>`, `&`, U+2028 and U+2029; those only occur inside strings.
fn escape_html(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// logrus' text value: bare when it is made only of safe characters, else Go-quoted.
fn text_value(s: &str) -> String {
    let bare = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/@^+".contains(c));
    if bare {
        s.to_string()
    } else {
        go_quote(s)
    }
}

/// Go's `%q` of a string.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                if (c as u32) <= 0xffff {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                } else {
                    let _ = write!(out, "\\U{:08x}", c as u32);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn format_parses() {
        assert_eq!("json".parse::<Format>().unwrap(), Format::Json);
        assert_eq!("text".parse::<Format>().unwrap(), Format::Text);
        assert_eq!("".parse::<Format>().unwrap(), Format::Text);
        let err = "xml".parse::<Format>().unwrap_err();
        assert_eq!(err.to_string(), "invalid log-format: xml");
    }

    #[test]
    fn json_line_is_runc_shaped() {
        let line = format_line(
            Format::Json,
            Level::ERROR,
            "container does not exist",
            &BTreeMap::new(),
            "2024-01-01T00:00:00Z",
        );
        assert_eq!(
            line,
            "{\"level\":\"error\",\"msg\":\"container does not exist\",\"time\":\"2024-01-01T00:00:00Z\"}\n"
        );
    }

    #[test]
    fn json_levels_are_lowercase_and_keys_sorted() {
        let mut extra = BTreeMap::new();
        extra.insert("id".to_string(), serde_json::Value::from("c1"));
        extra.insert("pid".to_string(), serde_json::Value::from(42));
        for (level, name) in [
            (Level::ERROR, "error"),
            (Level::WARN, "warning"),
            (Level::INFO, "info"),
            (Level::DEBUG, "debug"),
        ] {
            let line = format_line(Format::Json, level, "a <b> & \"c\"", &extra, "T");
            assert!(line.ends_with('\n') && !line[..line.len() - 1].contains('\n'));
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["level"], name);
            assert_eq!(v["msg"], "a <b> & \"c\"");
            assert_eq!(v["pid"], 42);
            let keys: Vec<_> = line.match_indices("\":").map(|(i, _)| i).collect();
            assert_eq!(keys.len(), 5, "{line}");
            assert!(line.starts_with("{\"id\":"), "{line}");
            assert!(line.contains("\\u003cb\\u003e \\u0026"), "{line}");
        }
    }

    #[test]
    fn text_line_is_logrus_shaped() {
        let line = format_line(
            Format::Text,
            Level::ERROR,
            "container does not exist",
            &BTreeMap::new(),
            "2024-01-01T00:00:00Z",
        );
        assert_eq!(
            line,
            "time=\"2024-01-01T00:00:00Z\" level=error msg=\"container does not exist\"\n"
        );
        let mut extra = BTreeMap::new();
        extra.insert("pid".to_string(), serde_json::Value::from(7));
        let line = format_line(Format::Text, Level::WARN, "plain", &extra, "T");
        assert_eq!(line, "time=T level=warning msg=plain pid=7\n");
    }

    #[test]
    fn go_quote_escapes() {
        assert_eq!(go_quote("a\"b\\c\nd\x01"), "\"a\\\"b\\\\c\\nd\\x01\"");
        assert_eq!(go_quote("ü"), "\"ü\"");
        assert_eq!(text_value(""), "\"\"");
    }

    #[test]
    fn errno_is_worded_like_go() {
        let e = io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(errno_text(&e), "no such file or directory");
        let e = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(
            go_error_text(&format!(
                "open /x: {e}; stat /y: {}",
                io::Error::from_raw_os_error(2)
            )),
            "open /x: permission denied; stat /y: no such file or directory"
        );
        assert_eq!(go_error_text("plain (os error x)"), "plain (os error x)");
        let e = io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(errno_text(&e), "permission denied");
    }

    #[test]
    fn layer_writes_one_line_per_event_above_the_threshold() {
        let dir = std::env::temp_dir().join(format!("hull-log-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.json");
        let file = open_log(&path).unwrap();
        let layer = LogLayer::to_file(file, Format::Json, Level::ERROR);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!("not written");
            tracing::warn!("not written either");
            tracing::error!(id = "c1", "create failed: {}", "boom");
        });
        let mut text = String::new();
        File::open(&path)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        let mode = std::fs::metadata(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o644 & !current_umask()
        );
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "create failed: boom");
        assert_eq!(v["id"], "c1");
        let time = v["time"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(time).is_ok(), "{time}");
    }

    fn current_umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
        u32::from_str_radix(line.split_whitespace().nth(1).unwrap(), 8).unwrap()
    }
}
