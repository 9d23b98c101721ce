//! The `json-file` log format: one JSON object per line of output,
//! `{"log":"...\n","stream":"stdout","time":"..."}`, as dockerd writes it,
//! with dockerd's rotation (`max-size`, `max-file`, `compress`): the live
//! file is `<path>`, older ones `<path>.1` (newest) … `<path>.N`, gzipped
//! when compressed.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub log: String,
    pub stream: String,
    /// json-file's `labels`/`env`/`tag` log-opts, the same on every line.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
    pub time: String,
}

/// dockerd splits longer lines into several entries, so that one endless
/// line cannot hold unbounded memory.
pub const MAX_LINE: usize = 16 * 1024;

/// When the live file is rotated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    /// Bytes; 0 never rotates.
    pub max_size: u64,
    /// Files kept, the live one included (at least 1).
    pub max_files: u32,
    pub compress: bool,
}

impl Default for Rotation {
    fn default() -> Self {
        Self { max_size: 0, max_files: 1, compress: false }
    }
}

/// A container's log: where and how it rotates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFile {
    pub path: PathBuf,
    pub rotation: Rotation,
    pub attrs: BTreeMap<String, String>,
}

/// Appends entries; a partial line is held until its newline, `MAX_LINE`
/// bytes, or `flush`.
pub struct JsonFileWriter {
    log: LogFile,
    /// `log.attrs` encoded once.
    attrs: Vec<u8>,
    file: std::fs::File,
    /// Bytes of the live file, counting entries not yet written.
    size: u64,
    /// Bytes of the live file known to hold whole entries.
    committed: u64,
    /// Entries encoded but not yet written: written in one go per chunk of
    /// output, and cut off again if the write fails (a full disk), so the
    /// file never keeps a torn entry.
    out: Vec<u8>,
    partial: [Vec<u8>; 2],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout = 0,
    Stderr = 1,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Go's `time.RFC3339Nano`, as dockerd stores times: trailing zeros of the
/// fraction dropped.
fn now() -> String {
    let fixed = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let body = fixed.trim_end_matches('Z').trim_end_matches('0').trim_end_matches('.');
    format!("{body}Z")
}

/// A stored time with all nine digits of nanoseconds (as `docker logs -t`
/// shows it, and so that times order as strings).
fn fixed_time(time: &mut String) {
    let Some(body) = time.strip_suffix('Z') else { return };
    let digits = match body.rfind('.') {
        Some(dot) if dot > body.rfind(':').unwrap_or(0) => body.len() - dot - 1,
        _ => {
            time.insert_str(body.len(), ".");
            0
        }
    };
    if digits < 9 {
        let at = time.len() - 1;
        time.insert_str(at, &"000000000"[digits..]);
    }
}

/// A string as dockerd's json-file writes it (moby's jsonlog
/// `ffjsonWriteJSONBytesAsString`): `<`, `>`, `&` and control bytes other
/// than `\n`/`\r` as `\u00XX`, each invalid UTF-8 byte as `\ufffd`.
fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b < 0x80 {
            if b >= 0x20 && !matches!(b, b'\\' | b'"' | b'<' | b'>' | b'&') {
                i += 1;
                continue;
            }
            out.extend_from_slice(&s[start..i]);
            match b {
                b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                _ => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]),
            }
            i += 1;
            start = i;
            continue;
        }
        let width = match b {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 0,
        };
        let valid = if width == 0 { None } else { s.get(i..i + width).and_then(|c| std::str::from_utf8(c).ok()) };
        match valid {
            Some(c) if c == "\u{2028}" || c == "\u{2029}" => {
                out.extend_from_slice(&s[start..i]);
                out.extend_from_slice(if c == "\u{2028}" { b"\\u2028" } else { b"\\u2029" });
                i += width;
                start = i;
            }
            Some(_) => i += width,
            None => {
                out.extend_from_slice(&s[start..i]);
                out.extend_from_slice(b"\\ufffd");
                i += 1;
                start = i;
            }
        }
    }
    out.extend_from_slice(&s[start..]);
    out.push(b'"');
}

