//! Host-path binds: `HostConfig.Binds` entries (`SRC:DST[:OPTS]`) and
//! `--mount type=bind`.

use std::path::PathBuf;

use api_types::mount::Mount;

use serde_json::{json, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
    pub propagation: String,
    /// The options as given (`ro`, `ro,rshared`, …), which inspect shows.
    pub mode: String,
    /// `bind` instead of `rbind` (`bind-nonrecursive`).
    pub non_recursive: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BindError {
    #[error("invalid volume specification: '{0}'")]
    Invalid(String),
    #[error("invalid mount config: named volume '{0}' is not supported by berthd yet")]
    NamedVolume(String),
}

pub const PROPAGATIONS: &[&str] = &["private", "rprivate", "shared", "rshared", "slave", "rslave"];

pub fn parse_bind(spec: &str) -> Result<Bind, BindError> {
    let invalid = || BindError::Invalid(spec.to_string());
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, destination, options) = match parts.as_slice() {
        [src, dst] => (*src, *dst, ""),
        [src, dst, opts] => (*src, *dst, *opts),
        _ => return Err(invalid()),
    };
    if !destination.starts_with('/') || source.is_empty() {
        return Err(invalid());
    }
    if !source.starts_with('/') {
        return Err(BindError::NamedVolume(source.to_string()));
    }
    let mut bind = Bind {
        source: source.into(),
        destination: destination.to_string(),
        read_only: false,
        propagation: "rprivate".into(),
        mode: options.to_string(),
        non_recursive: false,
    };
    for opt in options.split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => bind.read_only = true,
            "rw" => bind.read_only = false,
            // SELinux relabelling and consistency hints have no effect here.
            "z" | "Z" | "consistent" | "cached" | "delegated" | "nocopy" => {}
            p if PROPAGATIONS.contains(&p) => bind.propagation = p.to_string(),
            _ => return Err(invalid()),
        }
    }
    Ok(bind)
}

impl Bind {
    /// A `--mount type=bind` entry (already validated by the service).
    pub fn from_mount(m: &Mount) -> Self {
        let options = m.bind_options.as_ref();
        Bind {
            source: m.source.clone().into(),
            destination: m.target.clone(),
            read_only: m.read_only,
            propagation: options.map(|o| o.propagation.clone()).filter(|p| !p.is_empty()).unwrap_or_else(|| "rprivate".into()),
            mode: String::new(),
            non_recursive: options.is_some_and(|o| o.non_recursive),
        }
    }

    pub fn to_oci_mount(&self) -> Value {
        let kind = if self.non_recursive { "bind" } else { "rbind" };
        let mut options = vec![kind.to_string(), self.propagation.clone()];
        if self.read_only {
            options.push("ro".into());
        }
        json!({"destination": self.destination, "type": "bind", "source": self.source, "options": options})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dockerd_forms() {
        let b = parse_bind("/srv/data:/data:ro,rshared").unwrap();
        assert_eq!(b.source, PathBuf::from("/srv/data"));
        assert!(b.read_only);
        assert_eq!(b.propagation, "rshared");
        assert_eq!(b.to_oci_mount()["options"], json!(["rbind", "rshared", "ro"]));
        assert!(!parse_bind("/a:/b").unwrap().read_only);
    }

    #[test]
    fn rejects_bad_specs() {
        assert_eq!(parse_bind("/a"), Err(BindError::Invalid("/a".into())));
        assert_eq!(parse_bind("/a:b"), Err(BindError::Invalid("/a:b".into())));
        assert_eq!(parse_bind("/a:/b:bogus"), Err(BindError::Invalid("/a:/b:bogus".into())));
        assert_eq!(parse_bind("vol:/b"), Err(BindError::NamedVolume("vol".into())));
    }
}
