//! Registry authentication: `WWW-Authenticate` challenges, bearer tokens
//! from the registry's token service (scoped `repository:<name>:pull[,push]`,
//! with identity/refresh tokens as dockerd uses them) and plain basic auth.
//!
//! Credentials and tokens are never logged: [`Credentials`]' `Debug` hides
//! them and the request log lines carry URLs without query secrets.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Deserialize;
use tokio::sync::Mutex;
use tracing::debug;

use super::error::{ErrorKind, RegistryError};

/// The client ID dockerd sends to token services.
pub const CLIENT_ID: &str = "docker";
/// Tokens without `expires_in` last this long (the token spec's minimum).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Refresh a token this long before it runs out.
const TOKEN_EXPIRY_MARGIN: Duration = Duration::from_secs(5);

/// What a client sent in `X-Registry-Auth` (or `POST /auth`), decoded by
/// the caller. Any field may be empty; all empty means anonymous.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// A refresh token from an earlier login (`identitytoken`); exchanged
    /// for access tokens with OAuth2 `grant_type=refresh_token`.
    pub identity_token: String,
    /// A bearer token to send as-is (`registrytoken`).
    pub registry_token: String,
}

impl Credentials {
    pub fn anonymous() -> Self {
        Self::default()
    }

    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self { username: username.into(), password: password.into(), ..Self::default() }
    }

    pub fn is_anonymous(&self) -> bool {
        self.username.is_empty()
            && self.password.is_empty()
            && self.identity_token.is_empty()
            && self.registry_token.is_empty()
    }

    fn has_password(&self) -> bool {
        !self.username.is_empty() || !self.password.is_empty()
    }

    fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |s: &str| if s.is_empty() { "" } else { "<redacted>" };
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &hidden(&self.password))
            .field("identity_token", &hidden(&self.identity_token))
            .field("registry_token", &hidden(&self.registry_token))
            .finish()
    }
}

/// One challenge of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Lower case: `bearer`, `basic`.
    pub scheme: String,
    /// Parameter names in lower case: `realm`, `service`, `scope`.
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

fn is_space(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

fn read_token<'a>(s: &'a str, i: &mut usize) -> &'a str {
    let b = s.as_bytes();
    let start = *i;
    while *i < b.len() && is_tchar(b[*i]) {
        *i += 1;
    }
    // Token characters are ASCII, so the run is valid UTF-8 even when
    // `start` follows a skipped byte of a multi-byte character.
    std::str::from_utf8(&b[start..*i]).unwrap_or_default()
}

