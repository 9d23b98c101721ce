//! A reader that walks a tar stream's block structure ahead of the `tar`
//! crate and refuses header entries (PAX `x`/`g`, GNU long names `L`/`K`)
//! bigger than Go's 1 MiB `maxSpecialFileSize`: the crate reads those into
//! memory whole, so a header that promises gigabytes would be an unbounded
//! allocation. Entry data passes through untouched.

use std::io::{self, Read};

/// Go's archive/tar limit on PAX and GNU long-name records.
pub const MAX_SPECIAL_FILE: u64 = 1 << 20;

const BLOCK: usize = 512;

enum State {
    /// Collecting the next header block.
    Header { got: usize },
    /// Collecting the extension blocks of an old GNU sparse header.
    SparseExt { got: usize },
    /// Passing `left` bytes of entry data (padding included) through;
    /// `pax` collects a PAX header's records to find a `size` override.
    Data { left: u64, pax: Option<Vec<u8>> },
}

pub struct TarGuard<R> {
    inner: R,
    state: State,
    block: [u8; BLOCK],
    /// The next entry's size from a PAX `size=` record.
    next_size: Option<u64>,
    /// The data size of an old GNU sparse entry, while its extension
    /// blocks are read.
    pending: u64,
}

impl<R: Read> TarGuard<R> {
    pub fn new(inner: R) -> Self {
        Self { inner, state: State::Header { got: 0 }, block: [0; BLOCK], next_size: None, pending: 0 }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Account for `buf` (bytes just read) against the block structure.
    fn observe(&mut self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            match &mut self.state {
                State::Header { got } | State::SparseExt { got } => {
                    let n = (BLOCK - *got).min(buf.len());
                    self.block[*got..*got + n].copy_from_slice(&buf[..n]);
                    *got += n;
                    buf = &buf[n..];
                    if *got == BLOCK {
                        self.state = if matches!(self.state, State::SparseExt { .. }) {
                            self.sparse_ext_done()
                        } else {
                            self.header_done()?
                        };
                    }
                }
                State::Data { left, pax } => {
                    let n = (*left).min(buf.len() as u64) as usize;
                    if let Some(p) = pax {
                        p.extend_from_slice(&buf[..n]);
                    }
                    *left -= n as u64;
                    buf = &buf[n..];
                    if *left == 0 {
                        if let Some(records) = pax.take() {
                            self.next_size = pax_size(&records)?;
                        }
                        self.state = State::Header { got: 0 };
                    }
                }
            }
        }
        Ok(())
    }

    fn header_done(&mut self) -> io::Result<State> {
        let h = &self.block;
        if h.iter().all(|b| *b == 0) {
            // End-of-archive marker (or padding): stay block-aligned.
            return Ok(State::Header { got: 0 });
        }
        let kind = h[156];
        let mut size = parse_number(&h[124..136])?;
        let special = matches!(kind, b'x' | b'g' | b'L' | b'K');
        if special && size > MAX_SPECIAL_FILE {
            return Err(invalid(format!(
                "archive/tar: header field too long: a {} header of {size} bytes (limit {MAX_SPECIAL_FILE})",
                kind as char
            )));
        }
        if !special {
            if let Some(s) = self.next_size.take() {
                size = s;
            }
        }
        let padded = size.div_ceil(BLOCK as u64) * BLOCK as u64;
        let pax = (kind == b'x').then(Vec::new);
        // An old GNU sparse header may be followed by extension blocks.
        if kind == b'S' && h[482] != 0 {
            self.pending = padded;
            return Ok(State::SparseExt { got: 0 });
        }
        Ok(if padded == 0 { State::Header { got: 0 } } else { State::Data { left: padded, pax } })
    }

    fn sparse_ext_done(&mut self) -> State {
        if self.block[504] != 0 {
            return State::SparseExt { got: 0 };
        }
        match std::mem::take(&mut self.pending) {
            0 => State::Header { got: 0 },
            left => State::Data { left, pax: None },
        }
    }
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.observe(&buf[..n])?;
        Ok(n)
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// A tar number field: octal text, or base-256 when the top bit is set.
fn parse_number(field: &[u8]) -> io::Result<u64> {
    if field[0] & 0x80 != 0 {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            v = v.checked_mul(256).and_then(|v| v.checked_add(u64::from(*b))).ok_or_else(|| invalid("tar size overflows".into()))?;
        }
        return Ok(v);
    }
    let text = std::str::from_utf8(field).map_err(|_| invalid("invalid tar header size".into()))?;
    let text = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8).map_err(|_| invalid(format!("invalid tar header size {text:?}")))
}

