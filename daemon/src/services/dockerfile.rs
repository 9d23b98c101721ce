//! Dockerfiles as the classic builder reads them: parser directives
//! (`# escape=`), comments, line continuations, instructions with their
//! `--flags`, JSON and shell forms, and the shell-style word processing
//! (quotes, escapes, `$VAR`, `${VAR:-default}`, `${VAR:+alt}`). Also the
//! metadata instructions' effect on a container config, which `docker
//! commit --change` shares with the builder.

use std::collections::BTreeMap;

use api_types::container::{ContainerConfig, HealthConfig};

use super::ServiceError;

/// One instruction, continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// Lower-case keyword (`run`, `copy`, ...).
    pub keyword: String,
    /// `--name=value` flags before the arguments (value empty for `--name`).
    pub flags: Vec<(String, String)>,
    /// The arguments as written (after the flags).
    pub rest: String,
    /// The whole instruction as written, continuations joined.
    pub original: String,
    pub line: usize,
    /// Here-documents (`RUN <<EOF`, `COPY <<EOF /dest`) in the order their
    /// markers appear; their lines are not part of `rest`.
    pub heredocs: Vec<Heredoc>,
}

/// One here-document: `<<NAME` (or `<<-NAME`, tabs stripped; `<<"NAME"`,
/// no variable expansion) and its lines up to the one that is `NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    pub content: String,
    pub expand: bool,
}

/// Instructions whose arguments may carry here-documents.
const HEREDOC_KEYWORDS: &[&str] = &["run", "copy", "add"];

/// The here-document markers of `text`: (name, strip tabs, expand), in order.
fn heredoc_markers(text: &str) -> Vec<(String, bool, bool)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < chars.len() {
        if chars[i] != '<' || chars[i + 1] != '<' || (i > 0 && chars[i - 1] == '<') {
            i += 1;
            continue;
        }
        let mut j = i + 2;
        let strip = chars.get(j) == Some(&'-');
        if strip {
            j += 1;
        }
        let quote = chars.get(j).copied().filter(|c| *c == '"' || *c == '\'');
        if quote.is_some() {
            j += 1;
        }
        let start = j;
        while j < chars.len() && (chars[j].is_ascii_alphanumeric() || "_.-".contains(chars[j])) {
            j += 1;
        }
        let name: String = chars[start..j].iter().collect();
        let closed = match quote {
            Some(q) => chars.get(j) == Some(&q),
            None => true,
        };
        if !name.is_empty() && closed && !name.starts_with('-') {
            out.push((name, strip, quote.is_none()));
            j += usize::from(quote.is_some());
        }
        i = j.max(i + 2);
    }
    out
}

impl Instruction {
    /// The JSON form (`["a", "b"]`), when the arguments are one.
    pub fn json(&self) -> Option<Vec<String>> {
        let t = self.rest.trim();
        if !t.starts_with('[') {
            return None;
        }
        serde_json::from_str::<Vec<String>>(t).ok()
    }