/// A quoted string starting at `i` (on the opening quote), with `\` escapes.
fn read_quoted(s: &str, i: &mut usize) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    *i += 1;
    while *i < b.len() {
        match b[*i] {
            b'"' => {
                *i += 1;
                break;
            }
            b'\\' if *i + 1 < b.len() => {
                out.push(b[*i + 1]);
                *i += 2;
            }
            c => {
                out.push(c);
                *i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a `WWW-Authenticate` value (RFC 7235): one or more challenges,
/// each a scheme and comma-separated `name=value` parameters. Garbage is
/// skipped, never fatal.
pub fn parse_challenges(header: &str) -> Vec<Challenge> {
    let b = header.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        while i < b.len() && (is_space(b[i]) || b[i] == b',') {
            i += 1;
        }
        let scheme = read_token(header, &mut i);
        if scheme.is_empty() {
            i += 1; // not a token character: skip it
            continue;
        }
        let mut params = BTreeMap::new();
        loop {
            let before = i;
            while i < b.len() && (is_space(b[i]) || b[i] == b',') {
                i += 1;
            }
            let name = read_token(header, &mut i);
            let mut j = i;
            while j < b.len() && is_space(b[j]) {
                j += 1;
            }
            if name.is_empty() || j >= b.len() || b[j] != b'=' {
                // the next challenge's scheme (or the end)
                i = if name.is_empty() { i.max(before) } else { i - name.len() };
                break;
            }
            i = j + 1;
            while i < b.len() && is_space(b[i]) {
                i += 1;
            }
            let value = if i < b.len() && b[i] == b'"' {
                read_quoted(header, &mut i)
            } else {
                read_token(header, &mut i).to_owned()
            };
            params.insert(name.to_ascii_lowercase(), value);
        }
        out.push(Challenge { scheme: scheme.to_ascii_lowercase(), params });
    }
    out
}

/// The token scope for a repository: `repository:<path>:pull` or
/// `repository:<path>:pull,push`.
pub fn repository_scope(path: &str, push: bool) -> String {
    format!("repository:{path}:{}", if push { "pull,push" } else { "pull" })
}

/// A token service's answer.
#[derive(Debug, Default, Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: u64,
    #[serde(default)]
    refresh_token: String,
}

/// A token service's error body: Docker Hub sends `details`, distribution
/// the usual `errors` list.
#[derive(Deserialize)]
struct TokenError {
    #[serde(default)]
    details: String,
}

/// A fetched bearer token.
pub(crate) struct Token {
    pub token: String,
    pub expires_in: Duration,
    /// A refresh token, returned on logins (`offline_token=true`).
    pub refresh_token: String,
}

/// Asks the token service named by a bearer challenge for a token
/// covering `scopes`, as dockerd does: OAuth2 POST with the refresh token
/// when there is one, else GET with basic auth (or anonymously).
pub(crate) async fn fetch_token(
    http: &reqwest::Client,
    challenge: &Challenge,
    scopes: &[String],
    credentials: &Credentials,
    offline: bool,
) -> Result<Token, RegistryError> {
    let realm = challenge
        .param("realm")
        .ok_or_else(|| RegistryError::new(ErrorKind::Unauthorized, "bearer challenge without realm"))?;
    let realm_url = reqwest::Url::parse(realm)
        .map_err(|_| RegistryError::new(ErrorKind::Unauthorized, format!("invalid token realm {realm:?}")))?;
    let service = challenge.param("service").unwrap_or_default();
    let mut scopes: Vec<String> = scopes.to_vec();
    if let Some(extra) = challenge.param("scope") {
        for s in extra.split(' ').filter(|s| !s.is_empty()) {
            if !scopes.iter().any(|have| have == s) {
                scopes.push(s.to_owned());
            }
        }
    }

    if !credentials.identity_token.is_empty() {
        let mut form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", credentials.identity_token.clone()),
            ("client_id", CLIENT_ID.to_owned()),
        ];
        if !service.is_empty() {
            form.push(("service", service.to_owned()));
        }
        if !scopes.is_empty() {
            form.push(("scope", scopes.join(" ")));
        }
        if offline {
            form.push(("access_type", "offline".to_owned()));
        }
        debug!(realm = %realm_url, "registry: fetching token with refresh token");
        let what = format!("Post \"{realm_url}\"");
        let resp = http
            .post(realm_url.clone())
            .form(&form)
            .send()
            .await
            .map_err(|e| RegistryError::transport(&what, &e))?;
        let status = resp.status().as_u16();
        // Token services without OAuth2 POST answer 404/405; fall back to
        // GET, as containerd does.
        if status != 404 && status != 405 {
            return token_from_response(resp, &what).await;
        }
    }

    let mut url = realm_url;
    {
        let mut q = url.query_pairs_mut();
        if !service.is_empty() {
            q.append_pair("service", service);
        }
        for s in &scopes {
            q.append_pair("scope", s);
        }
        if offline {
            q.append_pair("offline_token", "true");
            q.append_pair("client_id", CLIENT_ID);
        }
    }
    let what = format!("Get \"{}\"", strip_query(&url));
    debug!(realm = %strip_query(&url), "registry: fetching token");
    let mut req = http.get(url.clone());
    if credentials.has_password() {
        req = req.header(reqwest::header::AUTHORIZATION, credentials.basic_header());
    }
    let resp = req.send().await.map_err(|e| RegistryError::transport(&what, &e))?;
    token_from_response(resp, &what).await
}

async fn token_from_response(resp: reqwest::Response, what: &str) -> Result<Token, RegistryError> {
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map_err(|e| RegistryError::transport(what, &e))?;
    if status != 200 {
        if let Ok(TokenError { details }) = serde_json::from_slice::<TokenError>(&body) {
            if !details.is_empty() {
                let kind = if status == 401 || status == 403 { ErrorKind::Unauthorized } else { ErrorKind::Other };
                return Err(RegistryError::new(kind, format!("{what}: unauthorized: {details}")));
            }
        }
        let mut err = RegistryError::from_response(status, &body, what);
        if status == 401 || status == 403 {
            err = err.with_context(what);
        }
        return Err(err);
    }
    let parsed: TokenResponse = serde_json::from_slice(&body)
        .map_err(|e| RegistryError::new(ErrorKind::Unauthorized, format!("{what}: invalid token response: {e}")))?;
    let token = if parsed.access_token.is_empty() { parsed.token } else { parsed.access_token };
    if token.is_empty() {
        return Err(RegistryError::new(ErrorKind::Unauthorized, format!("{what}: token service answered no token")));
    }
    let expires_in = if parsed.expires_in == 0 {
        DEFAULT_TOKEN_LIFETIME
    } else {
        Duration::from_secs(parsed.expires_in).max(DEFAULT_TOKEN_LIFETIME)
    };
    Ok(Token { token, expires_in, refresh_token: parsed.refresh_token })
}

