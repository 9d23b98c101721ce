//! Image references: Docker's name grammar and normalization
//! (`busybox` → `docker.io/library/busybox:latest`), and content digests.
//!
//! The grammar is distribution/reference's, written out as a small hand
//! parser:
//!
//! ```text
//! reference     := name [ ":" tag ] [ "@" digest ]
//! name          := [ domain "/" ] path-component { "/" path-component }
//! domain        := host [ ":" port-digits ]
//! host          := domain-component { "." domain-component } | "[" ipv6-hex-and-colons "]"
//! domain-comp   := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! path-component:= [a-z0-9]+ { separator [a-z0-9]+ }
//! separator     := "." | "_" | "__" | "-"+
//! tag           := [\w][\w.-]{0,127}
//! digest        := algorithm ":" hex{32,}   (then checked per algorithm)
//! ```
//!
//! A name is at most 255 characters (domain included).

use std::fmt;

/// Docker Hub's canonical domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The legacy name of Docker Hub, folded into [`DEFAULT_DOMAIN`].
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of official images on Docker Hub.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag added to a bare name.
pub const DEFAULT_TAG: &str = "latest";
/// The longest repository name (domain included).
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host with optional port: `docker.io`, `localhost:5000`.
    pub domain: String,
    /// Repository path inside the registry: `library/busybox`.
    pub path: String,
    pub tag: Option<String>,
    /// `algorithm:hex`, already validated by [`Digest::parse`].
    pub digest: Option<String>,
}

/// Why a string is not an image reference. `Display` gives Docker's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidReference {
    /// `invalid reference format`
    Format,
    /// The repository part has uppercase letters; carries that part.
    Uppercase(String),
    /// The whole string is a 64-hex image ID, not a name; carries it.
    /// Callers resolving local images can look it up as an ID instead.
    Identifier(String),
    /// The name (domain included) is longer than 255 characters.
    NameTooLong,
    /// The `@digest` part is well-formed but not a valid digest.
    Digest(InvalidDigest),
}

impl fmt::Display for InvalidReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Format => f.write_str("invalid reference format"),
            Self::Uppercase(repo) => write!(
                f,
                "invalid reference format: repository name ({repo}) must be lowercase"
            ),
            Self::Identifier(id) => write!(
                f,
                "invalid repository name ({id}), cannot specify 64-byte hexadecimal strings"
            ),
            Self::NameTooLong => write!(
                f,
                "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
            ),
            Self::Digest(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for InvalidReference {}

impl InvalidReference {
    /// True when the input was a bare 64-hex image ID rather than a name.
    pub fn is_identifier(&self) -> bool {
        matches!(self, Self::Identifier(_))
    }
}

/// Why a string is not a content digest. `Display` gives go-digest's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidDigest {
    /// `invalid checksum digest format`
    Format,
    /// `invalid checksum digest length`
    Length,
    /// `unsupported digest algorithm`
    Unsupported,
}

impl fmt::Display for InvalidDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Format => "invalid checksum digest format",
            Self::Length => "invalid checksum digest length",
            Self::Unsupported => "unsupported digest algorithm",
        })
    }
}

impl std::error::Error for InvalidDigest {}

