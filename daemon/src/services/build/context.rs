//! The build context: the tar the client sends (plain or gzip), unpacked
//! into a private directory, and `.dockerignore` (Go `filepath.Match`
//! patterns with `**` and `!` exceptions, last match wins).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::services::ServiceError;

/// An unpacked context; removed on drop.
pub struct Context {
    pub root: PathBuf,
    pub ignore: Ignore,
}

impl Drop for Context {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

impl Context {
    /// Unpack `archive` (a file holding the client's tar, maybe gzipped)
    /// into a new directory under `parent`.
    pub fn unpack(archive: &Path, parent: &Path) -> Result<Self, ServiceError> {
        let root = parent.join(format!("context-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&root).map_err(|e| internal("creating the context directory", e))?;
        let mut ctx = Context { root, ignore: Ignore::default() };
        let mut file = std::fs::File::open(archive).map_err(|e| internal("opening the context", e))?;
        let mut magic = [0u8; 2];
        let n = file.read(&mut magic).map_err(|e| internal("reading the context", e))?;
        let file = std::fs::File::open(archive).map_err(|e| internal("opening the context", e))?;
        let reader: Box<dyn Read> =
            if n == 2 && magic == [0x1f, 0x8b] { Box::new(flate2::read::GzDecoder::new(file)) } else { Box::new(file) };
        if std::fs::metadata(archive).map(|m| m.len()).unwrap_or(0) > 0 {
            let mut tar = tar::Archive::new(crate::backends::tar_guard::TarGuard::new(reader));
            tar.set_preserve_permissions(true);
            tar.set_unpack_xattrs(false);
            tar.set_overwrite(true);
            // `unpack` refuses entries that would land outside the root.
            tar.unpack(&ctx.root).map_err(|e| {
                ServiceError::InvalidParameter(format!("failed to read the build context: {}", with_causes(&e)))
            })?;
        }
        ctx.reload_ignore();
        Ok(ctx)
    }

    /// A new empty context directory under `parent` (for remote contexts).
    pub fn empty(parent: &Path) -> Result<Self, ServiceError> {
        let root = parent.join(format!("context-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&root).map_err(|e| internal("creating the context directory", e))?;
        Ok(Context { root, ignore: Ignore::default() })
    }

    /// Read `.dockerignore` again (after the files arrived).
    pub fn reload_ignore(&mut self) {
        if let Ok(text) = std::fs::read_to_string(self.root.join(".dockerignore")) {
            self.ignore = Ignore::parse(&text);
        }
    }

    /// A path inside the context (cleaned, never above the root).
    pub fn path(&self, rel: &str) -> PathBuf {
        let clean = crate::services::dockerfile::clean_path(&format!("/{rel}"));
        self.root.join(clean.trim_start_matches('/'))
    }
}

/// An error and its sources, `: `-joined (the tar crate says which entry
/// in the error and why in its source).
pub fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = cause.source();
    }
    text
}

fn internal(what: &str, e: std::io::Error) -> ServiceError {
    ServiceError::Internal(format!("{what}: {e}"))
}

/// `.dockerignore` patterns.
#[derive(Debug, Default, Clone)]
pub struct Ignore {
    patterns: Vec<(bool, Vec<String>)>,
}

impl Ignore {
    pub fn parse(text: &str) -> Self {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclude, p) = match line.strip_prefix('!') {
                Some(rest) => (false, rest.trim()),
                None => (true, line),
            };
            let clean = crate::services::dockerfile::clean_path(&format!("/{p}"));
            let parts: Vec<String> = clean.trim_start_matches('/').split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
            if parts.is_empty() {
                continue;
            }
            patterns.push((exclude, parts));
        }
        Self { patterns }
    }

    /// Whether `rel` (slash-separated, relative to the context) is
    /// excluded. A path is excluded when it or a parent directory matches.
    pub fn excluded(&self, rel: &str) -> bool {
        let parts: Vec<&str> = rel.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
        let mut excluded = false;
        for (exclude, pattern) in &self.patterns {
            let hit = (1..=parts.len()).any(|n| match_parts(pattern, &parts[..n]));
            if hit {
                excluded = *exclude;
            }
        }
        excluded
    }

    /// Whether some `!` exception could re-include something under `rel`
    /// (so an excluded directory must still be walked).
    pub fn may_include_below(&self, rel: &str) -> bool {
        let prefix = format!("{}/", rel.trim_end_matches('/'));
        self.patterns.iter().any(|(exclude, p)| !exclude && (p.join("/").starts_with(&prefix) || p.iter().any(|s| s.contains("**"))))
    }
}

/// Whether `pattern`'s elements (`**` for any number of elements) match
/// `path`'s, over the table of prefixes: O(pattern x path). Recursing into
/// both choices at each `**` was exponential in their number.
fn match_parts(pattern: &[String], path: &[&str]) -> bool {
    // reach[j]: the pattern so far matches path[..j].
    let mut reach = vec![false; path.len() + 1];
    reach[0] = true;
    for p in pattern {
        let mut next = vec![false; path.len() + 1];
        if p == "**" {
            let mut any = false;
            for (j, r) in reach.iter().enumerate() {
                any |= r;
                next[j] = any;
            }
        } else {
            for j in 1..=path.len() {
                next[j] = reach[j - 1] && crate::services::images::glob_match(p, path[j - 1]);
            }
        }
        reach = next;
    }
    reach[path.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_rules() {
        let ig = Ignore::parse("# comment\n*.log\nsecret/\n!keep.log\n**/tmp\nbuild/*.o\n");
        assert!(ig.excluded("a.log"));
        assert!(!ig.excluded("keep.log"));
        assert!(ig.excluded("secret"));
        assert!(ig.excluded("secret/x"));
        assert!(ig.excluded("deep/er/tmp"));
        assert!(ig.excluded("tmp/x"));
        assert!(ig.excluded("build/a.o"));
        assert!(!ig.excluded("build/a.c"));
        assert!(!ig.excluded("src/a.log"));
        let ig = Ignore::parse("a/**/b/**\n**/c");
        assert!(ig.excluded("a/b/x"));
        assert!(ig.excluded("a/x/y/b/z"));
        assert!(ig.excluded("a/b"));
        assert!(!ig.excluded("x/b/y"));
        assert!(ig.excluded("c"));
        assert!(ig.excluded("x/y/c"));
    }

    #[test]
    fn many_double_stars_against_a_deep_path_take_polynomial_time() {
        // Exponential before: 30 `**` against 60 levels never finished.
        let started = std::time::Instant::now();
        let ig = Ignore::parse(&format!("{}x", "**/".repeat(30)));
        let deep = vec!["d"; 60].join("/");
        assert!(!ig.excluded(&deep));
        assert!(ig.excluded(&format!("{deep}/x")));
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    }
}