    pub fn flag(&self, name: &str) -> Option<&str> {
        self.flags.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    pub escape: char,
    pub instructions: Vec<Instruction>,
}

/// Instructions that take `--flags`.
const FLAGGED: &[&str] = &["from", "copy", "add", "run", "healthcheck"];

pub const KNOWN: &[&str] = &[
    "from", "run", "cmd", "label", "maintainer", "expose", "env", "add", "copy", "entrypoint", "volume", "user",
    "workdir", "arg", "onbuild", "stopsignal", "healthcheck", "shell",
];

fn parse_error(line: usize, message: impl std::fmt::Display) -> ServiceError {
    ServiceError::InvalidParameter(format!("Dockerfile parse error line {line}: {message}"))
}

pub fn parse(text: &str) -> Result<Dockerfile, ServiceError> {
    let mut escape = '\\';
    let mut lines = text.lines().enumerate().peekable();
    // Parser directives: `# key=value` lines at the very top.
    while let Some((_, line)) = lines.peek() {
        let t = line.trim();
        let Some(body) = t.strip_prefix('#') else { break };
        let Some((key, value)) = body.split_once('=') else { break };
        let key = key.trim().to_ascii_lowercase();
        if key.contains(char::is_whitespace) || key.is_empty() {
            break;
        }
        match key.as_str() {
            "escape" => {
                escape = match value.trim() {
                    "`" => '`',
                    "\\" => '\\',
                    other => return Err(parse_error(1, format!("invalid ESCAPE '{other}'. Must be ` or \\"))),
                }
            }
            "syntax" | "check" => {}
            _ => break,
        }
        lines.next();
    }
    let mut instructions = Vec::new();
    while let Some((n, line)) = lines.next() {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let start = n + 1;
        let mut joined = String::new();
        let mut current = line.to_string();
        loop {
            let trimmed = current.trim_end();
            if let Some(head) = trimmed.strip_suffix(escape) {
                joined.push_str(head);
                // Next non-comment line continues this one.
                let mut next = None;
                for (_, l) in lines.by_ref() {
                    let lt = l.trim_start();
                    if lt.starts_with('#') {
                        continue;
                    }
                    next = Some(l.to_string());
                    break;
                }
                match next {
                    Some(l) => current = l,
                    None => break,
                }
            } else {
                joined.push_str(&current);
                break;
            }
        }
        let joined = joined.trim().to_string();
        if joined.is_empty() {
            continue;
        }
        let (word, rest) = match joined.split_once(char::is_whitespace) {
            Some((w, r)) => (w, r.trim_start()),
            None => (joined.as_str(), ""),
        };
        let keyword = word.to_ascii_lowercase();
        if !KNOWN.contains(&keyword.as_str()) {
            return Err(parse_error(start, format!("unknown instruction: {}", word.to_ascii_uppercase())));
        }
        let mut rest = rest.to_string();
        let mut flags = Vec::new();
        if FLAGGED.contains(&keyword.as_str()) {
            loop {
                let r = rest.trim_start();
                if !r.starts_with("--") {
                    break;
                }
                let (flag, after) = match r.split_once(char::is_whitespace) {
                    Some((f, a)) => (f.to_string(), a.to_string()),
                    None => (r.to_string(), String::new()),
                };
                let body = &flag[2..];
                let (name, value) = body.split_once('=').unwrap_or((body, ""));
                flags.push((name.to_ascii_lowercase(), value.to_string()));
                rest = after;
            }
        }
        let mut heredocs = Vec::new();
        if HEREDOC_KEYWORDS.contains(&keyword.as_str()) {
            for (name, strip, expand) in heredoc_markers(&rest) {
                let mut content = String::new();
                let mut closed = false;
                for (_, l) in lines.by_ref() {
                    let l = if strip { l.trim_start_matches('\t') } else { l };
                    if l == name {
                        closed = true;
                        break;
                    }
                    content.push_str(l);
                    content.push('\n');
                }
                if !closed {
                    return Err(parse_error(start, format!("unterminated heredoc {name}")));
                }
                heredocs.push(Heredoc { name, content, expand });
            }
        }
        instructions.push(Instruction { keyword, flags, rest: rest.trim().to_string(), original: joined.clone(), line: start, heredocs });
    }
    Ok(Dockerfile { escape, instructions })
}

/// Variables visible to word processing.
pub type Vars = BTreeMap<String, String>;

/// `KEY=value` strings to a map (later entries win).
pub fn env_vars(env: &[String]) -> Vars {
    env.iter().map(|e| e.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).unwrap_or((e.clone(), String::new()))).collect()
}

/// Shell-style processing of `text`: quotes removed, escapes applied,
/// variables expanded; with `split`, unquoted whitespace separates words.
pub fn process(text: &str, vars: &Vars, escape: char, split: bool) -> Result<Vec<String>, ServiceError> {
    process_in(text, vars, escape, split, 0)
}

/// How deep `${a:-${b:-…}}` may nest. Each level recurses: 20,000 levels in
/// one ENV overflowed a worker's stack and took the daemon down.
const MAX_NESTING: usize = 64;