/// A validated content digest: `sha256:<64 lowercase hex>` (also `sha384`
/// and `sha512` with their lengths, as go-digest accepts).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Validates `algorithm:encoded` as go-digest's `Digest.Validate` does.
    pub fn parse(s: &str) -> Result<Self, InvalidDigest> {
        let Some((algorithm, encoded)) = s.split_once(':') else {
            return Err(InvalidDigest::Format);
        };
        if algorithm.is_empty() || encoded.is_empty() {
            return Err(InvalidDigest::Format);
        }
        let hex_len = match algorithm {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            _ => {
                return Err(if is_digest_pattern(s) {
                    InvalidDigest::Unsupported
                } else {
                    InvalidDigest::Format
                })
            }
        };
        if encoded.len() != hex_len {
            return Err(InvalidDigest::Length);
        }
        if !encoded.bytes().all(is_lower_hex) {
            return Err(InvalidDigest::Format);
        }
        Ok(Self(s.to_owned()))
    }

    /// `sha256:<hex>` from 64 lowercase hex characters (a computed hash).
    pub fn sha256_from_hex(hex: &str) -> Result<Self, InvalidDigest> {
        Self::parse(&format!("sha256:{hex}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `sha256`, `sha384` or `sha512`.
    pub fn algorithm(&self) -> &str {
        self.0.split_once(':').map(|(a, _)| a).unwrap_or_default()
    }

    /// The hex part after the colon.
    pub fn encoded(&self) -> &str {
        self.0.split_once(':').map(|(_, e)| e).unwrap_or_default()
    }

    pub fn is_sha256(&self) -> bool {
        self.algorithm() == "sha256"
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Digest {
    type Err = InvalidDigest;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl AsRef<str> for Digest {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// True for a bare image ID: exactly 64 lowercase hex characters.
pub fn is_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(is_lower_hex)
}

impl Reference {
    /// Parses a name as the docker CLI and dockerd accept it, filling in
    /// Docker Hub's domain and `library/` namespace (distribution/reference
    /// `ParseNormalizedNamed`). No default tag is added; see
    /// [`Reference::with_default_tag`].
    pub fn parse_normalized(s: &str) -> Result<Self, InvalidReference> {
        if is_identifier(s) {
            return Err(InvalidReference::Identifier(s.to_owned()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split_once(':').map_or(remainder.as_str(), |(r, _)| r);
        if remote.to_lowercase() != remote {
            return Err(InvalidReference::Uppercase(remote.to_owned()));
        }
        parse_full(&domain, &remainder)
    }

    /// Adds the `latest` tag when the reference has neither tag nor digest.
    pub fn with_default_tag(mut self) -> Self {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some(DEFAULT_TAG.to_owned());
        }
        self
    }

    /// dockerd's `ParseDockerRef` shape: a reference with both tag and
    /// digest keeps only the digest; a bare name gets `latest`.
    pub fn docker_ref(mut self) -> Self {
        if self.digest.is_some() {
            self.tag = None;
            self
        } else {
            self.with_default_tag()
        }
    }

    /// The same repository with the given tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Self, InvalidReference> {
        if !is_tag(tag) {
            return Err(InvalidReference::Format);
        }
        Ok(Self {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_owned()),
            digest: None,
        })
    }

    /// The same repository pinned to a digest, without tag.
    pub fn with_digest(&self, digest: &Digest) -> Self {
        Self {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: Some(digest.as_str().to_owned()),
        }
    }

    /// `domain/path`: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The name as the CLI shows it: `busybox`, `user/app`,
    /// `localhost:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.domain != DEFAULT_DOMAIN {
            return self.name();
        }
        match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
            Some(rest) if !rest.contains('/') => rest.to_owned(),
            _ => self.path.clone(),
        }
    }

    /// The familiar name with `:tag` and/or `@digest`: `busybox:latest`.
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    /// True for Docker Hub (`docker.io`) references.
    pub fn is_docker_hub(&self) -> bool {
        self.domain == DEFAULT_DOMAIN
    }

    /// The digest as a typed value (validated at parse time).
    pub fn digest(&self) -> Option<Digest> {
        self.digest.as_deref().and_then(|d| Digest::parse(d).ok())
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(digest);
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl std::str::FromStr for Reference {
    type Err = InvalidReference;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_normalized(s)
    }
}

/// distribution/reference `splitDockerDomain`.
fn split_docker_domain(name: &str) -> (String, String) {
    let Some((maybe_domain, maybe_remote)) = name.split_once('/') else {
        return (
            DEFAULT_DOMAIN.to_owned(),
            format!("{OFFICIAL_REPO_PREFIX}{name}"),
        );
    };
    let (domain, mut remote) = if maybe_domain == "localhost"
        || maybe_domain.contains(['.', ':'])
        || maybe_domain.to_lowercase() != maybe_domain
    {
        let domain = if maybe_domain == LEGACY_DEFAULT_DOMAIN {
            DEFAULT_DOMAIN
        } else {
            maybe_domain
        };
        (domain.to_owned(), maybe_remote.to_owned())
    } else {
        (DEFAULT_DOMAIN.to_owned(), name.to_owned())
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        remote = format!("{OFFICIAL_REPO_PREFIX}{remote}");
    }
    (domain, remote)
}

/// Parses `domain/remainder`, where `remainder` is `path[:tag][@digest]`.
fn parse_full(domain: &str, remainder: &str) -> Result<Reference, InvalidReference> {
    let (rest, digest) = match remainder.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (remainder, None),
    };
    // A tag's colon comes after the last slash; the domain has been split
    // off already, so any colon in `rest` belongs to a tag.
    let (path, tag) = match rest.split_once(':') {
        Some((path, tag)) => (path, Some(tag)),
        None => (rest, None),
    };
    if !is_domain(domain) || !is_remote_name(path) {
        return Err(InvalidReference::Format);
    }
    if let Some(tag) = tag {
        if !is_tag(tag) {
            return Err(InvalidReference::Format);
        }
    }
    if digest.is_some_and(|d| !is_digest_pattern(d)) {
        return Err(InvalidReference::Format);
    }
    if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(InvalidReference::NameTooLong);
    }
    let digest = match digest {
        Some(d) => Some(Digest::parse(d).map_err(InvalidReference::Digest)?.into_string()),
        None => None,
    };
    Ok(Reference {
        domain: domain.to_owned(),
        path: path.to_owned(),
        tag: tag.map(str::to_owned),
        digest,
    })
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `host[:port]`, host a dotted DNS-ish name, an IPv4 address, or `[ipv6]`.
pub fn is_domain(s: &str) -> bool {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return false;
        };
        if inner.is_empty() || !inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if s.starts_with('[') {
        return true;
    }
    !host.is_empty() && host.split('.').all(is_domain_component)
}

fn is_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    match b {
        [] => false,
        [only] => only.is_ascii_alphanumeric(),
        [first, middle @ .., last] => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && middle.iter().all(|&m| m.is_ascii_alphanumeric() || m == b'-')
        }
    }
}

