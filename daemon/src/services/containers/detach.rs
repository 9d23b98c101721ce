//! Detach keys: the key sequence (default ctrl-p ctrl-q) that ends an
//! attached TTY session without stopping the process, as moby's
//! `term.ToBytes` and `term.NewEscapeProxy`.

/// ctrl-p, ctrl-q.
const DEFAULT_KEYS: [u8; 2] = [16, 17];

/// `ctrl-@`, `ctrl-a` … `ctrl-z`, `ctrl-[`, `ctrl-\`, `ctrl-]`, `ctrl-^`,
/// `ctrl-_` are the control codes 0..=31 in order.
const CTRL_NAMES: &[u8; 32] = b"@abcdefghijklmnopqrstuvwxyz[\\]^_";

/// Parse `detachKeys` (comma-separated: a single character, `ctrl-<x>` or
/// `DEL`); empty means the default. The error is the offending key.
pub fn parse(keys: &str) -> Result<Vec<u8>, String> {
    if keys.is_empty() {
        return Ok(DEFAULT_KEYS.to_vec());
    }
    keys.split(',')
        .map(|key| match key.as_bytes() {
            [c] => Ok(*c),
            b"DEL" => Ok(127),
            [b'c', b't', b'r', b'l', b'-', c] => {
                CTRL_NAMES.iter().position(|n| n == c).map(|code| code as u8).ok_or_else(|| key.to_string())
            }
            _ => Err(key.to_string()),
        })
        .collect()
}

/// Watches a client's input for the detach sequence. Bytes that may start
/// the sequence are held back until it is clear they do not.
pub struct EscapeProxy {
    keys: Vec<u8>,
    matched: usize,
}

impl EscapeProxy {
    pub fn new(keys: Vec<u8>) -> Self {
        let keys = if keys.is_empty() { DEFAULT_KEYS.to_vec() } else { keys };
        Self { keys, matched: 0 }
    }

    /// Pass `input` through: returns the bytes for the process and whether
    /// the sequence is complete (the input after it is dropped). As moby, a
    /// byte that breaks a partial match releases the held bytes and is not
    /// itself taken as the start of a new match.
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    return (out, true);
                }
                continue;
            }
            out.extend_from_slice(&self.keys[..self.matched]);
            out.push(b);
            self.matched = 0;
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dockers_key_names() {
        assert_eq!(parse("").unwrap(), vec![16, 17]);
        assert_eq!(parse("ctrl-a,x,ctrl-\\,DEL,ctrl-@,ctrl-_").unwrap(), vec![1, b'x', 28, 127, 0, 31]);
        assert_eq!(parse("ctrl-A").unwrap_err(), "ctrl-A");
        assert_eq!(parse("ab").unwrap_err(), "ab");
        assert_eq!(parse("a,").unwrap_err(), "");
    }

    #[test]
    fn holds_back_a_partial_sequence_and_detaches_on_the_whole() {
        let mut p = EscapeProxy::new(vec![16, 17]);
        assert_eq!(p.feed(b"ls\x10"), (b"ls".to_vec(), false));
        assert_eq!(p.feed(b"a"), (b"\x10a".to_vec(), false));
        assert_eq!(p.feed(b"x\x10"), (b"x".to_vec(), false));
        assert_eq!(p.feed(b"\x11rest"), (vec![], true));
        let mut p = EscapeProxy::new(vec![16, 17]);
        // The byte that breaks a match does not start a new one (moby).
        assert_eq!(p.feed(b"\x10\x10\x11"), (b"\x10\x10\x11".to_vec(), false));
        let mut p = EscapeProxy::new(vec![b'x']);
        assert_eq!(p.feed(b"echo ax\r"), (b"echo a".to_vec(), true));
    }
}