/// The `size` record of PAX extended header records (`"%d size=%d\n"`).
fn pax_size(records: &[u8]) -> io::Result<Option<u64>> {
    let mut rest = records;
    let mut size = None;
    while !rest.is_empty() && rest[0] != 0 {
        let Some(space) = rest.iter().position(|b| *b == b' ') else { break };
        let len: usize = std::str::from_utf8(&rest[..space]).ok().and_then(|s| s.parse().ok()).unwrap_or(0);
        if len <= space || len > rest.len() {
            break;
        }
        let record = &rest[space + 1..len];
        if let Some(value) = record.strip_prefix(b"size=") {
            // The first `size` counts, as for the tar crate.
            let value = value.strip_suffix(b"\n").unwrap_or(value);
            size = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok());
            break;
        }
        rest = &rest[len..];
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(entries: &[(tar::Header, Vec<u8>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (h, data) in entries {
            b.append(h, &data[..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn header(kind: tar::EntryType, path: &str, size: usize) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_path(path).unwrap();
        h.set_size(size as u64);
        h.set_mode(0o644);
        h.set_cksum();
        h
    }

    fn entries(bytes: &[u8]) -> io::Result<Vec<(String, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut archive = tar::Archive::new(TarGuard::new(bytes));
        for e in archive.entries()? {
            let mut e = e?;
            let mut data = Vec::new();
            e.read_to_end(&mut data)?;
            out.push((e.path()?.display().to_string(), data));
        }
        Ok(out)
    }

    #[test]
    fn ordinary_archives_pass_through() {
        let mut b = tar::Builder::new(Vec::new());
        b.append_data(&mut header(tar::EntryType::Regular, "a", 3), "a", &b"abc"[..]).unwrap();
        // A long name (GNU `L`) and a long link.
        let long = "d/".repeat(100) + "f";
        b.append_data(&mut header(tar::EntryType::Regular, "x", 600), &long, &[7u8; 600][..]).unwrap();
        b.append_link(&mut header(tar::EntryType::Symlink, "l", 0), "l", &long).unwrap();
        let bytes = b.into_inner().unwrap();
        let got = entries(&bytes).unwrap();
        assert_eq!(got[0], ("a".into(), b"abc".to_vec()));
        assert_eq!(got[1], (long.clone(), vec![7u8; 600]));
        assert_eq!(got[2].0, "l");
    }

    #[test]
    fn pax_size_overrides_are_followed() {
        // A PAX header whose `size` replaces the ustar header's.
        let record = "12 size=700\n";
        let mut data_header = header(tar::EntryType::Regular, "big", 0);
        data_header.set_size(0);
        data_header.set_cksum();
        let mut bytes = tar_with(&[(header(tar::EntryType::XHeader, "pax", record.len()), record.as_bytes().to_vec())]);
        bytes.truncate(bytes.len() - 1024);
        bytes.extend_from_slice(data_header.as_bytes());
        bytes.extend_from_slice(&[9u8; 700]);
        bytes.extend_from_slice(&[0u8; 1024 - 700 % 512 + 1024]);
        let mut guard = TarGuard::new(&bytes[..]);
        io::copy(&mut guard, &mut io::sink()).unwrap();
        assert!(matches!(guard.state, State::Header { .. }));
        let got = entries(&bytes).unwrap();
        assert_eq!(got[0], ("big".into(), vec![9u8; 700]));
    }

    #[test]
    fn oversize_header_entries_are_refused_before_they_are_read() {
        for kind in [tar::EntryType::XHeader, tar::EntryType::GNULongName, tar::EntryType::XGlobalHeader] {
            // Claims 8 GiB; only the header block is there.
            let mut h = header(kind, "h", 0);
            h.set_size(8 << 30);
            h.set_cksum();
            let err = entries(h.as_bytes()).unwrap_err();
            assert!(err.to_string().contains("header field too long"), "{err}");
        }
        // Within the limit is fine.
        let mut name = vec![b'n'; 4000];
        name.push(0);
        let mut bytes = tar_with(&[(header(tar::EntryType::GNULongName, "././@LongLink", name.len()), name)]);
        bytes.truncate(bytes.len() - 1024);
        bytes.extend_from_slice(&tar_with(&[(header(tar::EntryType::Regular, "short", 1), vec![1])]));
        assert_eq!(entries(&bytes).unwrap()[0].0, "n".repeat(4000));
    }

    #[test]
    fn numbers_in_octal_and_base_256() {
        assert_eq!(parse_number(b"00000001750\0").unwrap(), 1000);
        let mut b256 = [0u8; 12];
        b256[0] = 0x80;
        b256[11] = 5;
        assert_eq!(parse_number(&b256).unwrap(), 5);
        assert!(parse_number(&[0xff; 12]).is_err());
        assert_eq!(pax_size(b"12 size=700\n20 path=some/file\n").unwrap(), Some(700));
        assert_eq!(pax_size(b"garbage").unwrap(), None);
    }
}