/// The `attrs` object as Go's encoding/json writes a `map[string]string`:
/// keys sorted, `<>&` escaped.
fn attrs_json(attrs: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::new();
    if attrs.is_empty() {
        return out;
    }
    let go_string = |out: &mut Vec<u8>, s: &str| {
        let json = serde_json::to_string(s).unwrap_or_default();
        out.extend_from_slice(
            json.replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026").replace('\u{2028}', "\\u2028").replace('\u{2029}', "\\u2029").as_bytes(),
        );
    };
    out.push(b'{');
    for (n, (k, v)) in attrs.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        go_string(&mut out, k);
        out.push(b':');
        go_string(&mut out, v);
    }
    out.push(b'}');
    out
}

/// `<path>.<n>`, or its gzipped form when that is what exists.
fn rotated(path: &Path, n: u32) -> Option<PathBuf> {
    let plain = PathBuf::from(format!("{}.{n}", path.display()));
    let gz = PathBuf::from(format!("{}.{n}.gz", path.display()));
    [plain, gz].into_iter().find(|p| p.exists())
}

impl JsonFileWriter {
    pub fn open(log: &LogFile) -> std::io::Result<Self> {
        if let Some(dir) = log.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log.path)?;
        let size = file.metadata()?.len();
        Ok(Self { log: log.clone(), attrs: attrs_json(&log.attrs), file, size, committed: size, out: Vec::new(), partial: [Vec::new(), Vec::new()] })
    }

    pub fn write(&mut self, stream: Stream, mut data: &[u8]) -> std::io::Result<()> {
        while let Some(pos) = data.iter().position(|b| *b == b'\n') {
            let mut line = std::mem::take(&mut self.partial[stream as usize]);
            line.extend_from_slice(&data[..=pos]);
            for piece in line.chunks(MAX_LINE) {
                self.entry(stream, piece)?;
            }
            data = &data[pos + 1..];
        }
        self.partial[stream as usize].extend_from_slice(data);
        while self.partial[stream as usize].len() >= MAX_LINE {
            let piece: Vec<u8> = self.partial[stream as usize].drain(..MAX_LINE).collect();
            self.entry(stream, &piece)?;
        }
        self.write_out()
    }

    /// Write held partial lines (at the end of the output).
    pub fn flush(&mut self) -> std::io::Result<()> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let line = std::mem::take(&mut self.partial[stream as usize]);
            if !line.is_empty() {
                self.entry(stream, &line)?;
            }
        }
        self.write_out()
    }

    /// Write the pending entries; on failure drop them and cut the file
    /// back to its last whole entry.
    fn write_out(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let result = self.file.write_all(&self.out);
        match &result {
            Ok(()) => self.committed += self.out.len() as u64,
            Err(_) => {
                let _ = self.file.set_len(self.committed);
                self.size = self.committed;
            }
        }
        self.out.clear();
        result
    }

    fn entry(&mut self, stream: Stream, line: &[u8]) -> std::io::Result<()> {
        // dockerd's field order and escaping, byte for byte.
        let mut bytes = Vec::with_capacity(line.len() + 64 + self.attrs.len());
        bytes.extend_from_slice(b"{\"log\":");
        write_string(&mut bytes, line);
        bytes.extend_from_slice(b",\"stream\":\"");
        bytes.extend_from_slice(stream.name().as_bytes());
        bytes.push(b'"');
        if !self.attrs.is_empty() {
            bytes.extend_from_slice(b",\"attrs\":");
            bytes.extend_from_slice(&self.attrs);
        }
        bytes.extend_from_slice(b",\"time\":\"");
        bytes.extend_from_slice(now().as_bytes());
        bytes.extend_from_slice(b"\"}\n");
        let max = self.log.rotation.max_size;
        if max > 0 && self.size > 0 && self.size + bytes.len() as u64 > max {
            self.write_out()?;
            self.rotate()?;
        }
        self.out.extend_from_slice(&bytes);
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// Shift `<path>.i` to `.i+1` (dropping the oldest), move the live
    /// file to `.1` (gzipped when compressing), and start a new live file.
    fn rotate(&mut self) -> std::io::Result<()> {
        let path = self.log.path.clone();
        let keep = self.log.rotation.max_files;
        if keep <= 1 {
            self.file.set_len(0)?;
            self.size = 0;
            self.committed = 0;
            return Ok(());
        }
        if let Some(oldest) = rotated(&path, keep - 1) {
            std::fs::remove_file(oldest)?;
        }
        for n in (1..keep - 1).rev() {
            for suffix in ["", ".gz"] {
                let from = PathBuf::from(format!("{}.{n}{suffix}", path.display()));
                if from.exists() {
                    std::fs::rename(&from, format!("{}.{}{suffix}", path.display(), n + 1))?;
                }
            }
        }
        let first = PathBuf::from(format!("{}.1", path.display()));
        std::fs::rename(&path, &first)?;
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        self.file = file;
        self.size = 0;
        self.committed = 0;
        if self.log.rotation.compress {
            gzip_in_place(&first)?;
        }
        Ok(())
    }
}

