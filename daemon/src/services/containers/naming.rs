//! Container names: validation and the generated `adjective_surname` names.

use crate::services::ServiceError;

/// dockerd's rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, with an optional slash.
pub fn validate(name: &str) -> Result<String, ServiceError> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let mut bytes = bare.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok = bare.len() >= 2 && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if first_ok && rest_ok {
        Ok(format!("/{bare}"))
    } else {
        Err(ServiceError::InvalidParameter(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

const LEFT: &[&str] = &[
    "admiring", "amazing", "bold", "brave", "busy", "calm", "clever", "cool", "eager", "elated",
    "epic", "festive", "focused", "gallant", "gifted", "happy", "hopeful", "jolly", "keen", "kind",
    "lucid", "modest", "nifty", "optimistic", "peaceful", "quirky", "relaxed", "serene", "sharp",
    "stoic", "tender", "upbeat", "vibrant", "wizardly", "youthful", "zealous",
];

const RIGHT: &[&str] = &[
    "albattani", "bardeen", "bohr", "curie", "darwin", "dijkstra", "einstein", "euler", "faraday",
    "fermi", "galileo", "gauss", "hopper", "hypatia", "kepler", "knuth", "lamport", "liskov",
    "lovelace", "maxwell", "meitner", "newton", "noether", "pascal", "ritchie", "shannon",
    "tesla", "thompson", "torvalds", "turing", "wozniak", "yalow",
];

/// A random `adjective_surname`; after collisions, a digit is appended as
/// dockerd does.
pub fn generate(attempt: u32) -> String {
    let r = uuid::Uuid::new_v4().as_u128();
    let left = LEFT[(r % LEFT.len() as u128) as usize];
    let right = RIGHT[((r >> 32) % RIGHT.len() as u128) as usize];
    if attempt == 0 {
        format!("/{left}_{right}")
    } else {
        format!("/{left}_{right}{}", (r >> 64) % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(validate("web").unwrap(), "/web");
        assert_eq!(validate("/web-1.a_b").unwrap(), "/web-1.a_b");
        for bad in ["", "a", "-x", "x y", "x/y", "_x"] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        assert!(validate(&generate(0)).is_ok());
        assert!(validate(&generate(3)).is_ok());
    }
}
