//! A fake IAM Identity Center on wiremock: the OIDC API (RegisterClient,
//! StartDeviceAuthorization, CreateToken, /authorize) and the portal
//! (GetRoleCredentials, Logout), strict the way the real ones are about field names,
//! client secrets, grant types and PKCE (S256 of the verifier must equal the
//! challenge). It counts every call, and can answer 400/500 or `authorization_pending`
//! forever.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::DirBuilderExt;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::Digest;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::env::TestEnv;

pub const START_URL: &str = "https://corp.awsapps.com/start";
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const USER_CODE: &str = "WDJB-MJHT";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[derive(Clone, Debug)]
pub struct Client {
    pub secret: String,
    pub grant_types: Vec<String>,
    pub redirect_uris: Vec<String>,
    pub issuer_url: Option<String>,
}

#[derive(Debug, Default)]
pub struct SsoState {
    pub oidc_uri: String,
    pub clients: BTreeMap<String, Client>,
    /// device code → (client id, polls still to answer authorization_pending)
    pub devices: BTreeMap<String, (String, usize)>,
    /// code → (client id, challenge, redirect uri)
    pub codes: BTreeMap<String, (String, String, String)>,
    pub access_tokens: BTreeSet<String>,
    /// refresh token → client id
    pub refresh_tokens: BTreeMap<String, String>,
    pub n: usize,
    /// How long issued access tokens last.
    pub access_ttl: i64,
    /// authorization_pending answers before a device code is confirmed.
    pub pending_polls: usize,
    pub pending_forever: bool,
    /// slow_down answers before the pending ones.
    pub slow_downs: usize,
    /// Every OIDC call: (operation, grant type for CreateToken).
    pub calls: Vec<(String, String)>,
    /// Poll times of device CreateToken calls (unix ms).
    pub polls_at: Vec<u128>,
    /// The answer every OIDC call gets instead, when set: (status, error type).
    pub fault: Option<(u16, String)>,
    /// GetRoleCredentials calls: (token, account, role).
    pub role_calls: Vec<(String, String, String)>,
    pub logouts: Vec<String>,
    /// Whether a refresh rotates the refresh token.
    pub rotate: bool,
}

pub struct FakeSso {
    pub oidc: MockServer,
    pub portal: MockServer,
    pub state: Arc<Mutex<SsoState>>,
}

fn error(status: u16, kind: &str, code: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("x-amzn-ErrorType", kind)
        .set_body_json(json!({"error": code, "error_description": message, "message": message}))
}

fn bad(message: &str) -> ResponseTemplate {
    error(400, "InvalidRequestException", "invalid_request", message)
}

/// The access key the portal issues for an account and role: who is signing says
/// which account-role the portal was asked for.
pub fn key_for(account: &str, role: &str) -> String {
    let mut k = format!("ASIA{account}{role}").to_uppercase();
    k.retain(|c| c.is_ascii_alphanumeric());
    k.truncate(20);
    while k.len() < 20 {
        k.push('0');
    }
    k
}

pub fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

struct Oidc(Arc<Mutex<SsoState>>);

impl Respond for Oidc {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = self.0.lock().unwrap();
        let path = req.url.path().to_string();
        if req.method.as_str() == "GET" && path == "/authorize" {
            st.calls.push(("Authorize".into(), String::new()));
            return authorize(&mut st, req);
        }
        let op = match path.as_str() {
            "/client/register" => "RegisterClient",
            "/device_authorization" => "StartDeviceAuthorization",
            "/token" => "CreateToken",
            _ => return ResponseTemplate::new(404),
        };
        let body: Value = match serde_json::from_slice(&req.body) {
            Ok(v @ Value::Object(_)) => v,
            _ => return bad("the body is not a JSON object"),
        };
        let grant = body["grantType"].as_str().unwrap_or_default().to_string();
        st.calls.push((op.into(), grant));
        if let Some((status, kind)) = st.fault.clone() {
            return error(status, &kind, "fault", "injected fault");
        }
        match op {
            "RegisterClient" => register(&mut st, &body),
            "StartDeviceAuthorization" => start_device(&mut st, &body),
            _ => token(&mut st, &body),
        }
    }
}

/// Fails when `body` has a key outside `allowed`.
fn only(body: &Value, allowed: &[&str]) -> Option<ResponseTemplate> {
    let extra: Vec<&String> = body
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .collect();
    (!extra.is_empty()).then(|| bad(&format!("unknown fields {extra:?}")))
}