/// One or more `/`-separated path components.
fn is_remote_name(s: &str) -> bool {
    !s.is_empty() && s.split('/').all(is_path_component)
}

/// `[a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*`
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    loop {
        // an alphanumeric run
        let start = i;
        while i < b.len() && is_lower_alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        // a separator
        let sep_start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        debug_assert!(i > sep_start);
    }
}

/// `[\w][\w.-]{0,127}`
pub fn is_tag(s: &str) -> bool {
    let b = s.as_bytes();
    match b.split_first() {
        Some((first, rest)) => {
            is_word(*first)
                && rest.len() <= 127
                && rest.iter().all(|&c| is_word(c) || c == b'.' || c == b'-')
        }
        None => false,
    }
}

/// distribution/reference's digest pattern:
/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`.
fn is_digest_pattern(s: &str) -> bool {
    let Some((algorithm, encoded)) = s.split_once(':') else {
        return false;
    };
    if encoded.len() < 32 || !encoded.bytes().all(|b| b.is_ascii_hexdigit()) {
        return false;
    }
    let b = algorithm.as_bytes();
    let mut expect_start = true;
    for &c in b {
        if expect_start {
            if !c.is_ascii_alphabetic() {
                return false;
            }
            expect_start = false;
        } else if matches!(c, b'-' | b'_' | b'+' | b'.') {
            expect_start = true;
        } else if !c.is_ascii_alphanumeric() {
            return false;
        }
    }
    !b.is_empty() && !expect_start
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa";

    fn parse(s: &str) -> Reference {
        Reference::parse_normalized(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> String {
        Reference::parse_normalized(s)
            .expect_err(s)
            .to_string()
    }

    #[test]
    fn bare_name_is_official_docker_hub_image() {
        let r = parse("busybox");
        assert_eq!(r.domain, "docker.io");
        assert_eq!(r.path, "library/busybox");
        assert_eq!(r.tag, None);
        assert_eq!(r.digest, None);
        assert_eq!(r.name(), "docker.io/library/busybox");
        assert_eq!(r.familiar_name(), "busybox");
        assert!(r.is_docker_hub());
        let r = r.with_default_tag();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.familiar_string(), "busybox:latest");
    }

    #[test]
    fn user_repositories_on_docker_hub() {
        let r = parse("user/app:1.0");
        assert_eq!((r.domain.as_str(), r.path.as_str()), ("docker.io", "user/app"));
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.familiar_string(), "user/app:1.0");
        assert_eq!(r.to_string(), "docker.io/user/app:1.0");
        let r = parse("docker.io/busybox");
        assert_eq!(r.path, "library/busybox");
        let r = parse("index.docker.io/library/busybox:1");
        assert_eq!(r.domain, "docker.io");
        assert_eq!(r.familiar_string(), "busybox:1");
        let r = parse("docker.io/library/a/b");
        assert_eq!(r.familiar_name(), "library/a/b");
        let r = parse("a/b/c");
        assert_eq!(r.domain, "docker.io");
        assert_eq!(r.path, "a/b/c");
    }

    #[test]
    fn registries_with_ports_and_addresses() {
        let r = parse("localhost:5000/x");
        assert_eq!((r.domain.as_str(), r.path.as_str()), ("localhost:5000", "x"));
        assert_eq!(r.familiar_name(), "localhost:5000/x");
        assert!(!r.is_docker_hub());
        let r = parse("localhost/x:t");
        assert_eq!(r.domain, "localhost");
        assert_eq!(r.tag.as_deref(), Some("t"));
        let r = parse("127.0.0.1:5000/a/b:t");
        assert_eq!(r.domain, "127.0.0.1:5000");
        assert_eq!(r.path, "a/b");
        assert_eq!(r.tag.as_deref(), Some("t"));
        assert_eq!(r.to_string(), "127.0.0.1:5000/a/b:t");
        assert_eq!(r.familiar_string(), "127.0.0.1:5000/a/b:t");
        let r = parse("[::1]:5000/x");
        assert_eq!(r.domain, "[::1]:5000");
        let r = parse("[fe80::1]/x");
        assert_eq!(r.domain, "[fe80::1]");
        let r = parse("registry.example.com/team/app");
        assert_eq!(r.domain, "registry.example.com");
        assert_eq!(r.path, "team/app");
        // An uppercase first component is taken as a domain.
        let r = parse("Example/app");
        assert_eq!(r.domain, "Example");
    }

    #[test]
    fn digests_and_tags_together() {
        let r = parse(&format!("x@sha256:{HEX}"));
        assert_eq!(r.path, "library/x");
        assert_eq!(r.tag, None);
        assert_eq!(r.digest.as_deref(), Some(format!("sha256:{HEX}").as_str()));
        assert_eq!(r.clone().with_default_tag(), r, "a digest needs no tag");
        assert_eq!(r.familiar_string(), format!("x@sha256:{HEX}"));
        let r = parse(&format!("x:t@sha256:{HEX}"));
        assert_eq!(r.tag.as_deref(), Some("t"));
        assert_eq!(r.to_string(), format!("docker.io/library/x:t@sha256:{HEX}"));
        assert_eq!(r.digest().map(|d| d.encoded().to_owned()), Some(HEX.to_owned()));
        let d = r.clone().docker_ref();
        assert_eq!(d.tag, None);
        assert!(d.digest.is_some());
        let r = parse(&format!("localhost:5000/x:t@sha256:{HEX}"));
        assert_eq!(r.domain, "localhost:5000");
        assert_eq!(parse("x").docker_ref().tag.as_deref(), Some("latest"));
    }

    #[test]
    fn path_component_separators() {
        for ok in ["a.b", "a_b", "a__b", "a-b", "a---b", "a0.b1-c2__d3", "0", "a/b.c/d-e"] {
            parse(ok);
        }
        for bad in ["a..b", "a___b", "_a", "a_", "a-", "-a", ".a", "a.", "a/", "/a", "a//b", "a-_b"] {
            assert_eq!(err(bad), "invalid reference format", "{bad}");
        }
    }

    #[test]
    fn tags() {
        parse("x:A_b.c-D");
        parse(&format!("x:{}", "a".repeat(128)));
        assert_eq!(err(&format!("x:{}", "a".repeat(129))), "invalid reference format");
        for bad in ["x:", "x:-a", "x:.a", "x:a b", "x:a:b", "x:a/b", "x@", ":t", ""] {
            assert_eq!(err(bad), "invalid reference format", "{bad:?}");
        }
    }

    #[test]
    fn uppercase_repository_is_reported_with_its_name() {
        assert_eq!(
            err("Busybox"),
            "invalid reference format: repository name (library/Busybox) must be lowercase"
        );
        assert_eq!(
            err("localhost:5000/Foo:t"),
            "invalid reference format: repository name (Foo) must be lowercase"
        );
        assert_eq!(
            err("user/App"),
            "invalid reference format: repository name (user/App) must be lowercase"
        );
        assert!(matches!(
            Reference::parse_normalized("Foo/Bar"),
            Err(InvalidReference::Uppercase(r)) if r == "Bar"
        ));
    }

    #[test]
    fn bare_id_is_told_apart() {
        let e = Reference::parse_normalized(HEX).unwrap_err();
        assert!(e.is_identifier());
        assert_eq!(
            e.to_string(),
            format!("invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings")
        );
        // 63 or 65 hex characters are plain names.
        parse(&HEX[..63]);
        parse(&format!("{HEX}0"));
    }

    #[test]
    fn bad_digests() {
        assert_eq!(err("x@sha256:abc"), "invalid reference format");
        assert_eq!(err(&format!("x@sha256:{HEX}@sha256:{HEX}")), "invalid reference format");
        assert_eq!(
            err(&format!("x@sha256:{}", HEX.to_uppercase())),
            "invalid checksum digest format"
        );
        assert_eq!(err(&format!("x@sha256:{}", &HEX[..40])), "invalid checksum digest length");
        assert_eq!(err(&format!("x@md5:{}", &HEX[..32])), "unsupported digest algorithm");
        parse(&format!("x@sha512:{HEX}{HEX}"));
    }

    #[test]
    fn bad_domains() {
        for bad in ["foo:bar/baz", "a-.com/x", "-a.com/x", "a.com:/x", "[zz]/x", "[::1/x", "a_b.c/d", "[]/x"] {
            assert_eq!(err(bad), "invalid reference format", "{bad}");
        }
    }

    #[test]
    fn name_length_limit_includes_domain() {
        let path = "a".repeat(NAME_TOTAL_LENGTH_MAX - "docker.io/".len());
        assert_eq!(parse(&format!("u/{}", &path[2..])).name().len(), NAME_TOTAL_LENGTH_MAX);
        assert_eq!(
            err(&format!("u/{}", &path[1..])),
            "repository name must not be more than 255 characters"
        );
    }

    #[test]
    fn with_tag_and_digest_builders() {
        let r = parse("busybox:1");
        assert_eq!(r.with_tag("2").unwrap().to_string(), "docker.io/library/busybox:2");
        assert!(r.with_tag("-x").is_err());
        let d = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        assert_eq!(r.with_digest(&d).familiar_string(), format!("busybox@sha256:{HEX}"));
        assert_eq!("busybox".parse::<Reference>().unwrap().familiar_name(), "busybox");
    }

    #[test]
    fn digest_validation() {
        let d = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        assert!(d.is_sha256());
        assert_eq!(d.algorithm(), "sha256");
        assert_eq!(d.encoded(), HEX);
        assert_eq!(d.to_string(), format!("sha256:{HEX}"));
        assert_eq!(Digest::sha256_from_hex(HEX).unwrap(), d);
        assert_eq!(Digest::parse(HEX), Err(InvalidDigest::Format));
        assert_eq!(Digest::parse("sha256:"), Err(InvalidDigest::Format));
        assert_eq!(Digest::parse(":abc"), Err(InvalidDigest::Format));
        assert_eq!(Digest::parse("sha256:abc"), Err(InvalidDigest::Length));
        assert_eq!(
            Digest::parse(&format!("sha256:{}", HEX.replace('a', "g"))),
            Err(InvalidDigest::Format)
        );
        assert_eq!(Digest::parse(&format!("foo:{HEX}")), Err(InvalidDigest::Unsupported));
        assert_eq!(Digest::parse("foo:xyz"), Err(InvalidDigest::Format));
        assert!(is_identifier(HEX));
        assert!(!is_identifier(&HEX.to_uppercase()));
    }
}