/// `<file>` → `<file>.gz` (written aside, then renamed, so a reader sees
/// either whole file).
fn gzip_in_place(file: &Path) -> std::io::Result<()> {
    let gz = PathBuf::from(format!("{}.gz", file.display()));
    let tmp = PathBuf::from(format!("{}.gz.tmp", file.display()));
    let mut input = std::fs::File::open(file)?;
    let mut encoder = flate2::write::GzEncoder::new(std::fs::File::create(&tmp)?, flate2::Compression::default());
    std::io::copy(&mut input, &mut encoder)?;
    encoder.finish()?.sync_all()?;
    std::fs::rename(&tmp, &gz)?;
    std::fs::remove_file(file)
}

fn parse_lines(reader: impl BufRead, out: &mut Vec<LogEntry>) {
    for line in reader.split(b'\n').map_while(Result::ok) {
        out.extend(parse_line(&line));
    }
}

/// A rotated file opened for reading. A plain one that is gone by now
/// is read from its `.gz`: the writer creates the `.gz` before it removes
/// the plain file, so a file being compressed is never missed.
fn open_rotated(file: &Path) -> Option<Box<dyn BufRead + Send>> {
    let gzipped = file.extension().is_some_and(|e| e == "gz");
    match std::fs::File::open(file) {
        Ok(f) if gzipped => Some(Box::new(std::io::BufReader::new(flate2::read::GzDecoder::new(f)))),
        Ok(f) => Some(Box::new(std::io::BufReader::new(f))),
        Err(_) if !gzipped => open_rotated(&PathBuf::from(format!("{}.gz", file.display()))),
        Err(_) => None,
    }
}

/// The time of the first entry in an open live file (read without
/// moving the handle: reads of the live file seek to their own offset).
fn first_time_of(file: &std::fs::File) -> Option<String> {
    let mut first = String::new();
    std::io::BufReader::new(file.try_clone().ok()?).read_line(&mut first).ok()?;
    parse_line(first.as_bytes()).map(|e| e.time)
}

/// Bytes of the live file read at a time: a log is never loaded whole.
const READ_CHUNK: usize = 1 << 20;

/// Reads a container's log: the rotated files, then the live one, then
/// (when followed) what is appended, across rotations. Stored entries come
/// in batches (`read_history`), so a reader's memory stays bounded
/// whatever the size of the log.
pub struct LogReader {
    path: PathBuf,
    file: Option<std::fs::File>,
    inode: u64,
    pos: u64,
    /// The time of the newest entry read: after rotations, the rotated
    /// files hold what came later (times are RFC 3339 with nanoseconds in
    /// UTC, so they order as strings).
    last_time: String,
    /// Rotated files not read yet, oldest first, and the one being read.
    older: VecDeque<PathBuf>,
    rotated_reader: Option<Box<dyn BufRead + Send>>,
}

