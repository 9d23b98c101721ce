//! Log drivers berthd serves and their options, checked as dockerd checks
//! them: `json-file` (dockerd's default), `local` and `none`.

use std::collections::BTreeMap;

use super::json_file::Rotation;
use crate::config::container_defaults::parse_size;

/// How a container's output is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogDriver {
    /// dockerd's `json-file`: the file is the container's `LogPath`.
    JsonFile(Rotation),
    /// dockerd's `local`: rotated and compressed by default; its files are
    /// internal (berthd writes them in the json-file format).
    Local(Rotation),
    /// Nothing kept; `docker logs` is refused.
    None,
}

pub const DEFAULT_DRIVER: &str = "json-file";

const JSON_FILE_OPTS: &[&str] = &["max-size", "max-file", "compress", "labels", "labels-regex", "env", "env-regex", "tag"];
const LOCAL_OPTS: &[&str] = &["max-size", "max-file", "compress"];

impl LogDriver {
    /// The driver `kind` with `opts`, or dockerd's error text.
    pub fn parse(kind: &str, opts: &BTreeMap<String, String>) -> Result<Self, String> {
        let allowed: &[&str] = match kind {
            "json-file" => JSON_FILE_OPTS,
            "local" => LOCAL_OPTS,
            "none" => &[],
            other => return Err(format!("error looking up logging plugin {other}: plugin \"{other}\" not found")),
        };
        if kind != "none" {
            check_delivery_mode(opts)?;
        }
        let builtin = |k: &str| BUILTIN_OPTS.contains(&k) && kind != "none";
        if let Some(unknown) = opts.keys().find(|k| !allowed.contains(&k.as_str()) && !builtin(k)) {
            return Err(format!("unknown log opt '{unknown}' for {kind} log driver"));
        }
        match kind {
            "json-file" => Ok(Self::JsonFile(rotation(opts, Rotation::default())?)),
            "local" => {
                Ok(Self::Local(rotation(opts, Rotation { max_size: 20 * 1024 * 1024, max_files: 5, compress: true })?))
            }
            _ => Ok(Self::None),
        }
    }

    pub fn reads(&self) -> bool {
        !matches!(self, Self::None)
    }
}

/// Options dockerd takes for every driver (its `builtInLogOpts`).
const BUILTIN_OPTS: &[&str] = &["mode", "max-buffer-size"];

/// moby's `ValidateLogOpts` for the delivery mode. berthd's writers keep
/// the blocking behaviour; the options are taken and shown as dockerd does.
fn check_delivery_mode(opts: &BTreeMap<String, String>) -> Result<(), String> {
    let mode = opts.get("mode").map(String::as_str).unwrap_or_default();
    if !matches!(mode, "" | "blocking" | "non-blocking") {
        return Err(format!("logger: logging mode not supported: {mode}"));
    }
    if let Some(size) = opts.get("max-buffer-size") {
        if mode != "non-blocking" {
            return Err("logger: max-buffer-size option is only supported with 'mode=non-blocking'".into());
        }
        parse_size(size).map_err(|e| format!("error parsing option max-buffer-size: {e}"))?;
    }
    Ok(())
}

fn rotation(opts: &BTreeMap<String, String>, defaults: Rotation) -> Result<Rotation, String> {
    let init = |e: String| format!("failed to initialize logging driver: {e}");
    let mut r = defaults;
    if let Some(size) = opts.get("max-size") {
        r.max_size = u64::try_from(parse_size(size).map_err(init)?).unwrap_or(0);
    }
    if let Some(files) = opts.get("max-file") {
        let n: i64 = files
            .parse()
            .map_err(|_| init(format!("strconv.Atoi: parsing \"{files}\": invalid syntax")))?;
        if n < 1 {
            return Err(init("max-file cannot be less than 1".into()));
        }
        r.max_files = u32::try_from(n).unwrap_or(u32::MAX);
    }
    if let Some(flag) = opts.get("compress") {
        r.compress = match flag.as_str() {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => true,
            "0" | "f" | "F" | "false" | "FALSE" | "False" => false,
            other => return Err(init(format!("strconv.ParseBool: parsing \"{other}\": invalid syntax"))),
        };
    }
    if r.compress && r.max_files == 1 && r.max_size > 0 {
        return Err(init("compression cannot be enabled when max file count is 1".into()));
    }
    // Without a size there is nothing to rotate (dockerd: max-file alone is ignored).
    if r.max_size == 0 {
        r.max_files = 1;
        r.compress = false;
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn drivers_and_their_errors() {
        assert_eq!(LogDriver::parse("json-file", &opts(&[])).unwrap(), LogDriver::JsonFile(Rotation::default()));
        assert_eq!(
            LogDriver::parse("json-file", &opts(&[("max-size", "1k"), ("max-file", "3")])).unwrap(),
            LogDriver::JsonFile(Rotation { max_size: 1024, max_files: 3, compress: false })
        );
        assert_eq!(
            LogDriver::parse("foo", &opts(&[])).unwrap_err(),
            "error looking up logging plugin foo: plugin \"foo\" not found"
        );
        assert_eq!(
            LogDriver::parse("json-file", &opts(&[("foo", "bar")])).unwrap_err(),
            "unknown log opt 'foo' for json-file log driver"
        );
        assert_eq!(
            LogDriver::parse("json-file", &opts(&[("max-size", "abc")])).unwrap_err(),
            "failed to initialize logging driver: invalid size: 'abc'"
        );
        assert_eq!(
            LogDriver::parse("json-file", &opts(&[("max-size", "1k"), ("compress", "true")])).unwrap_err(),
            "failed to initialize logging driver: compression cannot be enabled when max file count is 1"
        );
        assert!(matches!(LogDriver::parse("local", &opts(&[])).unwrap(), LogDriver::Local(r) if r.compress && r.max_files == 5));
        assert!(!LogDriver::parse("none", &opts(&[])).unwrap().reads());
        let nb = opts(&[("mode", "non-blocking"), ("max-buffer-size", "1m")]);
        assert!(LogDriver::parse("local", &nb).is_ok());
        assert_eq!(LogDriver::parse("json-file", &opts(&[("mode", "x")])).unwrap_err(), "logger: logging mode not supported: x");
        assert_eq!(
            LogDriver::parse("json-file", &opts(&[("max-buffer-size", "1m")])).unwrap_err(),
            "logger: max-buffer-size option is only supported with 'mode=non-blocking'"
        );
        assert_eq!(
            LogDriver::parse("json-file", &opts(&[("mode", "non-blocking"), ("max-buffer-size", "x")])).unwrap_err(),
            "error parsing option max-buffer-size: invalid size: 'x'"
        );
    }
}