/// `process` inside `nesting` enclosing substitutions.
fn process_in(text: &str, vars: &Vars, escape: char, split: bool, nesting: usize) -> Result<Vec<String>, ServiceError> {
    let chars: Vec<char> = text.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if split && c.is_whitespace() {
            if in_word {
                words.push(std::mem::take(&mut word));
                in_word = false;
            }
            i += 1;
            continue;
        }
        in_word = true;
        if c == escape {
            if let Some(&n) = chars.get(i + 1) {
                word.push(n);
                i += 2;
            } else {
                word.push(c);
                i += 1;
            }
        } else if c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                word.push(chars[i]);
                i += 1;
            }
            if i >= chars.len() {
                return Err(ServiceError::InvalidParameter("unexpected end of statement while looking for matching single-quote".into()));
            }
            i += 1;
        } else if c == '"' {
            i += 1;
            loop {
                let Some(&d) = chars.get(i) else {
                    return Err(ServiceError::InvalidParameter("unexpected end of statement while looking for matching double-quote".into()));
                };
                if d == '"' {
                    i += 1;
                    break;
                }
                if d == escape && (matches!(chars.get(i + 1), Some('"') | Some('$')) || chars.get(i + 1) == Some(&escape)) {
                    word.push(chars[i + 1]);
                    i += 2;
                } else if d == '$' {
                    i = expand(&chars, i, vars, escape, &mut word, nesting)?;
                } else {
                    word.push(d);
                    i += 1;
                }
            }
        } else if c == '$' {
            i = expand(&chars, i, vars, escape, &mut word, nesting)?;
        } else {
            word.push(c);
            i += 1;
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// One word, processed without splitting.
pub fn process_word(text: &str, vars: &Vars, escape: char) -> Result<String, ServiceError> {
    process_word_in(text, vars, escape, 0)
}

fn process_word_in(text: &str, vars: &Vars, escape: char, nesting: usize) -> Result<String, ServiceError> {
    Ok(process_in(text, vars, escape, false, nesting)?.into_iter().next().unwrap_or_default())
}

/// Expand the variable at `chars[i] == '$'`; answers the index after it.
fn expand(chars: &[char], i: usize, vars: &Vars, escape: char, out: &mut String, nesting: usize) -> Result<usize, ServiceError> {
    let mut j = i + 1;
    if chars.get(j) == Some(&'{') {
        if nesting >= MAX_NESTING {
            return Err(ServiceError::InvalidParameter(format!(
                "failed to process a variable substitution: nested too deeply (more than {MAX_NESTING} levels)"
            )));
        }
        j += 1;
        let start = j;
        while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
            j += 1;
        }
        let name: String = chars[start..j].iter().collect();
        if name.is_empty() {
            return Err(ServiceError::InvalidParameter(format!("failed to process \"{}\": missing ':' in substitution", chars.iter().collect::<String>())));
        }
        let value = vars.get(&name);
        match chars.get(j) {
            Some('}') => {
                out.push_str(value.map(String::as_str).unwrap_or(""));
                return Ok(j + 1);
            }
            Some(&op) if op == ':' || op == '-' || op == '+' => {
                let colon = op == ':';
                if colon {
                    j += 1;
                }
                let Some(&kind) = chars.get(j) else {
                    return Err(ServiceError::InvalidParameter("syntax error: missing '}'".into()));
                };
                j += 1;
                // The word runs to the matching brace.
                let wstart = j;
                let mut depth = 1;
                while j < chars.len() {
                    if chars[j] == escape {
                        j += 2;
                        continue;
                    }
                    if chars[j] == '{' {
                        depth += 1;
                    } else if chars[j] == '}' {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    j += 1;
                }
                if j >= chars.len() {
                    return Err(ServiceError::InvalidParameter("syntax error: missing '}'".into()));
                }
                let word: String = chars[wstart..j].iter().collect();
                let set = if colon { value.is_some_and(|v| !v.is_empty()) } else { value.is_some() };
                match kind {
                    '-' => {
                        if set {
                            out.push_str(value.map(String::as_str).unwrap_or(""));
                        } else {
                            out.push_str(&process_word_in(&word, vars, escape, nesting + 1)?);
                        }
                    }
                    '+' => {
                        if set {
                            out.push_str(&process_word_in(&word, vars, escape, nesting + 1)?);
                        }
                    }
                    '?' => {
                        if !set {
                            let msg = if word.is_empty() { "is not allowed to be unset".to_string() } else { word };
                            return Err(ServiceError::InvalidParameter(format!("{name}: {msg}")));
                        }
                        out.push_str(value.map(String::as_str).unwrap_or(""));
                    }
                    other => {
                        return Err(ServiceError::InvalidParameter(format!("unsupported modifier ({other}) in substitution")));
                    }
                }
                return Ok(j + 1);
            }
            _ => return Err(ServiceError::InvalidParameter("syntax error: missing '}'".into())),
        }
    }
    let start = j;
    while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
        j += 1;
    }
    if j == start {
        out.push('$');
        return Ok(j);
    }
    let name: String = chars[start..j].iter().collect();
    out.push_str(vars.get(&name).map(String::as_str).unwrap_or(""));
    Ok(j)
}