impl LogReader {
    /// A reader before the oldest stored entry.
    pub fn start(path: &Path) -> Self {
        // The live file is opened first: what rotates away meanwhile is
        // still read through this handle.
        let file = std::fs::File::open(path).ok();
        let inode = file.as_ref().and_then(|f| f.metadata().ok()).map_or(0, |m| m.ino());
        let mut older: Vec<PathBuf> = (1..).map_while(|n| rotated(path, n)).collect();
        older.reverse();
        Self { path: path.to_path_buf(), file, inode, pos: 0, last_time: String::new(), older: older.into(), rotated_reader: None }
    }

    /// Everything stored so far, oldest first; the reader then stands at
    /// the end of the live file. (Readers serving clients use `start` and
    /// `read_history`, which bound memory.)
    #[cfg(test)]
    pub fn open(path: &Path) -> (Self, Vec<LogEntry>) {
        let mut reader = Self::start(path);
        let mut out = Vec::new();
        while reader.read_history(&mut out, usize::MAX) {}
        (reader, out)
    }

    /// Appends up to `max` stored entries, oldest first; `false` once the
    /// reader stands at the end of the live file (later lines come from
    /// `read_new`).
    pub fn read_history(&mut self, out: &mut Vec<LogEntry>, max: usize) -> bool {
        let start = out.len();
        let more = loop {
            let room = max.saturating_sub(out.len() - start);
            if room == 0 {
                break true;
            }
            if let Some(reader) = self.rotated_reader.as_mut() {
                if !parse_some(reader, out, room) {
                    self.rotated_reader = None;
                }
            } else if let Some(next) = self.older.pop_front() {
                self.rotated_reader = open_rotated(&next);
            } else if !self.drain_some(out, room) {
                self.note_last(&out[start..]);
                self.follow_rotation(out);
                break false;
            }
        };
        self.note_last(&out[start..]);
        more
    }

    /// Up to about `max` complete lines appended since the last read
    /// (after rotations, the rest of the old file, the rotated files
    /// written since and the new live file come whole); whether more may
    /// be read right away. Bounded, so that a follower that was held up
    /// does not read all the output written meanwhile at once.
    pub fn read_new(&mut self, out: &mut Vec<LogEntry>, max: usize) -> bool {
        let start = out.len();
        if self.drain_some(out, max) {
            self.note_last(&out[start..]);
            return true;
        }
        self.note_last(&out[start..]);
        self.follow_rotation(out);
        self.note_last(&out[start..]);
        false
    }

    /// At the end of the live file: continue past a rotation or truncation.
    fn follow_rotation(&mut self, out: &mut Vec<LogEntry>) {
        let current = std::fs::metadata(&self.path).ok();
        match current {
            Some(m) if m.ino() != self.inode || self.file.is_none() => {
                // The new live file is held before the rotated ones are
                // read: a writer that rotates again meanwhile moves it
                // among them, and this handle still reads it whole.
                let file = std::fs::File::open(&self.path).ok();
                self.inode = file.as_ref().and_then(|f| f.metadata().ok()).map_or(m.ino(), |m| m.ino());
                self.catch_up_rotated(file.as_ref(), out);
                self.file = file;
                self.pos = 0;
                while self.drain_some(out, usize::MAX) {}
            }
            // Truncated in place (`max-file` 1).
            Some(m) if m.len() < self.pos => {
                self.pos = 0;
                while self.drain_some(out, usize::MAX) {}
            }
            _ => {}
        }
    }

    fn note_last(&mut self, read: &[LogEntry]) {
        if let Some(last) = read.last() {
            self.last_time = last.time.clone();
        }
    }