/// A URL without its query (which may carry scopes, never secrets, but
/// is noise in messages).
pub(crate) fn strip_query(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

/// The authorization one repository session uses: learns the scheme from
/// the first 401, then sends the header on every request, refreshing
/// expired tokens.
pub(crate) struct Authorizer {
    credentials: Credentials,
    state: Mutex<AuthState>,
}

#[derive(Default)]
struct AuthState {
    scopes: Vec<String>,
    challenge: Option<Challenge>,
    header: Option<String>,
    expires: Option<Instant>,
}

impl Authorizer {
    pub fn new(credentials: Credentials, scopes: Vec<String>) -> Self {
        Self { credentials, state: Mutex::new(AuthState { scopes, ..AuthState::default() }) }
    }

    /// The `Authorization` value to send now, if any; refetches an
    /// expired bearer token.
    pub async fn header(&self, http: &reqwest::Client) -> Result<Option<String>, RegistryError> {
        let mut state = self.state.lock().await;
        let expired = state.expires.is_some_and(|t| Instant::now() + TOKEN_EXPIRY_MARGIN >= t);
        if expired {
            state.header = None;
            state.expires = None;
            if let Some(challenge) = state.challenge.clone() {
                self.apply(&mut state, http, &challenge).await?;
            }
        }
        Ok(state.header.clone())
    }

    /// Handles a 401: picks the best challenge (bearer over basic) and
    /// gets a header for it. `sent` is the header the failed request
    /// carried; if a basic header already failed, the credentials are wrong.
    pub async fn on_unauthorized(
        &self,
        http: &reqwest::Client,
        challenges: &[Challenge],
        sent: Option<&str>,
    ) -> Result<bool, RegistryError> {
        let mut state = self.state.lock().await;
        if sent.is_some() && state.header.as_deref() != sent {
            // Another request already renewed it meanwhile.
            return Ok(state.header.is_some());
        }
        let best = challenges
            .iter()
            .find(|c| c.scheme == "bearer")
            .or_else(|| challenges.iter().find(|c| c.scheme == "basic"));
        let Some(challenge) = best.cloned() else {
            return Ok(false);
        };
        if challenge.scheme == "basic" && sent.is_some_and(|s| s.starts_with("Basic ")) {
            return Ok(false);
        }
        state.challenge = Some(challenge.clone());
        self.apply(&mut state, http, &challenge).await?;
        Ok(state.header.is_some())
    }

    /// Widens the token to another scope (e.g. pull from the source of a
    /// cross-repository mount); fetches a new token at once when the
    /// service is already known.
    pub async fn add_scope(&self, http: &reqwest::Client, scope: String) -> Result<(), RegistryError> {
        let mut state = self.state.lock().await;
        if state.scopes.contains(&scope) {
            return Ok(());
        }
        state.scopes.push(scope);
        if let Some(challenge) = state.challenge.clone().filter(|c| c.scheme == "bearer") {
            self.apply(&mut state, http, &challenge).await?;
        }
        Ok(())
    }

    async fn apply(&self, state: &mut AuthState, http: &reqwest::Client, challenge: &Challenge) -> Result<(), RegistryError> {
        match challenge.scheme.as_str() {
            "bearer" if !self.credentials.registry_token.is_empty() => {
                state.header = Some(format!("Bearer {}", self.credentials.registry_token));
                state.expires = None;
            }
            "bearer" => {
                let token = fetch_token(http, challenge, &state.scopes, &self.credentials, false).await?;
                state.header = Some(format!("Bearer {}", token.token));
                state.expires = Some(Instant::now() + token.expires_in);
            }
            "basic" if self.credentials.has_password() => {
                state.header = Some(self.credentials.basic_header());
                state.expires = None;
            }
            _ => {
                state.header = None;
                state.expires = None;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_challenge_from_docker_hub() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(c[0].param("service"), Some("registry.docker.io"));
        assert_eq!(c[0].param("scope"), Some("repository:library/busybox:pull"));
    }

    #[test]
    fn basic_challenge_from_htpasswd_registry() {
        let c = parse_challenges(r#"Basic realm="berth-compat-tests""#);
        assert_eq!(c, vec![Challenge { scheme: "basic".into(), params: [("realm".into(), "berth-compat-tests".into())].into() }]);
    }

    #[test]
    fn several_challenges_spacing_escapes_and_tokens() {
        let c = parse_challenges(
            r#"Basic realm="a, b", BEARER  Realm = "https://x/t\"q" , service=reg ,scope="repository:a:pull repository:b:pull""#,
        );
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].param("realm"), Some("a, b"));
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].param("realm"), Some("https://x/t\"q"));
        assert_eq!(c[1].param("service"), Some("reg"));
        assert_eq!(c[1].param("scope"), Some("repository:a:pull repository:b:pull"));
    }

    #[test]
    fn garbage_never_panics_or_loops() {
        for s in ["", ",,,", "=", "Bearer", "Bearer realm", "Bearer realm=", "Bearer realm=\"open", "Negotiate YWJj==", "\u{e9}\u{e9} x=y", "a=b=c"] {
            let _ = parse_challenges(s);
        }
        assert_eq!(parse_challenges("Bearer")[0].params.len(), 0);
        assert_eq!(parse_challenges("Bearer realm=\"open")[0].param("realm"), Some("open"));
    }

    #[test]
    fn scopes_name_the_repository_and_actions() {
        assert_eq!(repository_scope("library/busybox", false), "repository:library/busybox:pull");
        assert_eq!(repository_scope("a/b", true), "repository:a/b:pull,push");
    }

    #[test]
    fn credentials_never_show_in_debug() {
        let c = Credentials { username: "u".into(), password: "hunter2".into(), identity_token: "tok".into(), registry_token: String::new() };
        let text = format!("{c:?}");
        assert!(!text.contains("hunter2") && !text.contains("tok\""), "{text}");
        assert!(text.contains("<redacted>"));
        assert!(Credentials::anonymous().is_anonymous());
        assert!(!Credentials::basic("u", "p").is_anonymous());
        assert_eq!(Credentials::basic("aladdin", "opensesame").basic_header(), "Basic YWxhZGRpbjpvcGVuc2VzYW1l");
    }

    #[tokio::test]
    async fn basic_challenge_uses_credentials_once() {
        let http = reqwest::Client::new();
        let basic = parse_challenges(r#"Basic realm="r""#);
        let a = Authorizer::new(Credentials::basic("u", "p"), vec![]);
        assert!(a.on_unauthorized(&http, &basic, None).await.unwrap());
        let h = a.header(&http).await.unwrap().unwrap();
        assert!(h.starts_with("Basic "));
        // The same basic header refused again: wrong credentials, give up.
        assert!(!a.on_unauthorized(&http, &basic, Some(&h)).await.unwrap());
        // Anonymous: nothing to offer a basic challenge.
        let anon = Authorizer::new(Credentials::anonymous(), vec![]);
        assert!(!anon.on_unauthorized(&http, &basic, None).await.unwrap());
        assert_eq!(anon.header(&http).await.unwrap(), None);
    }

    /// One recorded request to the fake token service.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        target: String,
        authorization: Option<String>,
        body: String,
    }

    type Answer = fn(&Seen) -> (u16, String);

    /// A token service on 127.0.0.1 answering with `answer`, recording
    /// every request.
    async fn token_service(answer: Answer) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Seen>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                let head_end = loop {
                    if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => raw.extend_from_slice(&buf[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned()))
                };
                let length: usize = header("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
                while raw.len() < head_end + length {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => raw.extend_from_slice(&buf[..n]),
                    }
                }
                let mut first = head.lines().next().unwrap_or_default().split(' ');
                let req = Seen {
                    method: first.next().unwrap_or_default().to_owned(),
                    target: first.next().unwrap_or_default().to_owned(),
                    authorization: header("authorization"),
                    body: String::from_utf8_lossy(&raw[head_end..]).into_owned(),
                };
                let (status, body) = answer(&req);
                log.lock().unwrap().push(req);
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            }
        });
        (addr, seen)
    }

    fn bearer(addr: &str) -> Vec<Challenge> {
        parse_challenges(&format!(r#"Bearer realm="http://{addr}/token",service="reg.test""#))
    }

    #[tokio::test]
    async fn bearer_tokens_come_from_the_realm_with_basic_credentials_and_scopes() {
        let (addr, seen) = token_service(|req| {
            let n = req.target.matches("scope=").count();
            (200, format!(r#"{{"token":"T{n}","expires_in":300}}"#))
        })
        .await;
        let http = reqwest::Client::new();
        let a = Authorizer::new(Credentials::basic("u", "p"), vec![repository_scope("a/b", false)]);
        assert!(a.on_unauthorized(&http, &bearer(&addr), None).await.unwrap());
        assert_eq!(a.header(&http).await.unwrap().as_deref(), Some("Bearer T1"));
        // A mount source widens the token at once.
        a.add_scope(&http, repository_scope("c/d", false)).await.unwrap();
        assert_eq!(a.header(&http).await.unwrap().as_deref(), Some("Bearer T2"));

        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].method, "GET");
        assert_eq!(seen[0].target, "/token?service=reg.test&scope=repository%3Aa%2Fb%3Apull");
        assert_eq!(seen[0].authorization.as_deref(), Some("Basic dTpw"));
        assert!(seen[1].target.ends_with("&scope=repository%3Aa%2Fb%3Apull&scope=repository%3Ac%2Fd%3Apull"), "{}", seen[1].target);
    }

    #[tokio::test]
    async fn anonymous_token_requests_carry_no_authorization() {
        let (addr, seen) = token_service(|_| (200, r#"{"access_token":"A"}"#.to_owned())).await;
        let http = reqwest::Client::new();
        let a = Authorizer::new(Credentials::anonymous(), vec![repository_scope("library/busybox", false)]);
        assert!(a.on_unauthorized(&http, &bearer(&addr), None).await.unwrap());
        assert_eq!(a.header(&http).await.unwrap().as_deref(), Some("Bearer A"));
        assert_eq!(seen.lock().unwrap()[0].authorization, None);
    }

    #[tokio::test]
    async fn identity_tokens_use_oauth2_refresh_grant() {
        let (addr, seen) = token_service(|_| (200, r#"{"access_token":"A","refresh_token":"R2"}"#.to_owned())).await;
        let http = reqwest::Client::new();
        let creds = Credentials { username: "<token>".into(), identity_token: "R1".into(), ..Credentials::default() };
        let a = Authorizer::new(creds, vec![repository_scope("x/y", true)]);
        assert!(a.on_unauthorized(&http, &bearer(&addr), None).await.unwrap());
        assert_eq!(a.header(&http).await.unwrap().as_deref(), Some("Bearer A"));
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].target, "/token");
        assert_eq!(seen[0].authorization, None, "a refresh token is not basic auth");
        let form: BTreeMap<String, String> = form_urlencoded::parse(seen[0].body.as_bytes()).into_owned().collect();
        assert_eq!(form["grant_type"], "refresh_token");
        assert_eq!(form["refresh_token"], "R1");
        assert_eq!(form["client_id"], "docker");
        assert_eq!(form["service"], "reg.test");
        assert_eq!(form["scope"], "repository:x/y:pull,push");
    }

    #[tokio::test]
    async fn services_without_oauth2_post_fall_back_to_get() {
        let (addr, seen) = token_service(|req| match req.method.as_str() {
            "POST" => (404, "{}".to_owned()),
            _ => (200, r#"{"token":"G"}"#.to_owned()),
        })
        .await;
        let http = reqwest::Client::new();
        let creds = Credentials { identity_token: "R1".into(), ..Credentials::default() };
        let a = Authorizer::new(creds, vec![]);
        assert!(a.on_unauthorized(&http, &bearer(&addr), None).await.unwrap());
        assert_eq!(a.header(&http).await.unwrap().as_deref(), Some("Bearer G"));
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn refused_credentials_read_as_dockerd_says_them() {
        let (addr, _) = token_service(|_| (401, r#"{"details":"incorrect username or password"}"#.to_owned())).await;
        let http = reqwest::Client::new();
        let a = Authorizer::new(Credentials::basic("u", "bad"), vec![]);
        let err = a.on_unauthorized(&http, &bearer(&addr), None).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unauthorized);
        assert!(err.to_string().ends_with("unauthorized: incorrect username or password"), "{err}");
        assert!(err.to_string().starts_with(&format!("Get \"http://{addr}/token\"")), "{err}");
    }

    #[tokio::test]
    async fn registry_token_is_sent_as_is() {
        let http = reqwest::Client::new();
        let bearer = parse_challenges(r#"Bearer realm="https://auth.invalid/token""#);
        let creds = Credentials { registry_token: "abc".into(), ..Credentials::default() };
        let a = Authorizer::new(creds, vec![]);
        assert!(a.on_unauthorized(&http, &bearer, None).await.unwrap());
        assert_eq!(a.header(&http).await.unwrap().as_deref(), Some("Bearer abc"));
    }
}