/// Only the variables of `text` expanded (a here-document's content):
/// quotes and other characters stay as written.
pub fn expand_vars(text: &str, vars: &Vars, escape: char) -> Result<String, ServiceError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == escape && chars.get(i + 1) == Some(&'$') {
            out.push('$');
            i += 2;
        } else if chars[i] == '$' {
            i = expand(&chars, i, vars, escape, &mut out, 0)?;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Split into words the way the parser does for `ENV`/`LABEL`: on
/// unquoted whitespace, keeping quotes and escapes for later processing.
pub fn raw_words(text: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if quote.is_none() && c.is_whitespace() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        word.push(c);
        if c == escape && quote != Some('\'') {
            if let Some(n) = chars.next() {
                word.push(n);
            }
            continue;
        }
        match quote {
            Some(q) if c == q => quote = None,
            None if c == '"' || c == '\'' => quote = Some(c),
            _ => {}
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// `KEY=value ...` (or the old `KEY value` form) of `ENV`, `LABEL`, `ARG`,
/// processed: quotes removed and variables expanded.
pub fn name_values(ins: &Instruction, vars: &Vars, escape: char) -> Result<Vec<(String, String)>, ServiceError> {
    let kw = ins.keyword.to_ascii_uppercase();
    let words = raw_words(&ins.rest, escape);
    if words.is_empty() {
        return Err(ServiceError::InvalidParameter(format!("{kw} requires at least one argument")));
    }
    if !words[0].contains('=') {
        // `ENV KEY value with spaces`.
        let key = words[0].clone();
        let value = ins.rest.trim_start()[key.len()..].trim();
        if value.is_empty() {
            return Err(ServiceError::InvalidParameter(format!("{kw} must have two arguments")));
        }
        return Ok(vec![(process_word(&key, vars, escape)?, process_word(value, vars, escape)?)]);
    }
    let mut out = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(ServiceError::InvalidParameter(format!("Syntax error - can't find = in \"{w}\". Must be of the form: name=value")));
        };
        if k.is_empty() {
            return Err(ServiceError::InvalidParameter(format!("{kw} names can not be blank")));
        }
        out.push((process_word(k, vars, escape)?, process_word(v, vars, escape)?));
    }
    Ok(out)
}

/// Whether a (shell or JSON form) command was given in JSON form, and its words.
pub fn command(ins: &Instruction, shell: &[String]) -> Vec<String> {
    match ins.json() {
        Some(words) => words,
        None => {
            let mut words = shell.to_vec();
            words.push(shell_script(ins));
            words
        }
    }
}

/// The shell form's script: the arguments, and the here-documents for the
/// shell to read (`RUN cat <<EOF > f`); a lone `RUN <<EOF` runs its
/// document as the script, as BuildKit does.
fn shell_script(ins: &Instruction) -> String {
    match ins.heredocs.as_slice() {
        [] => ins.rest.clone(),
        [only] if heredoc_markers(&ins.rest).len() == 1 && ins.rest.trim().trim_start_matches("<<").trim_start_matches('-').trim_matches(|c| c == '"' || c == '\'') == only.name => {
            only.content.clone()
        }
        docs => {
            let mut script = format!("{}\n", ins.rest);
            for d in docs {
                script.push_str(&d.content);
                script.push_str(&d.name);
                script.push('\n');
            }
            script
        }
    }
}

pub const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// Go's `time.ParseDuration` for the forms Dockerfiles use (`30s`, `1m30s`, `500ms`).
pub fn parse_duration(text: &str) -> Option<i64> {
    let mut total: f64 = 0.0;
    let mut rest = text.trim();
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Some(total as i64)
}

/// Apply a metadata instruction (those `docker commit --change` allows,
/// and the builder's) to `config`. Answers false for an instruction that
/// is not a metadata one.
pub fn apply_metadata(ins: &Instruction, config: &mut ContainerConfig, vars: &Vars, escape: char) -> Result<bool, ServiceError> {
    let shell: Vec<String> = config.shell.clone().unwrap_or_else(|| DEFAULT_SHELL.iter().map(|s| s.to_string()).collect());
    let kw = ins.keyword.to_ascii_uppercase();
    match ins.keyword.as_str() {
        "env" => {
            let env = config.env.get_or_insert_with(Vec::new);
            for (k, v) in name_values(ins, vars, escape)? {
                let entry = format!("{k}={v}");
                match env.iter_mut().find(|e| e.split('=').next() == Some(k.as_str())) {
                    Some(e) => *e = entry,
                    None => env.push(entry),
                }
            }
        }
        "label" => {
            for (k, v) in name_values(ins, vars, escape)? {
                config.labels.insert(k, v);
            }
        }
        "maintainer" => {}
        "cmd" => {
            config.cmd = Some(command(ins, &shell));
            config.args_escaped = None;
        }
        "entrypoint" => {
            let words = command(ins, &shell);
            // (dockerd also drops a CMD not set in the same stage; callers do that.)
            config.entrypoint = if ins.json().is_none() && ins.rest.trim().is_empty() { None } else { Some(words) };
        }
        "expose" => {
            let ports = config.exposed_ports.get_or_insert_with(BTreeMap::new);
            for p in process(&ins.rest, vars, escape, true)? {
                let p = if p.contains('/') { p.to_ascii_lowercase() } else { format!("{p}/tcp") };
                let (port, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                let valid_range = |s: &str| s.split('-').all(|n| n.parse::<u16>().is_ok());
                if !valid_range(port) || !matches!(proto, "tcp" | "udp" | "sctp") {
                    return Err(ServiceError::InvalidParameter(format!("Invalid containerPort: {port}")));
                }
                ports.insert(p.clone(), serde_json::json!({}));
            }
        }
        "user" => config.user = process_word(&ins.rest, vars, escape)?,
        "workdir" => {
            let dir = process_word(&ins.rest, vars, escape)?;
            if dir.is_empty() {
                return Err(ServiceError::InvalidParameter("WORKDIR requires exactly one argument".into()));
            }
            config.working_dir = if dir.starts_with('/') {
                clean_path(&dir)
            } else {
                clean_path(&format!("{}/{}", if config.working_dir.is_empty() { "/" } else { &config.working_dir }, dir))
            };
        }
        "volume" => {
            let vols = match ins.json() {
                Some(v) => v,
                None => process(&ins.rest, vars, escape, true)?,
            };
            if vols.is_empty() {
                return Err(ServiceError::InvalidParameter("VOLUME requires at least one argument".into()));
            }
            let map = config.volumes.get_or_insert_with(BTreeMap::new);
            for v in vols {
                let v = v.trim().to_string();
                if v.is_empty() {
                    return Err(ServiceError::InvalidParameter("VOLUME specified can not be an empty string".into()));
                }
                map.insert(v, serde_json::json!({}));
            }
        }
        "stopsignal" => config.stop_signal = Some(process_word(&ins.rest, vars, escape)?),
        "onbuild" => {
            let inner = ins.rest.trim();
            let word = inner.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
            match word.as_str() {
                "ONBUILD" => return Err(ServiceError::InvalidParameter("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into())),
                "FROM" | "MAINTAINER" => {
                    return Err(ServiceError::InvalidParameter(format!("{word} isn't allowed as an ONBUILD trigger")))
                }
                "" => return Err(ServiceError::InvalidParameter("ONBUILD requires at least one argument".into())),
                _ => {}
            }
            let (w, r) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
            config.on_build.get_or_insert_with(Vec::new).push(format!("{} {}", w.to_ascii_uppercase(), r.trim_start()).trim_end().to_string());
        }
        "shell" => {
            let Some(words) = ins.json() else {
                return Err(ServiceError::InvalidParameter("SHELL requires the arguments to be in JSON form".into()));
            };
            if words.is_empty() {
                return Err(ServiceError::InvalidParameter("SHELL requires at least one argument".into()));
            }
            config.shell = Some(words);
        }
        "healthcheck" => config.healthcheck = Some(healthcheck(ins, &shell)?),
        _ => return Ok(false),
    }
    let _ = kw;
    Ok(true)
}

fn healthcheck(ins: &Instruction, shell: &[String]) -> Result<HealthConfig, ServiceError> {
    let rest = ins.rest.trim();
    let (word, args) = rest.split_once(char::is_whitespace).map(|(w, a)| (w, a.trim())).unwrap_or((rest, ""));
    let mut hc = HealthConfig::default();
    match word.to_ascii_uppercase().as_str() {
        "NONE" => {
            if !args.is_empty() {
                return Err(ServiceError::InvalidParameter("HEALTHCHECK NONE takes no arguments".into()));
            }
            hc.test = Some(vec!["NONE".into()]);
            return Ok(hc);
        }
        "CMD" => {
            let sub = Instruction { rest: args.to_string(), ..ins.clone() };
            let test = match sub.json() {
                Some(words) => std::iter::once("CMD".to_string()).chain(words).collect(),
                None => {
                    let _ = shell;
                    vec!["CMD-SHELL".to_string(), args.to_string()]
                }
            };
            hc.test = Some(test);
        }
        other => {
            return Err(ServiceError::InvalidParameter(format!("Unknown type \"{other}\" in HEALTHCHECK (try CMD)")));
        }
    }
    let dur = |name: &str| -> Result<Option<i64>, ServiceError> {
        match ins.flag(name) {
            None => Ok(None),
            Some(v) => parse_duration(v)
                .map(Some)
                .ok_or_else(|| ServiceError::InvalidParameter(format!("time: invalid duration \"{v}\""))),
        }
    };
    hc.interval = dur("interval")?;
    hc.timeout = dur("timeout")?;
    hc.start_period = dur("start-period")?;
    if let Some(r) = ins.flag("retries") {
        hc.retries = Some(r.parse().map_err(|_| ServiceError::InvalidParameter(format!("invalid retries \"{r}\"")))?);
    }
    Ok(hc)
}

/// Lexical path cleaning (`path.Clean`) for absolute paths.
pub fn clean_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    format!("/{}", out.join("/"))
}

/// The instructions `--change` accepts (moby's `validCommitCommands`).
const COMMIT_CHANGES: &[&str] =
    &["cmd", "entrypoint", "env", "expose", "label", "onbuild", "stopsignal", "user", "volume", "workdir", "healthcheck"];

/// `config` with the `--change` instructions of commit and import
/// applied, as moby's `BuildFromConfig`.
pub fn apply_changes(mut config: ContainerConfig, changes: &[String]) -> Result<ContainerConfig, ServiceError> {
    let text = changes.join("\n");
    let parsed = parse(&text)?;
    let mut cmd_set = false;
    for ins in &parsed.instructions {
        if !COMMIT_CHANGES.contains(&ins.keyword.as_str()) {
            return Err(ServiceError::InvalidParameter(format!("{} is not a valid change command", ins.keyword)));
        }
        let vars = env_vars(config.env.as_deref().unwrap_or_default());
        apply_metadata(ins, &mut config, &vars, parsed.escape)?;
        match ins.keyword.as_str() {
            "cmd" => cmd_set = true,
            "entrypoint" if !cmd_set => config.cmd = None,
            _ => {}
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutions_nest_to_a_bound_not_to_a_stack_overflow() {
        let nested = |levels: usize| format!("{}x{}", "${a:-".repeat(levels), "}".repeat(levels));
        let vars = Vars::new();
        assert_eq!(process_word(&nested(MAX_NESTING), &vars, '\\').unwrap(), "x");
        // The input that crashed the daemon, on a stack as small as a
        // tokio worker's.
        let deep = nested(20_000);
        let result = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || (process_word(&deep, &vars, '\\'), expand_vars(&deep, &vars, '\\')))
            .unwrap()
            .join()
            .unwrap();
        for r in [result.0, result.1] {
            assert!(r.unwrap_err().to_string().contains("nested too deeply"));
        }
    }

    #[test]
    fn continuations_comments_and_flags() {
        let df = parse("# escape=\\\nFROM busybox AS base\n# c\nRUN echo a \\\n  # inner comment\n  b\nCOPY --from=base --chown=1:1 /a /b\n").unwrap();
        assert_eq!(df.instructions.len(), 3);
        assert_eq!(df.instructions[1].rest, "echo a   b");
        assert_eq!(df.instructions[2].flag("from"), Some("base"));
        assert_eq!(df.instructions[2].flag("chown"), Some("1:1"));
        assert_eq!(df.instructions[2].rest, "/a /b");
        assert!(parse("FROM x\nBOGUS y\n").is_err());
    }

    #[test]
    fn heredocs() {
        let df = parse("FROM x\nRUN <<EOF\necho a\necho b\nEOF\nCOPY <<-\"one\" <<two /d/\n\t$A\none\n2\ntwo\nRUN cat <<<x\n").unwrap();
        assert_eq!(df.instructions.len(), 4);
        let run = &df.instructions[1];
        assert_eq!(run.rest, "<<EOF");
        assert_eq!(run.heredocs, [Heredoc { name: "EOF".into(), content: "echo a\necho b\n".into(), expand: true }]);
        let copy = &df.instructions[2];
        assert_eq!(copy.heredocs[0], Heredoc { name: "one".into(), content: "$A\n".into(), expand: false });
        assert_eq!(copy.heredocs[1].content, "2\n");
        assert!(df.instructions[3].heredocs.is_empty(), "a here-string is not a heredoc");
        assert!(parse("FROM x\nRUN <<EOF\necho\n").is_err());
    }

    #[test]
    fn escape_directive() {
        let df = parse("# escape=`\nFROM x\nRUN a `\n b\n").unwrap();
        assert_eq!(df.escape, '`');
        assert_eq!(df.instructions[1].rest, "a  b");
    }

    #[test]
    fn substitution() {
        let vars: Vars = [("A".to_string(), "1".to_string()), ("E".to_string(), String::new())].into();
        let w = |s: &str| process_word(s, &vars, '\\').unwrap();
        assert_eq!(w("$A-${A}"), "1-1");
        assert_eq!(w("${B:-def}"), "def");
        assert_eq!(w("${E:-def}"), "def");
        assert_eq!(w("${E-def}"), "");
        assert_eq!(w("${A:+alt}"), "alt");
        assert_eq!(w("${B:+alt}"), "");
        assert_eq!(w("'$A'"), "$A");
        assert_eq!(w("\"$A x\""), "1 x");
        assert_eq!(w("\\$A"), "$A");
        assert_eq!(process("a \"b c\" d", &vars, '\\', true).unwrap(), ["a", "b c", "d"]);
        assert_eq!(expand_vars("'$A' \"${B:-x}\" \\$A\n", &vars, '\\').unwrap(), "'1' \"x\" $A\n");
    }

    #[test]
    fn env_forms() {
        let df = parse("ENV A=1 B=\"two words\" C=${A}\nENV D old style\n").unwrap();
        let vars = Vars::new();
        let mut cfg = ContainerConfig::default();
        apply_metadata(&df.instructions[0], &mut cfg, &[("A".to_string(), "1".to_string())].into(), '\\').unwrap();
        apply_metadata(&df.instructions[1], &mut cfg, &vars, '\\').unwrap();
        assert_eq!(cfg.env.unwrap(), ["A=1", "B=two words", "C=1", "D=old style"]);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(30_000_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("x"), None);
    }

    #[test]
    fn changes_apply_in_order() {
        let base = ContainerConfig { cmd: Some(vec!["sh".into()]), env: Some(vec!["A=1".into()]), ..Default::default() };
        let c = apply_changes(base.clone(), &["ENV B=$A".into(), "EXPOSE 80".into(), "ENTRYPOINT [\"/x\"]".into()]).unwrap();
        assert_eq!(c.env.unwrap(), ["A=1", "B=1"]);
        assert!(c.exposed_ports.unwrap().contains_key("80/tcp"));
        assert_eq!(c.cmd, None);
        let c = apply_changes(base.clone(), &["CMD [\"a\"]".into(), "ENTRYPOINT /x".into()]).unwrap();
        assert_eq!(c.cmd.unwrap(), ["a"]);
        assert_eq!(c.entrypoint.unwrap(), ["/bin/sh", "-c", "/x"]);
        assert!(apply_changes(base, &["RUN x".into()]).is_err());
    }
}