fn register(st: &mut SsoState, body: &Value) -> ResponseTemplate {
    if let Some(r) = only(
        body,
        &[
            "clientName",
            "clientType",
            "scopes",
            "grantTypes",
            "redirectUris",
            "issuerUrl",
        ],
    ) {
        return r;
    }
    if body["clientName"].as_str().is_none() || body["clientType"] != "public" {
        return bad("clientName and clientType=public are required");
    }
    let strings = |k: &str| -> Vec<String> {
        body[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let grant_types = strings("grantTypes");
    let redirect_uris = strings("redirectUris");
    let issuer_url = body["issuerUrl"].as_str().map(String::from);
    if grant_types.iter().any(|g| g == "authorization_code")
        && (redirect_uris.is_empty() || issuer_url.is_none())
    {
        return bad("authorization_code needs redirectUris and issuerUrl");
    }
    st.n += 1;
    let id = format!("client-{}", st.n);
    let secret = format!("client-secret-{}", st.n);
    st.clients.insert(
        id.clone(),
        Client {
            secret: secret.clone(),
            grant_types,
            redirect_uris,
            issuer_url,
        },
    );
    ResponseTemplate::new(200).set_body_json(json!({
        "clientId": id,
        "clientSecret": secret,
        "clientIdIssuedAt": now(),
        "clientSecretExpiresAt": now() + 90 * 86400,
    }))
}

/// The client a request names, if its secret is right.
fn client(st: &SsoState, body: &Value) -> Option<Client> {
    let id = body["clientId"].as_str().unwrap_or_default();
    st.clients
        .get(id)
        .filter(|c| body["clientSecret"].as_str() == Some(c.secret.as_str()))
        .cloned()
}

fn invalid_client() -> ResponseTemplate {
    error(
        401,
        "InvalidClientException",
        "invalid_client",
        "unknown client or wrong secret",
    )
}

fn start_device(st: &mut SsoState, body: &Value) -> ResponseTemplate {
    if let Some(r) = only(body, &["clientId", "clientSecret", "startUrl"]) {
        return r;
    }
    if client(st, body).is_none() {
        return invalid_client();
    }
    if body["startUrl"].as_str().is_none() {
        return bad("startUrl is required");
    }
    st.n += 1;
    let code = format!("device-code-{}", st.n);
    let pending = st.pending_polls;
    st.devices.insert(
        code.clone(),
        (body["clientId"].as_str().unwrap().into(), pending),
    );
    ResponseTemplate::new(200).set_body_json(json!({
        "deviceCode": code,
        "userCode": USER_CODE,
        "verificationUri": format!("{}/device", st.oidc_uri),
        "verificationUriComplete": format!("{}/device?user_code={USER_CODE}", st.oidc_uri),
        "expiresIn": 600,
        "interval": 1,
    }))
}

fn issue(st: &mut SsoState, client_id: &str, refresh: bool) -> ResponseTemplate {
    st.n += 1;
    let at = format!("access-token-{}", st.n);
    st.access_tokens.insert(at.clone());
    let mut body = json!({
        "accessToken": at,
        "tokenType": "Bearer",
        "expiresIn": st.access_ttl,
    });
    if refresh {
        let rt = format!("refresh-token-{}", st.n);
        st.refresh_tokens.insert(rt.clone(), client_id.into());
        body["refreshToken"] = json!(rt);
    }
    ResponseTemplate::new(200).set_body_json(body)
}

fn token(st: &mut SsoState, body: &Value) -> ResponseTemplate {
    if let Some(r) = only(
        body,
        &[
            "clientId",
            "clientSecret",
            "grantType",
            "deviceCode",
            "code",
            "refreshToken",
            "scope",
            "redirectUri",
            "codeVerifier",
        ],
    ) {
        return r;
    }
    let Some(c) = client(st, body) else {
        return invalid_client();
    };
    let id = body["clientId"].as_str().unwrap().to_string();
    let grant = body["grantType"].as_str().unwrap_or_default();
    if !c.grant_types.is_empty() && !c.grant_types.iter().any(|g| g == grant) {
        return error(
            400,
            "UnauthorizedClientException",
            "unauthorized_client",
            "grant type not registered",
        );
    }
    let invalid = |m: &str| error(400, "InvalidGrantException", "invalid_grant", m);
    match grant {
        DEVICE_GRANT => {
            let code = body["deviceCode"].as_str().unwrap_or_default().to_string();
            st.polls_at.push(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_millis(),
            );
            if st.slow_downs > 0 {
                st.slow_downs -= 1;
                return error(400, "SlowDownException", "slow_down", "slow down");
            }
            let forever = st.pending_forever;
            let Some((owner, left)) = st.devices.get_mut(&code) else {
                return invalid("unknown device code");
            };
            if *owner != id {
                return invalid("device code of another client");
            }
            if forever || *left > 0 {
                *left = left.saturating_sub(1);
                return error(
                    400,
                    "AuthorizationPendingException",
                    "authorization_pending",
                    "pending",
                );
            }
            st.devices.remove(&code);
            issue(st, &id, true)
        }
        "authorization_code" => {
            let code = body["code"].as_str().unwrap_or_default();
            let Some((owner, challenge, redirect)) = st.codes.remove(code) else {
                return invalid("unknown code");
            };
            if owner != id {
                return invalid("code of another client");
            }
            if body["redirectUri"].as_str() != Some(redirect.as_str()) {
                return invalid("redirectUri differs from the authorize request's");
            }
            match body["codeVerifier"].as_str() {
                Some(v) if s256(v) == challenge => issue(st, &id, true),
                _ => invalid("PKCE: S256(codeVerifier) != code_challenge"),
            }
        }
        "refresh_token" => {
            let rt = body["refreshToken"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            match st.refresh_tokens.get(&rt) {
                Some(owner) if *owner == id => {}
                _ => return invalid("unknown or expired refresh token"),
            }
            if st.rotate {
                st.refresh_tokens.remove(&rt);
                issue(st, &id, true)
            } else {
                issue(st, &id, false)
            }
        }
        _ => error(
            400,
            "UnsupportedGrantTypeException",
            "unsupported_grant_type",
            grant,
        ),
    }
}

fn authorize(st: &mut SsoState, req: &Request) -> ResponseTemplate {
    let q: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
    for k in [
        "response_type",
        "client_id",
        "redirect_uri",
        "state",
        "code_challenge_method",
        "code_challenge",
        "scopes",
    ] {
        if !q.contains_key(k) {
            return ResponseTemplate::new(400).set_body_string(format!("missing {k}"));
        }
    }
    if q["response_type"] != "code" || q["code_challenge_method"] != "S256" {
        return ResponseTemplate::new(400).set_body_string("response_type=code and S256 only");
    }
    let Some(c) = st.clients.get(&q["client_id"]) else {
        return ResponseTemplate::new(400).set_body_string("unknown client");
    };
    let redirect = &q["redirect_uri"];
    // A loopback URI registered without a port matches any port.
    let port_free = redirect
        .strip_prefix("http://127.0.0.1:")
        .and_then(|r| r.split_once('/'))
        .map(|(_, p)| format!("http://127.0.0.1/{p}"));
    if !c
        .redirect_uris
        .iter()
        .any(|u| Some(u) == port_free.as_ref() || u == redirect)
    {
        return ResponseTemplate::new(400).set_body_string("redirect_uri not registered");
    }
    st.n += 1;
    let code = format!("auth-code-{}", st.n);
    st.codes.insert(
        code.clone(),
        (
            q["client_id"].clone(),
            q["code_challenge"].clone(),
            redirect.clone(),
        ),
    );
    let location = format!(
        "{redirect}?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("code", &code)
            .append_pair("state", &q["state"])
            .finish()
    );
    ResponseTemplate::new(302).insert_header("Location", location.as_str())
}

struct Portal(Arc<Mutex<SsoState>>);

impl Respond for Portal {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let mut st = self.0.lock().unwrap();
        let token = req
            .headers
            .get("x-amz-sso_bearer_token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let unauthorized = || {
            ResponseTemplate::new(401)
                .insert_header("x-amzn-ErrorType", "UnauthorizedException")
                .set_body_json(json!({"message": "Session token not found or invalid"}))
        };
        match (req.method.as_str(), req.url.path()) {
            ("GET", "/federation/credentials") => {
                let q: BTreeMap<String, String> = req.url.query_pairs().into_owned().collect();
                let (Some(account), Some(role)) = (q.get("account_id"), q.get("role_name")) else {
                    return ResponseTemplate::new(400);
                };
                st.role_calls
                    .push((token.clone(), account.clone(), role.clone()));
                if !st.access_tokens.contains(&token) {
                    return unauthorized();
                }
                ResponseTemplate::new(200).set_body_json(json!({
                    "roleCredentials": {
                        "accessKeyId": key_for(account, role),
                        "secretAccessKey": format!("secret-{account}-{role}"),
                        "sessionToken": format!("session-{account}-{role}"),
                        "expiration": (now() + 3600) * 1000,
                    }
                }))
            }
            ("POST", "/logout") => {
                st.logouts.push(token.clone());
                if !st.access_tokens.remove(&token) {
                    return unauthorized();
                }
                ResponseTemplate::new(200)
            }
            _ => ResponseTemplate::new(404),
        }
    }
}

impl FakeSso {
    pub async fn start() -> FakeSso {
        let oidc = MockServer::start().await;
        let portal = MockServer::start().await;
        let state = Arc::new(Mutex::new(SsoState {
            oidc_uri: oidc.uri(),
            access_ttl: 8 * 3600,
            rotate: true,
            ..SsoState::default()
        }));
        Mock::given(wiremock::matchers::any())
            .respond_with(Oidc(state.clone()))
            .mount(&oidc)
            .await;
        Mock::given(wiremock::matchers::any())
            .respond_with(Portal(state.clone()))
            .mount(&portal)
            .await;
        FakeSso {
            oidc,
            portal,
            state,
        }
    }

    pub fn st(&self) -> std::sync::MutexGuard<'_, SsoState> {
        self.state.lock().unwrap()
    }

    /// How many OIDC calls of `op` (and, for CreateToken, of `grant` when not empty).
    pub fn count(&self, op: &str, grant: &str) -> usize {
        self.st()
            .calls
            .iter()
            .filter(|(o, g)| o == op && (grant.is_empty() || g == grant))
            .count()
    }

    /// A client registered for refreshes and a refresh token for it, as a login made
    /// by another tool would leave them: (client id, secret, refresh token).
    pub fn seed_refresh(&self) -> (String, String, String) {
        let mut st = self.st();
        st.n += 1;
        let id = format!("seeded-client-{}", st.n);
        let secret = format!("seeded-secret-{}", st.n);
        st.clients.insert(
            id.clone(),
            Client {
                secret: secret.clone(),
                grant_types: vec![DEVICE_GRANT.into(), "refresh_token".into()],
                redirect_uris: vec![],
                issuer_url: None,
            },
        );
        let rt = format!("seeded-refresh-{}", st.n);
        st.refresh_tokens.insert(rt.clone(), id.clone());
        (id, secret, rt)
    }

    /// An access token the portal accepts.
    pub fn seed_access(&self, token: &str) {
        self.st().access_tokens.insert(token.into());
    }
}

/// ISO-8601 `…Z`, `secs` from now.
pub fn iso_in(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(now() + secs)
        .unwrap()
        .format(&time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap()
}

/// A user of the fake: `[sso-session corp]`, a profile `dev` using it
/// (111122223333/Dev), a legacy profile `old` (444455556666/Legacy), endpoints at the
/// fake, a display, and a `$BROWSER` that follows the URL (and keeps it in
/// ~/browser-urls).
pub fn sso_user(fake: &FakeSso) -> TestEnv {
    let mut t = TestEnv::new();
    t.set("AWS_ENDPOINT_URL_SSO_OIDC", &fake.oidc.uri());
    t.set("AWS_ENDPOINT_URL_SSO", &fake.portal.uri());
    t.set("DISPLAY", ":0");
    t.set("ELHAZ_NO_SPINNER", "1");
    t.write_aws_config(&format!(
        "[sso-session corp]
sso_start_url = {START_URL}
sso_region = us-east-1
sso_registration_scopes = sso:account:access

[profile dev]
sso_session = corp
sso_account_id = 111122223333
sso_role_name = Dev
region = eu-west-1

[profile old]
sso_start_url = https://old.awsapps.com/start
sso_region = us-east-1
sso_account_id = 444455556666
sso_role_name = Legacy
"
    ));
    let browser = t.home.join("browser");
    std::fs::write(
        &browser,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> {h}/browser-argv\nu=$({page} \"$1\")\nprintf '%s\\n' \"$u\" >> {h}/browser-urls\nexec curl -sS -L -o /dev/null \"$u\"\n",
            h = t.home.display(),
            page = PAGE_TARGET
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();
    t.set("BROWSER", &browser.to_string_lossy());
    t
}

/// Shell code that prints where a URL given to a browser leads: the URL itself, or
/// for a `file://` page, where its refresh sends the browser (as a browser follows it).
pub const PAGE_TARGET: &str = r#"page_target() { case "$1" in file://*) sed -n 's/.*http-equiv="refresh" content="0;url=\([^"]*\)".*/\1/p' "${1#file://}" | sed "s/&amp;/\&/g; s/&#39;/'/g; s/&quot;/\"/g; s/&lt;/</g; s/&gt;/>/g" ;; *) printf '%s' "$1" ;; esac; }; page_target"#;

/// The cache file of `key` (a session name, or a legacy start URL).
pub fn cache_file(t: &TestEnv, key: &str) -> std::path::PathBuf {
    t.home
        .join(".aws/sso/cache")
        .join(format!("{}.json", super::text::sha1_hex(key)))
}

pub fn read_cache(t: &TestEnv, key: &str) -> Value {
    serde_json::from_slice(&std::fs::read(cache_file(t, key)).unwrap()).unwrap()
}

/// Writes a cache entry by hand (as another tool's login would).
pub fn write_cache(t: &TestEnv, key: &str, v: &Value) {
    let f = cache_file(t, key);
    // 0700, as the AWS CLI makes it.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(f.parent().unwrap())
        .unwrap();
    std::fs::write(f, serde_json::to_vec_pretty(v).unwrap()).unwrap();
}