    /// Entries newer than the last one read and older than the held live
    /// file's first (taken after the scan: a live file still empty then
    /// gave nothing to it), from the rotated files (newest is `.1`; the
    /// scan stops at the first file that starts at or before the last
    /// entry read).
    /// Each file is opened as it is found, so later renames do not change
    /// what is read; a file seen twice while the writer shifts the names
    /// gives its entries once.
    fn catch_up_rotated(&mut self, live: Option<&std::fs::File>, out: &mut Vec<LogEntry>) {
        let mut entries = Vec::new();
        let mut missing = 0;
        for n in 1.. {
            // Mid-rotation, the index just vacated is missing for a moment.
            let Some(mut reader) = open_rotated(&PathBuf::from(format!("{}.{n}", self.path.display()))) else {
                missing += 1;
                if missing == 2 {
                    break;
                }
                continue;
            };
            missing = 0;
            let mut file_entries = Vec::new();
            parse_lines(&mut reader, &mut file_entries);
            let starts_before = file_entries.first().is_none_or(|e| e.time <= self.last_time);
            entries.extend(file_entries);
            if starts_before {
                break;
            }
        }
        let live_starts = live.and_then(first_time_of);
        entries.retain(|e| e.time > self.last_time && live_starts.as_ref().is_none_or(|t| e.time < *t));
        entries.sort_by(|a, b| a.time.cmp(&b.time));
        entries.dedup();
        out.extend(entries);
        self.note_last(out);
    }

    /// Up to `max` complete lines of the live file from `pos`, read a chunk
    /// at a time; whether more may follow right away (a line being written
    /// is read next time).
    fn drain_some(&mut self, out: &mut Vec<LogEntry>, max: usize) -> bool {
        let Some(file) = self.file.as_mut() else { return false };
        let mut taken = 0;
        let mut limit = READ_CHUNK;
        loop {
            if file.seek(SeekFrom::Start(self.pos)).is_err() {
                return false;
            }
            // Sized to what is there (a follower reads a few lines at a
            // time; a megabyte per read kept the allocator consolidating),
            // plus one byte: reading less than asked says this is the end.
            let available = file.metadata().map_or(limit as u64, |m| m.len().saturating_sub(self.pos));
            let want = usize::try_from(available).unwrap_or(usize::MAX).saturating_add(1).min(limit);
            let mut data = Vec::with_capacity(want);
            if (&mut *file).take(want as u64).read_to_end(&mut data).is_err() {
                return false;
            }
            let at_end = data.len() < want;
            let Some(last_newline) = data.iter().rposition(|b| *b == b'\n') else {
                if at_end {
                    return false;
                }
                // A line longer than the chunk: read more of it at once.
                limit *= 2;
                continue;
            };
            for line in data[..=last_newline].split_inclusive(|b| *b == b'\n') {
                if taken == max {
                    return true;
                }
                if let Some(entry) = parse_line(line) {
                    out.push(entry);
                    taken += 1;
                }
                self.pos += line.len() as u64;
            }
            if at_end {
                return false;
            }
            limit = READ_CHUNK;
        }
    }
}

/// Up to `max` entries from `reader`; `false` at its end.
fn parse_some(reader: &mut Box<dyn BufRead + Send>, out: &mut Vec<LogEntry>, max: usize) -> bool {
    let mut line = Vec::new();
    for _ in 0..max {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => out.extend(parse_line(&line)),
        }
    }
    true
}

fn parse_line(line: &[u8]) -> Option<LogEntry> {
    let mut entry = parse_written(line).or_else(|| serde_json::from_slice::<LogEntry>(line).ok())?;
    fixed_time(&mut entry.time);
    Some(entry)
}

