//! API versions: parsing, ordering and the range berthd serves.

use std::fmt;
use std::str::FromStr;

/// A Docker Engine API version such as `1.47`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    pub major: u16,
    pub minor: u16,
}

/// The oldest API version served (what dockerd 25+ still accepts).
pub const MIN_API_VERSION: ApiVersion = ApiVersion::new(1, 24);
/// The newest API version served: what docker CLI 28 and compose 2.40 speak.
pub const MAX_API_VERSION: ApiVersion = ApiVersion::new(1, 51);

impl ApiVersion {
    pub const fn new(major: u16, minor: u16) -> Self {
        Self { major, minor }
    }

    /// True when this version is at least `major.minor`.
    pub fn at_least(self, major: u16, minor: u16) -> bool {
        self >= Self::new(major, minor)
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// A version string that is not `MAJOR.MINOR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidApiVersion(pub String);

impl FromStr for ApiVersion {
    type Err = InvalidApiVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidApiVersion(s.to_string());
        let (major, minor) = s.split_once('.').ok_or_else(invalid)?;
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if !digits(major) || !digits(minor) {
            return Err(invalid());
        }
        Ok(Self::new(
            major.parse().map_err(|_| invalid())?,
            minor.parse().map_err(|_| invalid())?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_orders() {
        let v: ApiVersion = "1.41".parse().unwrap();
        assert_eq!(v, ApiVersion::new(1, 41));
        assert!(v < "1.100".parse().unwrap());
        assert!(v.at_least(1, 40));
        assert!(!v.at_least(1, 42));
        assert_eq!(v.to_string(), "1.41");
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "1", "1.", ".1", "a.b", "1.2.3", "1.-2", "+1.2"] {
            assert!(bad.parse::<ApiVersion>().is_err(), "{bad}");
        }
    }

    #[test]
    fn range_is_sane() {
        assert!(MIN_API_VERSION < MAX_API_VERSION);
    }
}
