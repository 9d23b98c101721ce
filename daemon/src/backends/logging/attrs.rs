//! Extra attributes json-file stores with each line (`labels`,
//! `labels-regex`, `env`, `env-regex`, `tag` log-opts), as moby's
//! `logger.Info.ExtraAttributes` and `loggerutils.ParseLogTag`.

use std::collections::BTreeMap;

/// What a log tag template can name about the container.
pub struct LogInfo<'a> {
    pub id: &'a str,
    /// Without the leading `/`.
    pub name: &'a str,
    pub image_name: &'a str,
    pub image_id: &'a str,
    /// Entrypoint and arguments.
    pub command: Vec<&'a str>,
    pub labels: &'a BTreeMap<String, String>,
    pub env: &'a [String],
}

/// The attributes for `opts`; errors are dockerd's (without the
/// "failed to initialize logging driver: " that callers put before them).
pub fn extra_attributes(opts: &BTreeMap<String, String>, info: &LogInfo) -> Result<BTreeMap<String, String>, String> {
    let mut extra = BTreeMap::new();
    let listed = |key: &str| opts.get(key).filter(|v| !v.is_empty()).map(|v| v.split(',').collect::<Vec<_>>());
    for label in listed("labels").unwrap_or_default() {
        if let Some(v) = info.labels.get(label) {
            extra.insert(label.to_string(), v.clone());
        }
    }
    if let Some(re) = regex_opt(opts, "labels-regex")? {
        extra.extend(info.labels.iter().filter(|(k, _)| re.is_match(k)).map(|(k, v)| (k.clone(), v.clone())));
    }
    let env: BTreeMap<&str, &str> = info.env.iter().filter_map(|e| e.split_once('=')).collect();
    for name in listed("env").unwrap_or_default() {
        if let Some(v) = env.get(name) {
            extra.insert(name.to_string(), v.to_string());
        }
    }
    if let Some(re) = regex_opt(opts, "env-regex")? {
        extra.extend(env.iter().filter(|(k, _)| re.is_match(k)).map(|(k, v)| (k.to_string(), v.to_string())));
    }
    // json-file has no default tag: only one the user asked for.
    if let Some(template) = opts.get("tag").filter(|t| !t.is_empty()) {
        extra.insert("tag".into(), render_tag(template, info)?);
    }
    Ok(extra)
}

fn regex_opt(opts: &BTreeMap<String, String>, key: &str) -> Result<Option<regex::Regex>, String> {
    match opts.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(re) => regex::Regex::new(re).map(Some).map_err(|e| {
            // Go's wording for the common case; the rest in Rust's.
            let text = e.to_string();
            if text.contains("unclosed group") {
                format!("error parsing regexp: missing closing ): `{re}`")
            } else {
                format!("error parsing regexp: {}", text.lines().last().unwrap_or_default().trim_start_matches("error: "))
            }
        }),
    }
}

/// The Go-template fields dockerd's tags use: `{{.Name}}`, `{{.ID}}` …
fn render_tag(template: &str, info: &LogInfo) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or("template: log-tag:1: unclosed action")?;
        let action = after[..end].trim();
        let field = action.strip_prefix('.').unwrap_or(action);
        let short = |s: &str| s.chars().take(12).collect::<String>();
        let value = match field {
            "ID" => short(info.id),
            "FullID" => info.id.to_string(),
            "Name" => info.name.to_string(),
            "ImageID" => short(info.image_id),
            "ImageFullID" => info.image_id.to_string(),
            "ImageName" => info.image_name.to_string(),
            "Command" => info.command.join(" "),
            "DaemonName" => "docker".to_string(),
            _ if action.starts_with('.') => {
                return Err(format!(
                    "template: log-tag:1:{}: executing \"log-tag\" at <{action}>: can't evaluate field {field} in type *logger.Info",
                    template[..template.len() - rest.len() + start].chars().count() + 2
                ))
            }
            _ => return Err(format!("template: log-tag:1: function \"{action}\" not defined")),
        };
        out.push_str(&value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `docker logs --details`: the attributes as `k=v` pairs, sorted, values
/// escaped as Go's `url.QueryEscape`.
pub fn details(attrs: &BTreeMap<String, String>) -> String {
    let escape = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                b' ' => "+".to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    attrs.iter().map(|(k, v)| format!("{}={}", escape(k), escape(v))).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn labels_env_and_tag_as_dockerd() {
        let labels = opts(&[("a", "1"), ("b", "2"), ("zz", "9")]);
        let env = vec!["FOO=bar".to_string(), "FOX=y".into(), "X=z".into()];
        let info = LogInfo {
            id: "7497c943fbec0123456789",
            name: "la",
            image_name: "busybox",
            image_id: "sha256:119d2752236d",
            command: vec!["sh", "-c", "echo"],
            labels: &labels,
            env: &env,
        };
        let o = opts(&[
            ("labels", "a,zz,missing"),
            ("env", "FOO,NOPE"),
            ("env-regex", "^FO"),
            ("tag", "{{.Name}}/{{.ID}}/{{ .ImageName }}/{{.DaemonName}} {{.ImageID}} {{.Command}}"),
        ]);
        let attrs = extra_attributes(&o, &info).unwrap();
        assert_eq!(
            attrs,
            opts(&[("FOO", "bar"), ("FOX", "y"), ("a", "1"), ("zz", "9"), ("tag", "la/7497c943fbec/busybox/docker sha256:119d2 sh -c echo")])
        );
        assert_eq!(details(&opts(&[("a", "1"), ("tag", "la/x y")])), "a=1,tag=la%2Fx+y");
        assert_eq!(
            extra_attributes(&opts(&[("tag", "{{.Nope}}")]), &info).unwrap_err(),
            "template: log-tag:1:2: executing \"log-tag\" at <.Nope>: can't evaluate field Nope in type *logger.Info"
        );
        assert_eq!(extra_attributes(&opts(&[("tag", "{{")]), &info).unwrap_err(), "template: log-tag:1: unclosed action");
        assert_eq!(
            extra_attributes(&opts(&[("env-regex", "(")]), &info).unwrap_err(),
            "error parsing regexp: missing closing ): `(`"
        );
        assert!(extra_attributes(&opts(&[("labels-regex", "^[ab]$")]), &info).unwrap().len() == 2);
    }
}