/// A line exactly as `entry` writes it without attrs, parsed without
/// serde: followers parse every line they send, and this is most of their
/// work. Anything else (attrs, another field order, escapes `entry` never
/// writes) is left to serde_json.
fn parse_written(line: &[u8]) -> Option<LogEntry> {
    let rest = line.strip_prefix(b"{\"log\":\"")?;
    let (log, rest) = unescape_string(rest)?;
    let rest = rest.strip_prefix(b",\"stream\":\"")?;
    let (stream, rest) = match rest.strip_prefix(b"stdout\"") {
        Some(rest) => ("stdout", rest),
        None => ("stderr", rest.strip_prefix(b"stderr\"")?),
    };
    let rest = rest.strip_prefix(b",\"time\":\"")?;
    let end = rest.iter().position(|b| *b == b'"')?;
    let time = std::str::from_utf8(&rest[..end]).ok()?;
    if !matches!(&rest[end + 1..], b"}" | b"}\n") || time.contains('\\') {
        return None;
    }
    Some(LogEntry { log, stream: stream.to_owned(), attrs: BTreeMap::new(), time: time.to_owned() })
}

/// The JSON string body starting at `s` (after its opening quote), with the
/// escapes `write_string` uses, and the bytes after its closing quote.
fn unescape_string(s: &[u8]) -> Option<(String, &[u8])> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    loop {
        let run = s[i..].iter().position(|b| matches!(b, b'"' | b'\\') || *b < 0x20)?;
        out.extend_from_slice(&s[i..i + run]);
        i += run;
        match s[i] {
            b'"' => return Some((String::from_utf8(out).ok()?, &s[i + 1..])),
            b'\\' => {
                match *s.get(i + 1)? {
                    c @ (b'"' | b'\\' | b'/') => out.push(c),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'u' => {
                        let hex = std::str::from_utf8(s.get(i + 2..i + 6)?).ok()?;
                        // Surrogate pairs are left to serde: `char::from_u32` refuses halves.
                        let c = char::from_u32(u32::from_str_radix(hex, 16).ok()?)?;
                        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                        i += 6;
                        continue;
                    }
                    _ => return None,
                }
                i += 2;
            }
            // A raw control byte: not JSON.
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(dir: &Path, rotation: Rotation) -> LogFile {
        LogFile { path: dir.join("c-json.log"), rotation, attrs: BTreeMap::new() }
    }

    fn texts(entries: &[LogEntry]) -> Vec<String> {
        entries.iter().map(|e| e.log.clone()).collect()
    }

    #[test]
    fn history_comes_in_batches_across_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = log(dir.path(), Rotation { max_size: 200, max_files: 3, compress: false });
        let mut w = JsonFileWriter::open(&log).unwrap();
        for i in 0..12 {
            w.write(Stream::Stdout, format!("line {i}\n").as_bytes()).unwrap();
        }
        w.flush().unwrap();
        let (_, all) = LogReader::open(&log.path);
        assert!(all.len() >= 4, "{:?}", texts(&all));
        let mut reader = LogReader::start(&log.path);
        let mut batched = Vec::new();
        let mut batch = Vec::new();
        while reader.read_history(&mut batch, 2) {
            assert!(batch.len() <= 2);
            batched.append(&mut batch);
        }
        batched.append(&mut batch);
        assert_eq!(texts(&batched), texts(&all));
        w.write(Stream::Stdout, b"later\n").unwrap();
        w.flush().unwrap();
        let mut fresh = Vec::new();
        reader.read_new(&mut fresh, usize::MAX);
        assert_eq!(texts(&fresh), ["later\n"]);
    }

    #[test]
    fn the_fast_parse_agrees_with_serde() {
        let lines: [&[u8]; 9] = [
            br#"{"log":"plain line\n","stream":"stdout","time":"2026-11-28T17:00:00.123456789Z"}"#,
            br#"{"log":"tab\t quote\" back\\ slash\/ cr\r\n","stream":"stderr","time":"2026-11-28T17:00:00Z"}"#,
            br#"{"log":"\u003chtml\u003e \u0026 \u0001 \ufffd \u2028 \u00e9","stream":"stdout","time":"2026-11-28T17:00:00.5Z"}"#,
            br#"{"log":"caf\u00e9 \ud83d\ude00","stream":"stdout","time":"2026-11-28T17:00:00.5Z"}"#,
            br#"{"log":"x","stream":"stdout","attrs":{"a":"b"},"time":"2026-11-28T17:00:00.5Z"}"#,
            br#"{"stream":"stdout","log":"reordered","time":"2026-11-28T17:00:00.5Z"}"#,
            b"{\"log\":\"raw \x01 control\",\"stream\":\"stdout\",\"time\":\"2026-11-28T17:00:00Z\"}",
            br#"{"log":"x","stream":"stdin","time":"2026-11-28T17:00:00Z"}"#,
            br#"{"log":"truncated"#,
        ];
        for line in lines {
            let mut with_newline = line.to_vec();
            with_newline.push(b'\n');
            for line in [line, &with_newline[..]] {
                let slow = serde_json::from_slice::<LogEntry>(line).ok();
                if let Some(fast) = parse_written(line) {
                    assert_eq!(Some(&fast), slow.as_ref(), "{}", String::from_utf8_lossy(line));
                }
                assert_eq!(parse_line(line).is_some(), slow.is_some(), "{}", String::from_utf8_lossy(line));
            }
        }
        assert!(parse_written(lines[0]).is_some() && parse_written(lines[1]).is_some() && parse_written(lines[2]).is_some());
    }

    #[test]
    fn strings_and_times_as_dockerd_writes_them() {
        let mut out = Vec::new();
        write_string(&mut out, "<a&b> \"q\" \\ \t \x01 é \u{2028}\n".as_bytes());
        write_string(&mut out, b"\xff\xfe\xe2\x82");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""\u003ca\u0026b\u003e \"q\" \\ \u0009 \u0001 é \u2028\n""\ufffd\ufffd\ufffd\ufffd""#
        );
        let attrs: BTreeMap<String, String> = [("z".to_string(), "<1>".to_string()), ("a".into(), "x".into())].into();
        assert_eq!(attrs_json(&attrs), br#"{"a":"x","z":"\u003c1\u003e"}"#);
        for (stored, fixed) in [
            ("2026-11-28T04:44:58.68953077Z", "2026-11-28T04:44:58.689530770Z"),
            ("2026-11-28T04:44:58Z", "2026-11-28T04:44:58.000000000Z"),
            ("2026-11-28T04:44:58.123456789Z", "2026-11-28T04:44:58.123456789Z"),
        ] {
            let mut t = stored.to_string();
            fixed_time(&mut t);
            assert_eq!(t, fixed);
        }
        assert!(!now().ends_with("0Z"));
    }

    #[test]
    fn lines_and_partials() {
        let dir = tempfile::tempdir().unwrap();
        let log = log(dir.path(), Rotation::default());
        let mut w = JsonFileWriter::open(&log).unwrap();
        w.write(Stream::Stdout, b"hello\nwor").unwrap();
        w.write(Stream::Stderr, b"oops\n").unwrap();
        w.write(Stream::Stdout, b"ld\ntail").unwrap();
        w.flush().unwrap();
        let (_, entries) = LogReader::open(&log.path);
        let got: Vec<(&str, &str)> = entries.iter().map(|e| (e.stream.as_str(), e.log.as_str())).collect();
        assert_eq!(got, [("stdout", "hello\n"), ("stderr", "oops\n"), ("stdout", "world\n"), ("stdout", "tail")]);
    }

    #[test]
    fn long_lines_are_split_at_16k() {
        let dir = tempfile::tempdir().unwrap();
        let log = log(dir.path(), Rotation::default());
        let mut w = JsonFileWriter::open(&log).unwrap();
        let long = vec![b'x'; MAX_LINE * 2 + 10];
        w.write(Stream::Stdout, &long).unwrap();
        w.write(Stream::Stdout, b"\n").unwrap();
        let (_, entries) = LogReader::open(&log.path);
        let lens: Vec<usize> = entries.iter().map(|e| e.log.len()).collect();
        assert_eq!(lens, [MAX_LINE, MAX_LINE, 11]);
    }

    #[test]
    fn rotation_keeps_max_files_and_reads_in_order() {
        for compress in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let log = log(dir.path(), Rotation { max_size: 200, max_files: 3, compress });
            let mut w = JsonFileWriter::open(&log).unwrap();
            for i in 0..40 {
                w.write(Stream::Stdout, format!("line {i}\n").as_bytes()).unwrap();
            }
            let files = std::fs::read_dir(dir.path()).unwrap().count();
            assert_eq!(files, 3, "compress={compress}");
            let (_, entries) = LogReader::open(&log.path);
            let got = texts(&entries);
            assert_eq!(got.last().unwrap(), "line 39\n");
            let first: usize = got[0].trim_start_matches("line ").trim().parse().unwrap();
            let expected: Vec<String> = (first..40).map(|i| format!("line {i}\n")).collect();
            assert_eq!(got, expected, "compress={compress}");
            assert!(std::fs::metadata(&log.path).unwrap().len() <= 200);
        }
    }

    #[test]
    fn a_follower_crosses_rotations_and_truncations() {
        for max_files in [1, 2] {
            let dir = tempfile::tempdir().unwrap();
            let log = log(dir.path(), Rotation { max_size: 150, max_files, compress: false });
            let mut w = JsonFileWriter::open(&log).unwrap();
            w.write(Stream::Stdout, b"first\n").unwrap();
            let (mut reader, history) = LogReader::open(&log.path);
            assert_eq!(texts(&history), ["first\n"]);
            let mut seen = Vec::new();
            for i in 0..10 {
                w.write(Stream::Stdout, format!("n{i}\n").as_bytes()).unwrap();
                reader.read_new(&mut seen, usize::MAX);
            }
            let expected: Vec<String> = (0..10).map(|i| format!("n{i}\n")).collect();
            assert_eq!(texts(&seen), expected, "max_files={max_files}");
        }
    }

    /// A writer rotating as fast as it can while a follower reads: every
    /// line once, in order (the follower once skipped the file rotated
    /// between its scan of the rotated files and its opening of the new
    /// live one).
    #[test]
    fn a_follower_racing_a_fast_writer_misses_and_repeats_nothing() {
        for compress in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let log = log(dir.path(), Rotation { max_size: 300, max_files: 200, compress });
            let mut w = JsonFileWriter::open(&log).unwrap();
            w.write(Stream::Stdout, b"line 0\n").unwrap();
            w.flush().unwrap();
            let (mut reader, mut seen) = LogReader::open(&log.path);
            const LINES: usize = 600;
            let writer = std::thread::spawn(move || {
                for i in 1..LINES {
                    w.write(Stream::Stdout, format!("line {i}\n").as_bytes()).unwrap();
                    w.flush().unwrap();
                }
            });
            // Done once a read that began after the writer finished finds
            // nothing new.
            loop {
                let finished = writer.is_finished();
                let before = seen.len();
                reader.read_new(&mut seen, usize::MAX);
                if finished && seen.len() == before {
                    break;
                }
            }
            writer.join().unwrap();
            let expected: Vec<String> = (0..LINES).map(|i| format!("line {i}\n")).collect();
            assert_eq!(texts(&seen), expected, "compress={compress}");
        }
    }

    #[test]
    fn a_slow_follower_catches_up_on_several_rotations() {
        for compress in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let log = log(dir.path(), Rotation { max_size: 150, max_files: 50, compress });
            let mut w = JsonFileWriter::open(&log).unwrap();
            w.write(Stream::Stdout, b"first\n").unwrap();
            let (mut reader, _) = LogReader::open(&log.path);
            for i in 0..30 {
                w.write(Stream::Stdout, format!("n{i}\n").as_bytes()).unwrap();
            }
            let mut seen = Vec::new();
            reader.read_new(&mut seen, usize::MAX);
            let expected: Vec<String> = (0..30).map(|i| format!("n{i}\n")).collect();
            assert_eq!(texts(&seen), expected, "compress={compress}");
        }
    }
}
